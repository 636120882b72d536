"""Session (REFERENCE §7.4): our own (partner empty: we are the CPO) and partners' (received or pulled: we are the
eMSP).

Scalar fields are columns named as in the spec. Money and energy never pass through a binary float: `kwh` is a
DecimalField, `charging_periods` and `total_cost` are `ExactJSONField`s (JSON text, numbers read back as Decimals).
`Session.doc` holds the Session's OCPI JSON, rewritten by the services in the same transaction as any change: the
Sender serves it without rendering. The token's owner and uid are copied into columns so a Sender list can be scoped
to the calling eMSP's parties in the database.
"""

from collections.abc import Collection
from typing import Any, Self

from django.db import models, router, transaction
from django.db.models.functions import Lower

from ocpi_core.models import Partner
from tariffs.models import ExactJSONField, dumps_exact, loads_exact


class SessionStatus(models.TextChoices):
    """OCPI SessionStatus, spelled as in the spec."""

    ACTIVE = "ACTIVE", "ACTIVE"
    COMPLETED = "COMPLETED", "COMPLETED"
    INVALID = "INVALID", "INVALID"
    PENDING = "PENDING", "PENDING"
    RESERVATION = "RESERVATION", "RESERVATION"


class ChargingPreferencesResponse(models.TextChoices):
    """OCPI ChargingPreferencesResponse, spelled as in the spec."""

    ACCEPTED = "ACCEPTED", "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED", "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED", "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE", "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED", "PROFILE_TYPE_NOT_SUPPORTED"


class ProfileTypeChoices(models.TextChoices):
    """OCPI ProfileType (ChargingPreferences.profile_type), spelled as in the spec."""

    CHEAP = "CHEAP", "CHEAP"
    FAST = "FAST", "FAST"
    GREEN = "GREEN", "GREEN"
    REGULAR = "REGULAR", "REGULAR"


class ExactAnyJSONField(models.TextField):
    """Any JSON value kept as text; every non-integer number comes back as a Decimal (the session snapshot).

    Unlike `ExactJSONField` it is not tied to one OCPI type: the snapshot holds a Location, Tariffs and a time zone.
    """

    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return loads_exact(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return None if value == "" else loads_exact(value)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        return dumps_exact(value).decode()

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else dumps_exact(value).decode()


class Session(models.Model):
    """OCPI Session."""

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sessions",
        help_text="Empty for our own sessions (we are the CPO); the partner that sent it otherwise.",
    )
    country_code = models.CharField(max_length=2, help_text="The CPO's country code")
    party_id = models.CharField(max_length=3, help_text="The CPO's party id")
    ocpi_id = models.CharField("id", max_length=36)
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField(null=True, blank=True)
    kwh = models.DecimalField(max_digits=20, decimal_places=6)
    cdr_token = models.JSONField(help_text="OCPI CdrToken")
    token_country_code = models.CharField(max_length=2, editable=False, default="", help_text="cdr_token owner")
    token_party_id = models.CharField(max_length=3, editable=False, default="", help_text="cdr_token owner")
    token_uid = models.CharField(max_length=36, editable=False, default="", db_index=True)
    auth_method = models.CharField(max_length=16)
    authorization_reference = models.CharField(max_length=36, null=True, blank=True)
    location_id = models.CharField(max_length=36, db_index=True)
    evse_uid = models.CharField(max_length=36)
    connector_id = models.CharField(max_length=36)
    meter_id = models.CharField(max_length=255, null=True, blank=True)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR")
    charging_periods = ExactJSONField(ocpi_type="ChargingPeriod", null=True, blank=True)
    total_cost = ExactJSONField(ocpi_type="Price", null=True, blank=True)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, db_index=True)
    last_updated = models.DateTimeField(db_index=True)
    doc = models.TextField(editable=False, default="", help_text="OCPI JSON of the session (cache, exact numbers)")
    snapshot = ExactAnyJSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Own sessions: the location (only this EVSE and connector), its tariffs and time zone at the start",
    )
    charging_preferences = ExactJSONField(
        ocpi_type="ChargingPreferences", null=True, blank=True, help_text="The last ChargingPreferences set"
    )
    charging_preferences_result = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="ChargingPreferencesResponse of the last preferences (ours, or the CPO's answer), or an error",
    )
    charging_preferences_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # the row as it is in the database (attname -> value), for an instance loaded from it: kept up to date by save()
    # and refresh_from_db(); the dashboard's session rollup reads the state a write replaces from it
    _loaded_values: dict[str, Any]

    class Meta:
        ordering = ("last_updated", "pk")
        constraints = [
            models.UniqueConstraint(Lower("country_code"), Lower("party_id"), Lower("ocpi_id"), name="session_key"),
        ]
        indexes = [
            models.Index(
                fields=["last_updated", "id"], name="session_page_own", condition=models.Q(partner__isnull=True)
            ),
            models.Index(fields=["partner", "last_updated"], name="session_partner"),
            models.Index(fields=["token_country_code", "token_party_id"], name="session_token_party"),
            # the dashboard's per-day aggregates over a period (index-only on PostgreSQL: INCLUDE the columns read)
            models.Index(
                fields=["start_date_time"],
                name="session_start",
                include=[
                    "partner",
                    "kwh",
                    "end_date_time",
                    "status",
                    "location_id",
                    "token_country_code",
                    "token_party_id",
                    "country_code",
                    "party_id",
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.ocpi_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saved in one transaction with what post_save receivers write (the dashboard's rollup), also outside of
        one (inside one, no savepoint: nothing more is sent to the database)."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)
        self._remember_values(kwargs.get("update_fields"))

    def refresh_from_db(self, using: str | None = None, fields: Any = None, from_queryset: Any = None) -> None:
        super().refresh_from_db(using, fields, from_queryset)
        self._remember_values(fields)

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> Self:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_values = {
            name: value for name, value in zip(field_names, values, strict=True) if value is not models.DEFERRED
        }
        return instance

    def _remember_values(self, fields: Any = None) -> None:
        loaded = self.__dict__.setdefault("_loaded_values", {})
        for field in self._meta.concrete_fields:
            if (fields is None or field.name in fields or field.attname in fields) and field.attname in self.__dict__:
                loaded[field.attname] = self.__dict__[field.attname]

    @property
    def is_own(self) -> bool:
        return self.partner_id is None
