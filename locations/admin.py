"""The operators' back-office for Locations, EVSEs and Connectors (STYLE §8).

Our own objects are edited here; every save goes through a service (`location_save_from_admin`,
`evse_save_from_admin`, `evse_status_set`) that bumps last_updated on the object and its parents, refreshes the
cached JSON and writes the outbox rows that push the change to partners, in the admin's transaction. The forms check
each object against the OCPI rules (`ocpi_core.validation`) first, so a broken value is an error on its field and
nothing is saved. Partners' objects come from the partner (receiver, pull sync) and are read-only.
Django admin cannot nest inlines: the Location page lists its EVSEs, each EVSE page edits its Connectors.
"""

import copy
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, cast

import orjson
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from locations.models import Connector, Evse, Location
from locations.services import (
    CONNECTOR,
    EVSE,
    LOCATION,
    Key,
    evse_save_from_admin,
    evse_status_set,
    location_save_from_admin,
    own_object_errors,
)
from ocpi_core.admin import SERVICE_ERRORS, badge, related_links, service_error_message
from ocpi_core.constants import Role
from ocpi_core.mapping import OcpiMapper
from ocpi_core.models import Party
from ocpi_core.validation import enum_values

_GREEN, _BLUE, _ORANGE, _RED, _GREY, _PURPLE = "#2e7d32", "#1565c0", "#e65100", "#c62828", "#616161", "#6a1b9a"

# The order statuses are listed in, and their colours: usable, in use, held, broken, not (yet / any more) there.
EVSE_STATUS_COLOURS: dict[str, str] = {
    "AVAILABLE": _GREEN,
    "CHARGING": _BLUE,
    "RESERVED": _PURPLE,
    "BLOCKED": _ORANGE,
    "OUTOFORDER": _RED,
    "INOPERATIVE": _RED,
    "PLANNED": _GREY,
    "UNKNOWN": _GREY,
    "REMOVED": _GREY,
}
REMOVED = "REMOVED"


def _choices(enum: str) -> list[tuple[str, str]]:
    """An OCPI enum as form choices, in the order above for statuses, alphabetical otherwise."""
    values = enum_values(enum)
    ordered = [v for v in EVSE_STATUS_COLOURS if v in values] if enum == "Status" else sorted(values)
    return [(value, value) for value in ordered]


def evse_status_badge(status: str, count: int | None = None) -> SafeString:
    text = f"{count} {status}" if count is not None else status
    return badge(text, EVSE_STATUS_COLOURS.get(status, _GREY))


def evse_status_summary(statuses: Iterable[str]) -> SafeString | str:
    """'2 AVAILABLE · 1 CHARGING' as coloured badges, in a fixed status order."""
    counts = Counter(statuses)
    if not counts:
        return "—"
    order = list(EVSE_STATUS_COLOURS)
    ranked = sorted(counts.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    return format_html_join(" · ", "{}", ((evse_status_badge(status, count),) for status, count in ranked))


# --- form fields -----------------------------------------------------------------------------------------------------


class OcpiJSONField(forms.JSONField):
    """A JSON value object (opening_times, energy_mix ...) in a monospace textarea, indented for reading."""

    def __init__(self, *, rows: int = 4, cols: int = 90, **kwargs: Any) -> None:
        kwargs["widget"] = forms.Textarea(attrs={"rows": rows, "cols": cols, "style": "font-family:monospace"})
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # what the operator typed, shown again with the error
        if value is None:
            return ""
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


class EnumListField(forms.TypedMultipleChoiceField):
    """A list of OCPI enum values (facilities, capabilities, parking_restrictions) as checkboxes."""

    def __init__(self, enum: str, **kwargs: Any) -> None:
        super().__init__(
            choices=_choices(enum), required=False, widget=forms.CheckboxSelectMultiple, empty_value=None, **kwargs
        )

    def prepare_value(self, value: Any) -> Any:
        return value or []


class OneLineJSONField(OcpiJSONField):
    """A short JSON list (a connector's tariff_ids) on one line: indented, a one-row textarea showed only "["."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return "" if value is None else orjson.dumps(value).decode()


def _enum_select(enum: str, *, required: bool = True) -> forms.TypedChoiceField:
    choices = _choices(enum)
    if not required:
        choices = [("", "---------"), *choices]
    return forms.TypedChoiceField(choices=choices, required=required, empty_value=None)


# --- forms: each object checked against the OCPI rules before anything is saved --------------------------------------


class OcpiModelForm(forms.ModelForm):
    """A model form whose row, with the values entered, must be a valid OCPI object (`ocpi_type`); each broken rule
    becomes an error on the field it names (or on the form)."""

    ocpi_type = ""
    mapper: OcpiMapper
    # OCPI field -> form field where the names differ
    error_fields: dict[str, str] = {"id": "ocpi_id"}

    def probe(self) -> Any:
        """A copy of the row with the entered values, to render as OCPI without touching the instance."""
        obj = copy.copy(self.instance)
        columns = {f.name for f in obj._meta.concrete_fields}
        for name, value in self.cleaned_data.items():
            if name in columns:
                setattr(obj, name, value)
        obj.last_updated = timezone.now()
        return obj

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        broken = set(self.errors)
        for error in own_object_errors(self.ocpi_type, self.mapper.to_ocpi(self.probe())):
            path, _, message = error.partition(": ")
            ocpi_name = path.split(".")[0].split("[")[0]
            field = self.error_fields.get(ocpi_name, ocpi_name)
            if field in broken:
                continue  # already reported by the form field itself
            if field in self.fields:
                self.add_error(field, f"{path}: {message}" if path != ocpi_name else message)
            else:
                self.add_error(None, error)
        return cleaned


def own_cpo_parties() -> list[tuple[str, str]]:
    return [
        (f"{p.country_code}*{p.party_id}", f"{p.country_code}*{p.party_id} {p.name}")
        for p in Party.objects.filter(partner__isnull=True, role=Role.CPO)
    ]


class LocationForm(OcpiModelForm):
    ocpi_type = "Location"
    mapper = LOCATION
    error_fields = {"id": "ocpi_id", "country_code": "party", "party_id": "party"}

    party = forms.ChoiceField(label="Owner", help_text="One of our own CPO parties (OCPI > Parties).")
    parking_type = _enum_select("ParkingType", required=False)
    facilities = EnumListField("Facility")

    class Meta:
        model = Location
        fields = (
            "ocpi_id",
            "publish",
            "publish_allowed_to",
            "name",
            "address",
            "city",
            "postal_code",
            "state",
            "country",
            "coordinates",
            "time_zone",
            "parking_type",
            "facilities",
            "opening_times",
            "charging_when_closed",
            "directions",
            "related_locations",
            "images",
            "energy_mix",
            "operator",
            "suboperator",
            "owner",
        )
        field_classes = {
            name: OcpiJSONField
            for name in (
                "publish_allowed_to",
                "coordinates",
                "related_locations",
                "directions",
                "operator",
                "suboperator",
                "owner",
                "opening_times",
                "images",
                "energy_mix",
            )
        }
        help_texts = {
            "publish_allowed_to": 'Only with publish off. List of PublishTokenType: [{"uid": "012345678", "type": '
            '"RFID"}] or [{"visual_number": "NL-ABC-1", "issuer": "Acme"}].',
            "country": "ISO 3166-1 alpha-3, e.g. NLD.",
            "coordinates": 'GeoLocation: {"latitude": "52.37310", "longitude": "4.89260"} (5 to 7 decimals).',
            "time_zone": "IANA time zone, e.g. Europe/Amsterdam.",
            "opening_times": 'Hours: {"twentyfourseven": true}, or {"twentyfourseven": false, "regular_hours": '
            '[{"weekday": 1, "period_begin": "08:00", "period_end": "18:00"}]}. Empty: unknown.',
            "directions": 'List of DisplayText: [{"language": "en", "text": "Second floor, left"}].',
            "related_locations": 'List of AdditionalGeoLocation: [{"latitude": "52.37320", "longitude": '
            '"4.89270", "name": {"language": "en", "text": "Entrance"}}].',
            "images": 'List of Image: [{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "jpeg"}].',
            "energy_mix": 'EnergyMix: {"is_green_energy": true, "supplier_name": "Acme Energy"}.',
            "operator": 'BusinessDetails: {"name": "Acme", "website": "https://acme.example"}.',
            "suboperator": "BusinessDetails, as operator.",
            "owner": "BusinessDetails, as operator.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            del self.fields["party"]  # the owner and id of an existing location never change
        else:
            cast(forms.ChoiceField, self.fields["party"]).choices = own_cpo_parties()

    def probe(self) -> Any:
        obj = super().probe()
        if "party" in self.cleaned_data:
            obj.country_code, obj.party_id = self.cleaned_data["party"].split("*")
        return obj

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "party" in cleaned:
            self.instance.country_code, self.instance.party_id = cleaned["party"].split("*")
            taken = Location.objects.filter(
                country_code__iexact=self.instance.country_code,
                party_id__iexact=self.instance.party_id,
                ocpi_id__iexact=cleaned.get("ocpi_id") or "",
            )
            if taken.exists():
                self.add_error("ocpi_id", f"{cleaned['party']} already has a location with this id.")
        return cleaned


class EvseForm(OcpiModelForm):
    ocpi_type = "EVSE"
    mapper = EVSE

    status = _enum_select("Status")
    capabilities = EnumListField("Capability")
    parking_restrictions = EnumListField("ParkingRestriction")

    class Meta:
        model = Evse
        fields = (
            "location",
            "uid",
            "evse_id",
            "status",
            "capabilities",
            "floor_level",
            "coordinates",
            "physical_reference",
            "directions",
            "parking_restrictions",
            "status_schedule",
            "images",
        )
        field_classes = {name: OcpiJSONField for name in ("status_schedule", "coordinates", "directions", "images")}
        help_texts = {
            "uid": "Our unique id of this EVSE within the platform; never changes.",
            "evse_id": "eMI3 EVSE ID, e.g. NL*OWN*E12345.",
            "status_schedule": 'List of StatusSchedule: [{"period_begin": "2026-01-01T00:00:00Z", "status": '
            '"PLANNED"}].',
            "coordinates": 'GeoLocation: {"latitude": "52.37310", "longitude": "4.89260"}.',
            "directions": 'List of DisplayText: [{"language": "en", "text": "Behind the barrier"}].',
            "images": 'List of Image: [{"url": "https://example.com/a.jpg", "category": "CHARGER", "type": "jpeg"}].',
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # the charge point's: changed with the Set EVSE status action, never by saving a stale form
            self.fields.pop("status", None)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        location = cleaned.get("location")
        if self.instance.pk is None and location is not None:
            if not location.is_own:
                self.add_error("location", "EVSEs are added to our own locations only; partners send theirs.")
            elif location.evses.filter(uid__iexact=cleaned.get("uid") or "").exists():
                self.add_error("uid", "This location already has an EVSE with this uid.")
        return cleaned


class EvseInlineForm(OcpiModelForm):
    """An EVSE row on its location's page: the few fields shown there (the rest is on the EVSE page)."""

    ocpi_type = "EVSE"
    mapper = EVSE

    class Meta:
        model = Evse
        fields = ("evse_id", "physical_reference", "floor_level")


class ConnectorForm(OcpiModelForm):
    ocpi_type = "Connector"
    mapper = CONNECTOR

    standard = _enum_select("ConnectorType")
    format = _enum_select("ConnectorFormat")
    power_type = _enum_select("PowerType")
    tariff_ids = OneLineJSONField(required=False, rows=1, cols=24, help_text='JSON list, e.g. ["T1", "T2"]')

    class Meta:
        model = Connector
        fields = (
            "ocpi_id",
            "standard",
            "format",
            "power_type",
            "max_voltage",
            "max_amperage",
            "max_electric_power",
            "tariff_ids",
            "terms_and_conditions",
        )
        # Sized for a row of the EVSE page's connector table: the admin's 20em inputs made it 1900 px wide.
        widgets = {
            "ocpi_id": forms.TextInput(attrs={"size": 6}),
            "max_voltage": forms.NumberInput(attrs={"style": "width:6em"}),
            "max_amperage": forms.NumberInput(attrs={"style": "width:6em"}),
            "max_electric_power": forms.NumberInput(attrs={"style": "width:7em"}),
            "terms_and_conditions": forms.URLInput(attrs={"size": 24}),
        }


class ConnectorFormSet(BaseInlineFormSet):
    """An EVSE keeps at least one connector (REFERENCE §6.4); connector ids are unique within their EVSE (CiString:
    case-insensitive)."""

    def clean(self) -> None:
        super().clean()
        seen: set[str] = set()
        for form in self.forms:
            if not form.has_changed() and form.instance.pk is None:
                continue  # an empty extra row
            if self.can_delete and form.cleaned_data.get("DELETE"):
                continue
            ocpi_id = (form.cleaned_data.get("ocpi_id") or "").upper()
            if ocpi_id in seen:
                form.add_error("ocpi_id", "Another connector of this EVSE has this id.")
            seen.add(ocpi_id)
        if not seen:
            raise forms.ValidationError("An EVSE needs at least one connector.")


# --- list filters ----------------------------------------------------------------------------------------------------


class OwnerFilter(admin.SimpleListFilter):
    """Our own objects (we are the CPO and push them) or partners' (received or pulled)."""

    title = "owner"
    parameter_name = "own"
    partner_field = "partner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Own"), ("no", "Partners'")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(**{f"{self.partner_field}__isnull": True})
        if self.value() == "no":
            return queryset.filter(**{f"{self.partner_field}__isnull": False})
        return queryset


class PartyFilter(admin.SimpleListFilter):
    """country_code*party_id of the owner, from the parties we know (ours and the partners')."""

    title = "party"
    parameter_name = "party"
    prefix = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        pairs = (
            Party.objects.filter(role__in=(Role.CPO, Role.HUB))  # the owners of locations
            .order_by("country_code", "party_id")
            .values_list("country_code", "party_id")
            .distinct()
        )
        return [(f"{cc}*{pid}", f"{cc}*{pid}") for cc, pid in pairs]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or "*" not in value:
            return queryset
        country_code, party_id = value.split("*", 1)
        return queryset.filter(
            **{f"{self.prefix}country_code__iexact": country_code, f"{self.prefix}party_id__iexact": party_id}
        )


class EvseStatusFilter(admin.SimpleListFilter):
    """Locations with at least one EVSE in the status."""

    title = "EVSE status"
    parameter_name = "evse_status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return _choices("Status")

    def queryset(self, request: HttpRequest, queryset: QuerySet[Location]) -> QuerySet[Location]:
        if not self.value():
            return queryset
        return queryset.filter(Exists(Evse.objects.filter(location=OuterRef("pk"), status=self.value())))


class InputFilter(admin.SimpleListFilter):
    """A text box rather than a list of every value (there are thousands of cities)."""

    template = "admin/locations/input_filter.html"
    lookup = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # the filter is shown; the template draws the box

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        return queryset.filter(**{self.lookup: value}) if value else queryset

    def choices(self, changelist: Any) -> Iterator[Any]:
        others = [  # the rest of the query (other filters, search, ordering) goes along with the box
            (name, value)
            for name, values in changelist.filter_params.items()
            if name != self.parameter_name
            for value in values
        ]
        yield {
            "selected": self.value() is not None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "others": others,
        }


class CityFilter(InputFilter):
    title = "city"
    parameter_name = "city"
    lookup = "city__iexact"


class EvseOwnerFilter(OwnerFilter):
    partner_field = "location__partner"


class EvsePartyFilter(PartyFilter):
    prefix = "location__"


class EvseStatusListFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return _choices("Status")

    def queryset(self, request: HttpRequest, queryset: QuerySet[Evse]) -> QuerySet[Evse]:
        return queryset.filter(status=self.value()) if self.value() else queryset


# --- shared read-only displays ---------------------------------------------------------------------------------------


def owner_badge(partner: Any) -> SafeString:
    if partner is None:
        return badge("own", _GREEN, "One of our own objects: edits are pushed to partners")
    return badge(str(partner), _GREY, "Received from this partner: read-only")


def pretty_json(text: str) -> SafeString | str:
    if not text:
        return "—"
    body = orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>', body)


def connector_total() -> Subquery:
    """How many connectors an EVSE has, as a subquery (no GROUP BY over the listed rows)."""
    counted = Connector.objects.filter(evse=OuterRef("pk")).order_by().values("evse").annotate(n=Count("pk"))
    return Subquery(counted.values("n"), output_field=IntegerField())


def deliveries_link(location: Location, path: str) -> SafeString:
    query = urlencode({"q": path, "country_code": location.country_code, "party_id": location.party_id})
    return format_html(
        '<a href="{}?{}">Push deliveries of this object</a>', reverse("admin:ocpi_core_delivery_changelist"), query
    )


# --- locations -------------------------------------------------------------------------------------------------------


class EvseInline(admin.TabularInline):
    """A location's EVSEs; each links to its page, where its connectors are edited. EVSEs are added on the EVSE
    page (an EVSE needs at least one connector) and never deleted (status REMOVED, with the Set status action)."""

    model = Evse
    form = EvseInlineForm
    extra = 0
    fields = ("uid", "evse_id", "status_badge", "physical_reference", "floor_level", "connector_count", "last_updated")
    readonly_fields = ("uid", "status_badge", "connector_count", "last_updated")
    show_change_link = True
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evse]:
        return super().get_queryset(request).annotate(connector_total=connector_total())

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_own:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status")
    def status_badge(self, obj: Evse) -> SafeString:
        return evse_status_badge(obj.status)

    @admin.display(description="connectors")
    def connector_count(self, obj: Evse) -> int:
        return getattr(obj, "connector_total", 0)


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    """Locations: ours editable (pushed on save), partners' read-only."""

    form = LocationForm
    list_display = (
        "ocpi_id",
        "name",
        "city",
        "country",
        "party",
        "owner_column",
        "evse_count",
        "evse_statuses",
        "publish",
        "last_updated",
    )
    list_display_links = ("ocpi_id", "name")
    list_filter = (
        PartyFilter,
        OwnerFilter,
        EvseStatusFilter,
        CityFilter,
        "country",
        "publish",
        "parking_type",
        "partner",
    )
    search_fields = ("ocpi_id", "name", "address", "city", "postal_code", "evses__uid", "evses__evse_id")
    list_select_related = ("partner",)
    date_hierarchy = "last_updated"
    ordering = ("-last_updated", "-pk")
    show_full_result_count = False  # thousands of rows: no second COUNT(*) over the whole table
    list_per_page = 50
    inlines = (EvseInline,)

    identity = ("owner_display", "ocpi_id", "publish", "publish_allowed_to")
    address = ("name", "address", "city", "postal_code", "state", "country", "coordinates", "time_zone")
    details = (
        "parking_type",
        "facilities",
        "opening_times",
        "charging_when_closed",
        "directions",
        "related_locations",
        "images",
        "energy_mix",
    )
    business = ("operator", "suboperator", "owner")
    bookkeeping = (
        "last_updated",
        "evse_statuses",
        "evse_add",
        "related",
        "deliveries",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Location]:
        # doc (the cached JSON) can be large: loaded only where it is shown; EVSEs for the status column in one query
        return (
            super()
            .get_queryset(request)
            .defer("doc")
            .prefetch_related(
                Prefetch("evses", queryset=Evse.objects.order_by("position", "pk").only("location_id", "status"))
            )
        )

    def get_fieldsets(self, request: HttpRequest, obj: Location | None = None) -> Any:
        if obj is None:
            return (
                ("Identity", {"fields": ("party", "ocpi_id", "publish", "publish_allowed_to")}),
                ("Address", {"fields": self.address}),
                ("Details", {"fields": self.details}),
                ("Operator, suboperator, owner", {"fields": self.business, "classes": ("collapse",)}),
            )
        identity = self.identity if obj.is_own else ("partner", *self.identity)
        return (
            ("Identity", {"fields": identity}),
            ("Address", {"fields": self.address}),
            ("Details", {"fields": self.details}),
            ("Operator, suboperator, owner", {"fields": self.business, "classes": ("collapse",)}),
            ("Status", {"fields": self.bookkeeping}),
            ("OCPI JSON (what partners get)", {"fields": ("doc_pretty",), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Location | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("owner_display", "ocpi_id", "partner", *self.bookkeeping, "doc_pretty")

    def get_inlines(self, request: HttpRequest, obj: Location | None) -> Any:
        return self.inlines if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Location | None = None) -> bool:
        if obj is not None and not obj.is_own:
            return False  # a partner's location changes when the partner sends it
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Location | None = None) -> bool:
        return False  # OCPI has no deletion of locations: EVSEs are set to REMOVED instead

    # --- columns ---

    @admin.display(description="party", ordering="party_id")
    def party(self, obj: Location) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="owner", ordering="partner")
    def owner_column(self, obj: Location) -> SafeString:
        return owner_badge(obj.partner)

    @admin.display(description="EVSEs")
    def evse_count(self, obj: Location) -> int:
        return sum(1 for evse in obj.evses.all() if evse.status != REMOVED)

    @admin.display(description="EVSE status")
    def evse_statuses(self, obj: Location) -> SafeString | str:
        return evse_status_summary(evse.status for evse in obj.evses.all())

    @admin.display(description="owner")
    def owner_display(self, obj: Location) -> SafeString:
        return format_html("{}*{} {}", obj.country_code, obj.party_id, owner_badge(obj.partner))

    @admin.display(description="push")
    def deliveries(self, obj: Location) -> SafeString | str:
        return deliveries_link(obj, obj.ocpi_id) if obj.is_own else "—"

    @admin.display(description="this location's")
    def related(self, obj: Location) -> SafeString:
        """Its sessions and CDRs: the changelists filtered on their own location and CPO party fields."""
        params = {"location_id": obj.ocpi_id, "country_code": obj.country_code, "party_id": obj.party_id}
        return related_links([("sessions_app.session", params, "sessions"), ("cdrs.cdr", params, "CDRs")])

    @admin.display(description="new EVSE")
    def evse_add(self, obj: Location) -> SafeString | str:
        if not obj.is_own:
            return "—"
        link = reverse("admin:locations_evse_add") + "?" + urlencode({"location": obj.pk})
        return format_html('<a href="{}" class="addlink">Add an EVSE</a> (with its connectors)', link)

    @admin.display(description="OCPI JSON")
    def doc_pretty(self, obj: Location) -> SafeString | str:
        return pretty_json(obj.doc)

    # --- saving: one service call with the location and the EVSEs edited on its page ---

    def save_model(self, request: HttpRequest, obj: Location, form: Any, change: bool) -> None:
        """Nothing here: the location is saved in save_related, together with its EVSEs (one push)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        evses: list[tuple[Evse, list[str]]] = []
        for formset in formsets:
            formset.save(commit=False)
            evses += [(evse, list(fields)) for evse, fields in formset.changed_objects]
        changed = form.changed_data if change else [f.name for f in Location._meta.concrete_fields]
        location_save_from_admin(location=form.instance, changed=changed, evses=evses)


# --- EVSEs -----------------------------------------------------------------------------------------------------------


class ConnectorInline(admin.TabularInline):
    """An EVSE's connectors (at least one)."""

    model = Connector
    form = ConnectorForm
    formset = ConnectorFormSet
    extra = 0
    min_num = 1
    fields = (
        "ocpi_id",
        "standard",
        "format",
        "power_type",
        "max_voltage",
        "max_amperage",
        "max_electric_power",
        "tariff_ids",
        "terms_and_conditions",
        "last_updated",
    )
    readonly_fields = ("last_updated",)

    def _editable(self, obj: Any) -> bool:
        return obj is None or obj.location.is_own

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


class EvseStatusForm(forms.Form):
    status = _enum_select("Status")


@admin.register(Evse)
class EvseAdmin(admin.ModelAdmin):
    """EVSEs with their connectors: ours editable (pushed on save), partners' read-only. The status comes from the
    charge point; staff set it with the "Set EVSE status" action (a PATCH to partners)."""

    form = EvseForm
    list_display = (
        "uid",
        "evse_id",
        "status_badge",
        "location_link",
        "party",
        "owner_column",
        "connector_count",
        "physical_reference",
        "last_updated",
    )
    list_filter = (EvseStatusListFilter, EvseOwnerFilter, EvsePartyFilter, "location__country")
    search_fields = ("uid", "evse_id", "location__ocpi_id", "location__name", "location__city")
    list_select_related = ("location", "location__partner")
    ordering = ("-last_updated", "-pk")
    show_full_result_count = False
    list_per_page = 50
    raw_id_fields = ("location",)
    inlines = (ConnectorInline,)
    actions = ("set_status",)

    fields_own = (
        "uid",
        "evse_id",
        "status",
        "capabilities",
        "floor_level",
        "coordinates",
        "physical_reference",
        "directions",
        "parking_restrictions",
        "status_schedule",
        "images",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evse]:
        return (
            super()
            .get_queryset(request)
            .select_related("location", "location__partner")
            .defer("location__doc")
            .annotate(connector_total=connector_total())
        )

    def get_fieldsets(self, request: HttpRequest, obj: Evse | None = None) -> Any:
        if obj is None:
            return ((None, {"fields": ("location", *self.fields_own)}),)
        fields = ["location_link", *self.fields_own, "last_updated", "status_history", "deliveries"]
        fields[fields.index("status")] = "status_badge"
        return ((None, {"fields": fields}),)

    def get_readonly_fields(self, request: HttpRequest, obj: Evse | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("location_link", "uid", "status_badge", "last_updated", "status_history", "deliveries")

    def has_change_permission(self, request: HttpRequest, obj: Evse | None = None) -> bool:
        if obj is not None and not obj.location.is_own:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Evse | None = None) -> bool:
        return False  # EVSEs are never deleted: status REMOVED instead (REFERENCE §6)

    # --- columns ---

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Evse) -> SafeString:
        return evse_status_badge(obj.status)

    @admin.display(description="location", ordering="location__ocpi_id")
    def location_link(self, obj: Evse) -> SafeString:
        location = obj.location
        return format_html(
            '<a href="{}">{} {}</a>',
            reverse("admin:locations_location_change", args=[location.pk]),
            location.ocpi_id,
            location.name or "",
        )

    @admin.display(description="party")
    def party(self, obj: Evse) -> str:
        return f"{obj.location.country_code}*{obj.location.party_id}"

    @admin.display(description="owner", ordering="location__partner")
    def owner_column(self, obj: Evse) -> SafeString:
        return owner_badge(obj.location.partner)

    @admin.display(description="connectors")
    def connector_count(self, obj: Evse) -> int:
        return getattr(obj, "connector_total", 0)

    @admin.display(description="status history")
    def status_history(self, obj: Evse) -> SafeString:
        return related_links([("dashboard.evsestatuschange", {"evse__id__exact": obj.pk}, "status changes")])

    @admin.display(description="push")
    def deliveries(self, obj: Evse) -> SafeString | str:
        return deliveries_link(obj.location, f"{obj.location.ocpi_id}/{obj.uid}") if obj.location.is_own else "—"

    # --- saving: one service call with the EVSE and the connectors edited on its page ---

    def save_model(self, request: HttpRequest, obj: Evse, form: Any, change: bool) -> None:
        """Nothing here: the EVSE is saved in save_related, together with its connectors (one push)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        connectors: list[tuple[Connector, list[str]]] = []
        deleted: list[Connector] = []
        for formset in formsets:
            formset.save(commit=False)
            connectors += [(c, [f.name for f in Connector._meta.concrete_fields]) for c in formset.new_objects]
            connectors += [(c, list(fields)) for c, fields in formset.changed_objects]
            deleted += formset.deleted_objects
        changed = form.changed_data if change else [f.name for f in Evse._meta.concrete_fields]
        evse_save_from_admin(evse=form.instance, changed=changed, connectors=connectors, deleted=deleted)

    # --- the status, from staff ---

    @admin.action(description="Set EVSE status (pushed to partners as a PATCH)", permissions=["change"])
    def set_status(self, request: HttpRequest, queryset: QuerySet[Evse]) -> HttpResponse | None:
        form = EvseStatusForm(request.POST if "apply" in request.POST else None)
        evses = list(queryset.select_related("location").order_by("location_id", "position", "pk"))
        if form.is_valid():
            status = form.cleaned_data["status"]
            done = 0
            for evse in evses:
                location = evse.location
                if not location.is_own:
                    continue
                key = Key(location.country_code, location.party_id, location.ocpi_id, evse.uid)
                try:
                    evse_status_set(key=key, status=status)
                except SERVICE_ERRORS as exc:
                    self.message_user(request, f"{evse.uid}: {service_error_message(exc)}", messages.ERROR)
                else:
                    done += 1
                    self.log_change(request, evse, f"Status set to {status}")
            skipped = sum(1 for evse in evses if not evse.location.is_own)
            self.message_user(request, f"Status {status} set on {done} EVSE{'s' if done != 1 else ''}.")
            if skipped:
                self.message_user(
                    request,
                    f"{skipped} partners' EVSE{'s' if skipped != 1 else ''} left unchanged: read-only here.",
                    messages.WARNING,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Set EVSE status",
            "form": form,
            "evses": evses,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/locations/evse/set_status.html", context)
