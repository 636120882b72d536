"""EVSE status history: one row per status change of any EVSE (own or partners'), written by locations.services in
the same transaction as the change (dashboard.history.evse_status_record). A status holds from `since` until the
next row of the same EVSE; the dashboard's availability shares are computed from these intervals."""

from django.db import models

from locations.models import Evse


class EvseStatusChange(models.Model):
    """The EVSE took `status` at `since` (the change's OCPI last_updated)."""

    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="status_changes")
    status = models.CharField(max_length=16)
    since = models.DateTimeField()

    class Meta:
        ordering = ("evse", "since", "pk")
        verbose_name = "EVSE status change"
        indexes = [
            # the last status of one EVSE (the hook) and one EVSE's intervals in order (LEAD over since)
            models.Index(fields=["evse", "since"], name="dashboard_evse_status_since"),
            # the changes in a period, for every EVSE
            models.Index(fields=["since"], name="dashboard_status_since"),
        ]

    def __str__(self) -> str:
        return f"{self.evse_id} {self.status} since {self.since:%Y-%m-%d %H:%M:%S}"
