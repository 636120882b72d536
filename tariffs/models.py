"""Tariff (REFERENCE §9.4): our own (partner empty) and partners' (received or pulled).

Scalar fields are columns named as in the spec. The value objects that carry money or quantities (elements,
min_price, max_price, energy_mix) are kept as JSON *text* in an `ExactJSONField`: written without ever going
through a binary float, read back with every OCPI `number` as a `Decimal`, so €0.1234 stays Decimal("0.1234").
`Tariff.doc` holds the Tariff's OCPI JSON, rewritten by the services in the same transaction as any change: the
Sender serves it without rendering.
"""

import json
import math
from decimal import Decimal
from typing import Any

import orjson
from django.db import models
from django.db.models.functions import Lower

from ocpi_core.models import Partner
from ocpi_core.validation import object_fields


class TariffType(models.TextChoices):
    """OCPI TariffType, spelled as in the spec."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT", "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP", "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST", "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN", "PROFILE_GREEN"
    REGULAR = "REGULAR", "REGULAR"


# --- exact numbers ---------------------------------------------------------------------------------------------------


def exact(value: Any) -> Decimal:
    """A JSON number as a Decimal with the digits it was written with (a float goes through its shortest repr)."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        number = Decimal(repr(value))
    else:
        number = Decimal(int(value))
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def decimalize(type_name: str, value: Any) -> Any:
    """Every OCPI `number` field of `value` (an object of `type_name`, or a list of them) as a Decimal.

    Driven by the spec definitions, so `int` fields (step_size, min_duration ...) stay ints. Raises ValueError on a
    number that is not finite.
    """
    if isinstance(value, list):
        return [decimalize(type_name, item) for item in value]
    if not isinstance(value, dict):
        return value
    rules = {rule.name: rule for rule in object_fields(type_name)}
    out: dict[str, Any] = {}
    for name, item in value.items():
        rule = rules.get(name)
        if rule is None or item is None:
            out[name] = item
        elif rule.type == "number":
            if isinstance(item, list):
                out[name] = [exact(n) for n in item]
            elif isinstance(item, int | float | Decimal) and not isinstance(item, bool):
                out[name] = exact(item)
            else:
                out[name] = item
        elif _is_object(rule.type):
            out[name] = decimalize(rule.type, item)
        else:
            out[name] = item
    return out


def _is_object(type_name: str) -> bool:
    try:
        object_fields(type_name)
    except KeyError:
        return False
    return True


def _exact_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("not a finite number")
        # the digits as they are (no binary float in between), never in exponent notation: str() writes 10 hours
        # normalized as `1E+1` and a partner's 1e-07 as `1E-7`; OCPI numbers are plain decimals (types, number)
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps_exact(value: Any) -> bytes:
    """JSON text with Decimals written digit for digit (ocpi_core.envelope.dumps would go through float)."""
    return orjson.dumps(value, default=_exact_default)


def loads_exact(text: str | bytes) -> Any:
    """JSON text with every non-integer number as a Decimal."""
    return json.loads(text, parse_float=Decimal)


class ExactJSONField(models.TextField):
    """A JSON value of OCPI type `ocpi_type` (or a list of them) kept as text; numbers come back as Decimals.

    Django's JSONField decodes numbers as floats (and PostgreSQL's jsonb would not keep `2.50` either): money must
    never pass through a float, so this stores the JSON text and decodes it with `parse_float=Decimal`.
    """

    # for django-stubs: the attribute holds the decoded JSON value (dicts, lists, Decimals), not text
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def __init__(self, *args: Any, ocpi_type: str = "", **kwargs: Any) -> None:
        self.ocpi_type = ocpi_type
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["ocpi_type"] = self.ocpi_type
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return decimalize(self.ocpi_type, loads_exact(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return None if value == "" else decimalize(self.ocpi_type, loads_exact(value))
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        return dumps_exact(decimalize(self.ocpi_type, value)).decode()

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else dumps_exact(value).decode()


# --- the tariff ------------------------------------------------------------------------------------------------------


class Tariff(models.Model):
    """OCPI Tariff."""

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tariffs",
        help_text="Empty for our own tariffs; the partner that sent it otherwise.",
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField("id", max_length=36)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR")
    type = models.CharField(max_length=16, choices=TariffType.choices, null=True, blank=True)
    tariff_alt_text = models.JSONField(null=True, blank=True)
    tariff_alt_url = models.URLField(max_length=255, null=True, blank=True)
    min_price = ExactJSONField(ocpi_type="Price", null=True, blank=True)
    max_price = ExactJSONField(ocpi_type="Price", null=True, blank=True)
    elements = ExactJSONField(ocpi_type="TariffElement")
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    energy_mix = ExactJSONField(ocpi_type="EnergyMix", null=True, blank=True)
    last_updated = models.DateTimeField(db_index=True)
    doc = models.TextField(editable=False, default="", help_text="OCPI JSON of the tariff (cache)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("last_updated", "pk")
        constraints = [
            models.UniqueConstraint(Lower("country_code"), Lower("party_id"), Lower("ocpi_id"), name="tariff_key"),
        ]
        indexes = [
            models.Index(
                fields=["last_updated", "id"], name="tariff_page_own", condition=models.Q(partner__isnull=True)
            ),
            models.Index(fields=["partner", "last_updated"], name="tariff_partner"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.ocpi_id}"

    @property
    def is_own(self) -> bool:
        return self.partner_id is None
