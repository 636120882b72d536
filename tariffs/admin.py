"""The operators' back-office for tariffs (STYLE §8): our own tariffs are edited here and pushed to partners,
partners' tariffs are shown read-only.

Every list row carries a readable price summary, e.g. "€0.25/kWh · €0.50 start · €2.00/h parking, weekdays
07:00-19:00" (an en dash between the times).
Elements, min/max price, alt text and energy mix are edited as JSON text and validated on save exactly as a
partner's PUT is (errors shown on the form); saving and deleting go through `tariffs.services`, which write the
outbox rows; a tariff that one of our connectors still lists cannot be deleted.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ocpi_core.admin import badge
from ocpi_core.admin_filters import OwnerListFilter, PartyListFilter
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import InvalidParameters, OcpiError
from tariffs.models import Tariff, decimalize, dumps_exact, exact, loads_exact
from tariffs.pricing import PricingError, price_session
from tariffs.services import EXACT_FIELDS, Key, tariff_connectors_using, tariff_delete, tariff_save_own
from tariffs.services import tariff_validate_own as validate_own

_GREEN, _BLUE = "#2e7d32", "#1565c0"

# --- the price summary -----------------------------------------------------------------------------------------------

_DASH = "\N{EN DASH}"
_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_WEEKDAYS, _WEEKEND = frozenset(_WEEK[:5]), frozenset(_WEEK[5:])


def money(currency: str, amount: Any) -> str:
    """€0.25, €0.1234, CHF 1.00: at least two decimals, every significant one kept (no rounding of money)."""
    value = exact(amount)
    try:
        cents = value.quantize(Decimal("0.01"))
    except InvalidOperation:  # more digits than the decimal context holds (e.g. 1E+999): shown as it is
        cents = None
    text = f"{cents}" if cents is not None and value == cents else f"{value.normalize()}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{currency} {text}"


def _number(value: Any) -> str:
    return f"{exact(value).normalize():f}"


def _duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _component(currency: str, component: dict[str, Any], reservation: str | None) -> str:
    kind, step = component.get("type"), component.get("step_size") or 0
    price = money(currency, component.get("price", 0))
    if kind == "ENERGY":
        text = f"{price}/kWh"
        if step > 1:
            text += f" (per {_number(Decimal(step) / 1000)} kWh)" if step % 1000 == 0 else f" (per {step} Wh)"
        return text
    if kind == "FLAT":
        fee = {"RESERVATION": "reservation fee", "RESERVATION_EXPIRES": "expiry fee"}.get(reservation or "", "start")
        return f"{price} {fee}"
    what = {"TIME": "", "PARKING_TIME": " parking"}.get(str(kind), f" {kind}")
    if reservation:
        what = " reserved" if reservation == "RESERVATION" else " reserved, if it expires"
    text = f"{price}/h{what}"
    if step > 1:
        text += f" (per {_duration(step)})"
    return text


def _days(days: list[str]) -> str:
    chosen = frozenset(days)
    if chosen == frozenset(_WEEK):
        return "every day"
    if chosen == _WEEKDAYS:
        return "weekdays"
    if chosen == _WEEKEND:
        return "weekends"
    return ", ".join(day[:3].title() for day in _WEEK if day in chosen)


def _range(low: Any, high: Any, unit: str) -> str:
    if low is not None and high is not None:
        return f"{_number(low)}{_DASH}{_number(high)} {unit}"
    if low is not None:
        return f"from {_number(low)} {unit}"
    return f"below {_number(high)} {unit}"


def _restrictions(restrictions: dict[str, Any]) -> str:
    """When an element applies, in words: 'weekdays 08:00-18:00, from 32 A' (en dash)."""
    when = []
    if restrictions.get("day_of_week"):
        when.append(_days(restrictions["day_of_week"]))
    start, end = restrictions.get("start_time"), restrictions.get("end_time")
    if start or end:
        when.append(f"{start}{_DASH}{end}" if start and end else f"from {start}" if start else f"until {end}")
    parts = [" ".join(when)] if when else []
    start_date, end_date = restrictions.get("start_date"), restrictions.get("end_date")
    if start_date and end_date:
        parts.append(f"{start_date} to {end_date}")
    elif start_date:
        parts.append(f"from {start_date}")
    elif end_date:
        parts.append(f"before {end_date}")
    for low, high, unit in (
        ("min_kwh", "max_kwh", "kWh"),
        ("min_current", "max_current", "A"),
        ("min_power", "max_power", "kW"),
    ):
        if restrictions.get(low) is not None or restrictions.get(high) is not None:
            parts.append(_range(restrictions.get(low), restrictions.get(high), unit))
    low_s, high_s = restrictions.get("min_duration"), restrictions.get("max_duration")
    if low_s is not None and high_s is not None:
        parts.append(f"after {_duration(low_s)}, first {_duration(high_s)}")
    elif low_s is not None:
        parts.append(f"after {_duration(low_s)}")
    elif high_s is not None:
        parts.append(f"first {_duration(high_s)}")
    return ", ".join(parts)


def price_summary(tariff: Tariff) -> str:
    """The tariff in one line: each element's prices and when they apply, then the session floor/ceiling."""
    lines = []
    for element in tariff.elements or []:
        restrictions = element.get("restrictions") or {}
        reservation = restrictions.get("reservation")
        text = " · ".join(_component(tariff.currency, c, reservation) for c in element.get("price_components") or [])
        when = _restrictions(restrictions)
        lines.append(f"{text}, {when}" if when else text)
    for label, price in (("min", tariff.min_price), ("max", tariff.max_price)):
        if price:
            lines.append(f"{label} {money(tariff.currency, price['excl_vat'])} per session")
    return "; ".join(lines)


# --- the form --------------------------------------------------------------------------------------------------------


class ExactJSONFormField(forms.CharField):
    """JSON typed as text; numbers are read as Decimals (never floats) and shown with the digits stored."""

    widget = forms.Textarea(attrs={"rows": 12, "cols": 90, "style": "font-family: monospace"})

    def prepare_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return dumps_exact(value).decode()

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if not text:
            return None
        try:
            return loads_exact(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc

    def validate(self, value: Any) -> None:
        # Only absent text is "required"; an empty list or object is for the OCPI validation to name.
        if value is None and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")


def _pretty(value: Any) -> str:
    if not value:
        return ""
    text = dumps_exact(value).decode()
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:  # a number beyond a double (1e999): the exact text, not indented
        return text


class TariffAdminForm(forms.ModelForm):
    """An own tariff: scalar fields as inputs, value objects as JSON text, validated like a partner's PUT."""

    elements = ExactJSONFormField(help_text='A list of TariffElements, e.g. [{"price_components": [...]}]')
    min_price = ExactJSONFormField(required=False, help_text='e.g. {"excl_vat": 5.00, "incl_vat": 6.05}')
    max_price = ExactJSONFormField(required=False, help_text='e.g. {"excl_vat": 50.00, "incl_vat": 60.50}')
    tariff_alt_text = ExactJSONFormField(required=False, help_text='e.g. [{"language": "en", "text": "..."}]')
    energy_mix = ExactJSONFormField(required=False, help_text="An EnergyMix object")

    class Meta:
        model = Tariff
        fields = (
            "country_code",
            "party_id",
            "ocpi_id",
            "currency",
            "type",
            "elements",
            "min_price",
            "max_price",
            "start_date_time",
            "end_date_time",
            "tariff_alt_text",
            "tariff_alt_url",
            "energy_mix",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in (*EXACT_FIELDS, "tariff_alt_text"):
            if name in self.fields and self.initial.get(name) is not None:
                self.initial[name] = _pretty(self.initial[name])
        self.ocpi_data: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        if name in self.cleaned_data:
            return self.cleaned_data[name]
        return getattr(self.instance, name)

    def tariff_key(self) -> Key:
        return Key(self._value("country_code"), self._value("party_id"), self._value("ocpi_id"))

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data: dict[str, Any] = {
            "country_code": self._value("country_code"),
            "party_id": self._value("party_id"),
            "id": self._value("ocpi_id"),
            "currency": self._value("currency"),
            "type": self._value("type") or None,
            "tariff_alt_text": self._value("tariff_alt_text"),
            "tariff_alt_url": self._value("tariff_alt_url") or None,
            "min_price": self._value("min_price"),
            "max_price": self._value("max_price"),
            "elements": self._value("elements"),
            "start_date_time": self._value("start_date_time"),
            "end_date_time": self._value("end_date_time"),
            "energy_mix": self._value("energy_mix"),
            "last_updated": format_datetime(timezone.now()),
        }
        for name in ("start_date_time", "end_date_time"):
            if data[name] is not None:
                data[name] = format_datetime(data[name])
        data = {name: value for name, value in data.items() if value is not None}
        try:
            validate_own(key=self.tariff_key(), data=data)
            for name, type_name in EXACT_FIELDS.items():
                if name in data:
                    decimalize(type_name, data[name])
        except InvalidParameters as exc:
            self._add_ocpi_errors(exc.message)
        except ValueError:
            self.add_error(None, "Numbers must be finite")
        self.ocpi_data = data
        return cleaned

    def _add_ocpi_errors(self, message: str) -> None:
        """'elements[1].price_components[0].type: ...' goes to the elements field; what names no field, on top."""
        for error in message.split("; "):
            path = error.split(":", 1)[0]
            name = path.split(".", 1)[0].split("[", 1)[0]
            name = {"id": "ocpi_id"}.get(name, name)
            if name in self.fields:
                self.add_error(name, error)
            else:
                self.add_error(None, error)


# --- list filters ----------------------------------------------------------------------------------------------------


class OwnTariffFilter(OwnerListFilter):
    """Our own tariffs or partners'."""


class PartyFilter(PartyListFilter):
    """The party the tariffs are under."""


# --- the admin -------------------------------------------------------------------------------------------------------


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    """Own tariffs are created, edited and deleted here (through the services, which push); partners' are read-only."""

    form = TariffAdminForm
    list_display = (
        "ocpi_id",
        "party",
        "owner",
        "currency",
        "type",
        "summary",
        "start_date_time",
        "end_date_time",
        "last_updated",
    )
    list_filter = (OwnTariffFilter, PartyFilter, "currency", "type")
    search_fields = ("ocpi_id", "party_id", "country_code", "partner__name")
    list_select_related = ("partner",)
    ordering = ("-last_updated", "-pk")
    edit_fieldsets = (
        (None, {"fields": ("country_code", "party_id", "ocpi_id", "currency", "type")}),
        ("Prices", {"fields": ("elements", "min_price", "max_price")}),
        (
            "Validity and information",
            {"fields": ("start_date_time", "end_date_time", "tariff_alt_text", "tariff_alt_url", "energy_mix")},
        ),
    )
    read_fieldsets = (
        (None, {"fields": ("country_code", "party_id", "ocpi_id", "owner", "currency", "type", "last_updated")}),
        ("Prices", {"fields": ("summary", "price_example", "elements_json", "min_price_json", "max_price_json")}),
        (
            "Validity and information",
            {"fields": ("start_date_time", "end_date_time", "alt_text_json", "tariff_alt_url", "energy_mix_json")},
        ),
        ("As sent to partners", {"fields": ("doc_json",)}),
    )

    # --- list columns and read-only displays ---

    @admin.display(description="party", ordering="party_id")
    def party(self, obj: Tariff) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="owner", ordering="partner__name")
    def owner(self, obj: Tariff) -> SafeString:
        if obj.partner_id is None:
            return badge("own", _GREEN)
        return badge(obj.partner.name if obj.partner else "partner", _BLUE, "Received from a partner: read-only")

    @admin.display(description="prices")
    def summary(self, obj: Tariff) -> str:
        return price_summary(obj) if obj.elements else "—"

    @staticmethod
    def _pre(value: Any) -> SafeString | str:
        return format_html("<pre style='margin:0'>{}</pre>", _pretty(value)) if value else "—"

    @admin.display(description="example session")
    def price_example(self, obj: Tariff) -> str:
        """What the tariff engine bills for a sample session, so staff can check a tariff reads as intended."""
        if not obj.elements:
            return "—"
        start = datetime(2024, 1, 8, 17, 0, tzinfo=UTC)  # a Monday
        periods = [
            {"start_date_time": "2024-01-08T17:00:00Z", "dimensions": [{"type": "ENERGY", "volume": Decimal(11)}]},
            {
                "start_date_time": "2024-01-08T18:00:00Z",
                "dimensions": [{"type": "PARKING_TIME", "volume": Decimal("0.5")}],
            },
        ]
        try:
            pricing = price_session(
                tariff={"elements": obj.elements, "min_price": obj.min_price, "max_price": obj.max_price},
                charging_periods=periods,
                start_date_time=start,
                end_date_time=start + timedelta(minutes=90),
            )
        except PricingError as exc:
            return f"cannot be priced: {exc}"
        total = pricing.total_cost
        incl = f" ({money(obj.currency, total.incl_vat)} incl. VAT)" if total.incl_vat is not None else ""
        return f"Monday 17:00 UTC, 11 kWh in 1 h, then 30 min parked: {money(obj.currency, total.excl_vat)}{incl}"

    @admin.display(description="elements")
    def elements_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(obj.elements)

    @admin.display(description="min price")
    def min_price_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(obj.min_price)

    @admin.display(description="max price")
    def max_price_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(obj.max_price)

    @admin.display(description="tariff alt text")
    def alt_text_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(obj.tariff_alt_text)

    @admin.display(description="energy mix")
    def energy_mix_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(obj.energy_mix)

    @admin.display(description="OCPI JSON")
    def doc_json(self, obj: Tariff) -> SafeString | str:
        return self._pre(loads_exact(obj.doc)) if obj.doc else "—"

    # --- which page shows what ---

    def get_fieldsets(self, request: HttpRequest, obj: Tariff | None = None) -> Any:
        if obj is not None and not (obj.is_own and self.has_change_permission(request, obj)):
            return self.read_fieldsets
        if obj is not None:  # an own tariff: the summary of what is stored, above the form
            return (
                (None, {"fields": ("country_code", "party_id", "ocpi_id", "currency", "type", "last_updated")}),
                ("Prices", {"fields": ("summary", "price_example", "elements", "min_price", "max_price")}),
                *self.edit_fieldsets[2:],
            )
        return self.edit_fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Tariff | None = None) -> Any:
        if obj is None:
            return ()
        if not (obj.is_own and self.has_change_permission(request, obj)):
            return [name for _, options in self.read_fieldsets for name in options["fields"]]
        return ("country_code", "party_id", "ocpi_id", "last_updated", "summary", "price_example")  # key is fixed

    def has_change_permission(self, request: HttpRequest, obj: Tariff | None = None) -> bool:
        if obj is not None and not obj.is_own:
            return False  # partners' tariffs are theirs: they change through the receiver or a pull
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Tariff | None = None) -> bool:
        if obj is not None and not obj.is_own:
            return False
        return super().has_delete_permission(request, obj)

    # --- writes go through the services ---

    def save_model(self, request: HttpRequest, obj: Tariff, form: Any, change: bool) -> None:
        """Create or replace the own tariff (stamped now, validated, pushed to every receiving partner)."""
        result = tariff_save_own(key=form.tariff_key(), data=form.ocpi_data)
        obj.pk = result.tariff.pk
        obj.last_updated = result.tariff.last_updated
        obj.doc = result.tariff.doc
        obj._state.adding = False

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Django's confirmation page, with what blocks the delete listed as protected (REFERENCE §9.1)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for tariff in objs:
            if not tariff.is_own:
                protected.append(f"Tariff {tariff} belongs to partner {tariff.partner}: read-only")
                continue
            for connector in tariff_connectors_using(tariff=tariff):
                location = connector.evse.location
                protected.append(
                    f"Connector {location.ocpi_id}/{connector.evse.uid}/{connector.ocpi_id} lists tariff "
                    f"{tariff.ocpi_id} in its tariff_ids"
                )
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Tariff) -> None:
        """Delete the own tariff and push a DELETE to every receiving partner."""
        try:
            tariff_delete(partner=None, key=Key(obj.country_code, obj.party_id, obj.ocpi_id))
        except OcpiError as exc:
            messages.error(request, exc.message)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tariff]) -> None:
        for tariff in queryset.filter(partner__isnull=True):
            self.delete_model(request, tariff)
