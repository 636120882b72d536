"""Location, EVSE and Connector (REFERENCE §6.4): our own (partner empty) and partners' (received or pulled).

Scalar fields are columns named as in the spec; deep value objects (opening_times, energy_mix, images ...) are JSON
columns, validated on the way in. `Location.doc` holds the Location's OCPI JSON with its EVSEs and Connectors,
rewritten by the services in the same transaction as any change: the Sender serves it without rendering.
"""

from django.db import models
from django.db.models import F
from django.db.models.functions import Lower

from ocpi_core.models import Partner


class Location(models.Model):
    """OCPI Location."""

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="locations",
        help_text="Empty for our own locations; the partner that sent it otherwise.",
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField("id", max_length=36)
    publish = models.BooleanField(default=True)
    publish_allowed_to = models.JSONField(null=True, blank=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    address = models.CharField(max_length=255)
    city = models.CharField(max_length=45)
    postal_code = models.CharField(max_length=10, null=True, blank=True)
    state = models.CharField(max_length=45, null=True, blank=True)
    country = models.CharField(max_length=3)
    coordinates = models.JSONField()
    related_locations = models.JSONField(null=True, blank=True)
    parking_type = models.CharField(max_length=32, null=True, blank=True)
    directions = models.JSONField(null=True, blank=True)
    operator = models.JSONField(null=True, blank=True)
    suboperator = models.JSONField(null=True, blank=True)
    owner = models.JSONField(null=True, blank=True)
    facilities = models.JSONField(null=True, blank=True)
    time_zone = models.CharField(max_length=255)
    opening_times = models.JSONField(null=True, blank=True)
    charging_when_closed = models.BooleanField(null=True, blank=True)
    images = models.JSONField(null=True, blank=True)
    energy_mix = models.JSONField(null=True, blank=True)
    last_updated = models.DateTimeField(db_index=True)
    doc = models.TextField(editable=False, default="", help_text="OCPI JSON of the location with EVSEs (cache)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("last_updated", "pk")
        constraints = [
            models.UniqueConstraint(Lower("country_code"), Lower("party_id"), Lower("ocpi_id"), name="location_key"),
        ]
        indexes = [
            models.Index(
                fields=["last_updated", "id"], name="location_page_own", condition=models.Q(partner__isnull=True)
            ),
            models.Index(fields=["partner", "last_updated"], name="location_partner"),
            # The CPO Sender list (locations.api.views.own_locations): its filter is this index's key prefix and
            # predicate, so a page by keyset is a range scan and an OFFSET page an index-only scan (the INCLUDE
            # columns make the lower() keys index-only on PostgreSQL).
            models.Index(
                Lower("country_code"),
                Lower("party_id"),
                F("last_updated"),
                F("id"),
                name="location_page_sender",
                include=["country_code", "party_id"],
                condition=models.Q(partner__isnull=True)
                & (models.Q(publish=True) | models.Q(publish_allowed_to__isnull=False)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.ocpi_id} {self.name or ''}".strip()

    @property
    def is_own(self) -> bool:
        return self.partner_id is None


class Evse(models.Model):
    """OCPI EVSE. Never deleted: status REMOVED instead."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="evses")
    position = models.PositiveIntegerField(default=0, help_text="Order in the Location's evses list")
    uid = models.CharField(max_length=36)
    evse_id = models.CharField(max_length=48, null=True, blank=True)
    status = models.CharField(max_length=16, db_index=True)
    status_schedule = models.JSONField(null=True, blank=True)
    capabilities = models.JSONField(null=True, blank=True)
    floor_level = models.CharField(max_length=4, null=True, blank=True)
    coordinates = models.JSONField(null=True, blank=True)
    physical_reference = models.CharField(max_length=16, null=True, blank=True)
    directions = models.JSONField(null=True, blank=True)
    parking_restrictions = models.JSONField(null=True, blank=True)
    images = models.JSONField(null=True, blank=True)
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ("location", "position", "pk")
        verbose_name = "EVSE"
        constraints = [models.UniqueConstraint("location", Lower("uid"), name="evse_key")]

    def __str__(self) -> str:
        return f"{self.uid} ({self.evse_id or 'no EVSE ID'})"


class Connector(models.Model):
    """OCPI Connector."""

    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    position = models.PositiveIntegerField(default=0)
    ocpi_id = models.CharField("id", max_length=36)
    standard = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    power_type = models.CharField(max_length=20)
    max_voltage = models.IntegerField()
    max_amperage = models.IntegerField()
    max_electric_power = models.IntegerField(null=True, blank=True)
    tariff_ids = models.JSONField(null=True, blank=True)
    terms_and_conditions = models.URLField(max_length=255, null=True, blank=True)
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ("evse", "position", "pk")
        constraints = [models.UniqueConstraint("evse", Lower("ocpi_id"), name="connector_key")]

    def __str__(self) -> str:
        return f"{self.ocpi_id} {self.standard} {self.power_type}"
