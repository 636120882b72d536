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


class EvseStatusDay(models.Model):
    """Daily rollup of the status history: how long (microseconds) the EVSE was in `status` on `day` (UTC), summed
    over its closed intervals (a change up to the EVSE's next change; the last, open one is computed when read).
    Kept by dashboard.rollup in the transaction of each EvseStatusChange saved through the ORM (in or out of order);
    rollup_rebuild() recomputes it after bulk loads that bypass the ORM (migrations, COPY)."""

    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="status_days")
    day = models.DateField()
    status = models.CharField(max_length=16)
    microseconds = models.BigIntegerField(default=0)

    class Meta:
        ordering = ("evse", "day", "status")
        verbose_name = "EVSE status day"
        constraints = [
            # the upsert's conflict target, and one EVSE's days
            models.UniqueConstraint(fields=["evse", "day", "status"], name="dashboard_status_day_key"),
        ]
        indexes = [
            # the days of a period for every EVSE (index-only on PostgreSQL)
            models.Index(fields=["day"], name="dashboard_status_day", include=["evse", "status", "microseconds"]),
        ]

    def __str__(self) -> str:
        return f"{self.evse_id} {self.day} {self.status} {self.microseconds / 1e6:.0f} s"
