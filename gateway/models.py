"""Gateway settings per location and the state of the built-in charge point simulator."""

from decimal import Decimal

from django.db import models

from locations.models import Evse, Location


class Backend(models.TextChoices):
    """Gateway implementations (gateway.services.BACKENDS); an OCPP central system would be a third."""

    SIMULATOR = "simulator", "Built-in simulator"
    WEBHOOK = "webhook", "Webhook to the operator's charge point system"


class LocationGateway(models.Model):
    """Which gateway serves one of our own locations (overrides GATEWAY_DEFAULT_BACKEND)."""

    location = models.OneToOneField(
        Location, on_delete=models.CASCADE, related_name="gateway_setting", limit_choices_to={"partner__isnull": True}
    )
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.SIMULATOR)
    webhook_url = models.URLField(
        max_length=255, blank=True, help_text="Webhook backend only: overrides GATEWAY_WEBHOOK_URL for this location."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("location",)
        verbose_name = "gateway setting"

    def __str__(self) -> str:
        return f"{self.location.ocpi_id}: {self.get_backend_display()}"


class SimulatedEvse(models.Model):
    """How a simulated EVSE answers commands (no row = ACCEPT at the connector's maximum power)."""

    class Behaviour(models.TextChoices):
        ACCEPT = "ACCEPT", "Accept"
        REJECT = "REJECT", "Reject"
        FAIL = "FAIL", "Fail"
        NO_ANSWER = "NO_ANSWER", "No answer (the command times out)"

    evse = models.OneToOneField(Evse, on_delete=models.CASCADE, related_name="simulation")
    behaviour = models.CharField(max_length=16, choices=Behaviour.choices, default=Behaviour.ACCEPT)
    power_kw = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Power the simulated car draws; empty = the connector's max_electric_power.",
    )

    class Meta:
        ordering = ("evse",)
        verbose_name = "simulated EVSE"

    def __str__(self) -> str:
        return f"{self.evse.uid}: {self.get_behaviour_display()}"


class SimulatedSession(models.Model):
    """A session (charging, or holding a reservation) on a simulated charger. `session_id` is the OCPI Session id
    (sessions_app, referenced by key, not by FK)."""

    class Kind(models.TextChoices):
        CHARGING = "CHARGING"
        RESERVATION = "RESERVATION"

    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    session_id = models.CharField(max_length=36)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    location_id = models.CharField(max_length=36)
    evse_uid = models.CharField(max_length=36)
    connector_id = models.CharField(max_length=36)
    reservation_id = models.BigIntegerField(null=True, blank=True, help_text="Charge point reservation number")
    expiry_date = models.DateTimeField(null=True, blank=True)
    power_kw = models.DecimalField(max_digits=7, decimal_places=2, default=Decimal(0))
    phases = models.PositiveSmallIntegerField(default=1, help_text="Phases of the connector (A limits to kW)")
    voltage = models.PositiveIntegerField(default=230)
    charging_profile = models.JSONField(null=True, blank=True, help_text="OCPI ChargingProfile set on the session")
    kwh = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    active = models.BooleanField(default=True, db_index=True)
    started_at = models.DateTimeField()
    last_tick_at = models.DateTimeField()

    class Meta:
        ordering = ("-started_at", "pk")
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id", "session_id"], name="simulated_session_key"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} ({self.kind}) at {self.location_id}/{self.evse_uid}"
