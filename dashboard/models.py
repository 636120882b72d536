"""EVSE status history: one row per status change of any EVSE (own or partners'), written by locations.services in
the same transaction as the change (dashboard.history.evse_status_record). A status holds from `since` until the
next row of the same EVSE; the dashboard's availability shares are computed from these intervals."""

from django.db import models

from locations.models import Evse


class EvseStatusChange(models.Model):
    """The EVSE took `status` at `since` (the change's OCPI last_updated; one stamped in the future is recorded at the
    time the change reached us: dashboard.rollup.status_change_add)."""

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


# SessionDay's key: one row per grain, day, CPO partner, location and token party (empty where the grain sums it out)
KEY = ("grain", "day", "partner_pk", "country_code", "party_id", "location_id", "token_country_code", "token_party_id")


class SessionDay(models.Model):
    """Daily rollup of the sessions (INVALID ones left out), on the UTC day each started: how many, their kWh, and
    the duration of those that ended. Three grains in one table, so a session write is one upsert of its three rows:

    - FULL: by day, the CPO's location (country_code, party_id, location_id) and the token's party (own sessions;
      empty for partners' sessions, which are split and filtered by their CPO partner, not by token);
    - LOCATION: the same with the token's party summed out;
    - PARTY: by day and the token's party (or the CPO partner), the location summed out.

    `partner_pk` is the CPO partner of a partner's session, 0 for our own (we are the CPO). Kept by
    dashboard.session_rollup in the transaction of each Session saved or deleted through the ORM;
    session_rollup_rebuild() recomputes it after bulk loads that bypass the ORM (COPY, bulk_create, update())."""

    class Grain(models.TextChoices):
        FULL = "F", "day, location and token party"
        LOCATION = "L", "day and location"
        PARTY = "P", "day and token party"

    grain = models.CharField(max_length=1, choices=Grain.choices)
    day = models.DateField()
    partner_pk = models.BigIntegerField(default=0, help_text="The CPO partner of a partner's session; 0: our own")
    country_code = models.CharField(max_length=2, blank=True, default="", help_text="The CPO's country code")
    party_id = models.CharField(max_length=3, blank=True, default="", help_text="The CPO's party id")
    location_id = models.CharField(max_length=36, blank=True, default="")
    token_country_code = models.CharField(
        max_length=2, blank=True, default="", help_text="Own sessions: cdr_token owner"
    )
    token_party_id = models.CharField(max_length=3, blank=True, default="", help_text="Own sessions: cdr_token owner")
    sessions = models.BigIntegerField(default=0)
    kwh = models.DecimalField(max_digits=30, decimal_places=6, default=0)
    ended = models.BigIntegerField(default=0, help_text="Sessions with an end_date_time")
    # numeric, not bigint: one session may last from 0001-01-01 to 9999-12-31 (3.2e17 microseconds, valid OCPI
    # DateTimes), and thirty such on one day and location summed past a bigint (the receiver's PUT answered 500)
    duration_us = models.DecimalField(
        max_digits=30, decimal_places=0, default=0, help_text="Their end_date_time - start_date_time, microseconds"
    )

    class Meta:
        ordering = ("grain", "day", "partner_pk", "country_code", "party_id", "location_id")
        verbose_name = "session day"
        constraints = [
            # the upsert's conflict target
            models.UniqueConstraint(fields=[*KEY], name="dashboard_session_day_key"),
        ]
        indexes = [
            # the days of a period at one grain (index-only on PostgreSQL: it INCLUDEs every other column)
            models.Index(
                fields=["grain", "day"],
                name="dashboard_session_day",
                include=[*KEY[2:], "sessions", "kwh", "ended", "duration_us"],
            ),
            # the location filter
            models.Index(fields=["grain", "location_id", "day"], name="dashboard_session_day_location"),
            # the partner filter: our sessions charged with its tokens, its sessions as CPO (index-only on PostgreSQL)
            models.Index(
                fields=["grain", "token_country_code", "token_party_id", "day"],
                name="dashboard_session_day_token",
                include=["country_code", "party_id", "location_id", "sessions", "kwh", "ended", "duration_us"],
                condition=models.Q(partner_pk=0),
            ),
            models.Index(
                fields=["grain", "partner_pk", "day"],
                name="dashboard_session_day_partner",
                include=["country_code", "party_id", "location_id", "sessions", "kwh", "ended", "duration_us"],
                condition=models.Q(partner_pk__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.day} {self.location_id or '-'} {self.sessions} sessions {self.kwh} kWh"
