"""The operators' back-office for sessions (STYLE §8): every session read-only (they change through the services,
by the charge point side, the platform API and partners' pushes), with status badges, energy and duration columns,
filters and search, the charging periods as a table and a power/energy chart (inline SVG, sessions_app.charts), and
actions: stop (COMPLETED / INVALID) our own sessions, push them again to the token's eMSP, and send charging
preferences (chosen in the action bar) for partners' sessions to their CPO.
"""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ocpi_core.admin import badge, service_error_message
from ocpi_core.admin_filters import OwnerListFilter, PartyListFilter
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import OcpiError
from sessions_app.charts import periods_table, power_energy_chart, read_periods
from sessions_app.models import ProfileTypeChoices, Session, SessionStatus
from sessions_app.services import (
    session_charging_preferences_send,
    session_duration,
    session_push_again,
    session_stop,
)
from tariffs.models import dumps_exact

_COLOURS: dict[str, str] = {
    SessionStatus.ACTIVE: "#2e7d32",
    SessionStatus.PENDING: "#f9a825",
    SessionStatus.RESERVATION: "#6a1b9a",
    SessionStatus.COMPLETED: "#1565c0",
    SessionStatus.INVALID: "#c62828",
}


def duration_text(value: timedelta | None) -> str:
    """1 h 05 min, 12 min, 40 s."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{secs} s"


class OwnSessionFilter(OwnerListFilter):
    own_label = "Our own (CPO)"
    partner_label = "Partners' (eMSP)"


class PartyFilter(PartyListFilter):
    title = "CPO party"


class TokenPartyFilter(PartyListFilter):
    title = "token party (eMSP)"
    parameter_name = "token_party"
    country_code_field = "token_country_code"
    party_id_field = "token_party_id"


class LocationFilter(admin.SimpleListFilter):
    title = "location"
    parameter_name = "location"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = Session.objects.order_by("location_id").values_list("location_id", flat=True).distinct()[:200]
        return [(location_id, location_id) for location_id in ids]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        return queryset.filter(location_id=self.value()) if self.value() else queryset


class SessionActionForm(ActionForm):
    """Extra fields in the action bar, used by "Send charging preferences"."""

    profile_type = forms.ChoiceField(choices=[("", "profile type"), *ProfileTypeChoices.choices], required=False)
    departure_time = forms.DateTimeField(required=False, help_text="departure (UTC)")
    energy_need = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=3)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    """Sessions, ours and partners', read-only; changes go through the actions (and the services)."""

    action_form = SessionActionForm
    list_display = (
        "ocpi_id",
        "status_badge",
        "party",
        "owner",
        "token",
        "location_id",
        "evse_uid",
        "energy",
        "duration",
        "start_date_time",
        "last_updated",
    )
    list_filter = ("status", OwnSessionFilter, PartyFilter, TokenPartyFilter, LocationFilter, "auth_method")
    search_fields = ("ocpi_id", "token_uid", "location_id", "authorization_reference", "evse_uid")
    list_select_related = ("partner",)
    ordering = ("-last_updated", "-pk")
    date_hierarchy = "start_date_time"
    actions = ("stop_completed", "stop_invalid", "push_again", "send_charging_preferences")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("country_code", "party_id", "ocpi_id"),
                    ("status_badge", "owner"),
                    ("start_date_time", "end_date_time", "duration"),
                    ("energy", "currency", "total_cost_text"),
                    ("auth_method", "authorization_reference"),
                    "cdr_token",
                    ("location_id", "evse_uid", "connector_id", "meter_id"),
                    "last_updated",
                )
            },
        ),
        ("Charging periods", {"fields": ("periods_chart", "periods_table", "periods_json")}),
        (
            "Charging preferences",
            {"fields": ("preferences_json", "charging_preferences_result", "charging_preferences_at")},
        ),
        ("At the start (own sessions)", {"fields": ("snapshot_json",), "classes": ("collapse",)}),
        ("As exchanged with partners", {"fields": ("doc_json",), "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Session | None = None) -> Any:
        return [name for row in self.fieldsets for field in row[1]["fields"] for name in _names(field)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        return False  # sessions are never deleted (REFERENCE §2.5)

    # --- columns and displays ---

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Session) -> SafeString:
        return badge(obj.status, _COLOURS.get(obj.status, "#555"))

    @admin.display(description="CPO", ordering="party_id")
    def party(self, obj: Session) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="owner", ordering="partner__name")
    def owner(self, obj: Session) -> SafeString:
        if obj.partner_id is None:
            return badge("own", "#2e7d32", "Our own session (we are the CPO)")
        return badge(obj.partner.name if obj.partner else "partner", "#1565c0", "Received from a CPO: read-only")

    @admin.display(description="token", ordering="token_uid")
    def token(self, obj: Session) -> str:
        return f"{obj.token_country_code}*{obj.token_party_id} {obj.token_uid}"

    @admin.display(description="kWh", ordering="kwh")
    def energy(self, obj: Session) -> str:
        return f"{obj.kwh.normalize():f}"

    @admin.display(description="duration")
    def duration(self, obj: Session) -> str:
        return duration_text(session_duration(obj))

    @admin.display(description="total cost")
    def total_cost_text(self, obj: Session) -> str:
        cost = obj.total_cost or {}
        if not cost:
            return "—"
        incl = f", {cost['incl_vat']} incl. VAT" if cost.get("incl_vat") is not None else ""
        return f"{obj.currency} {cost['excl_vat']} excl. VAT{incl}"

    @staticmethod
    def _pre(value: Any) -> SafeString | str:
        if value in (None, "", [], {}):
            return "—"
        text = value if isinstance(value, str) else dumps_exact(value).decode()
        return format_html('<pre style="white-space:pre-wrap;max-width:900px">{}</pre>', text)

    @admin.display(description="power and energy")
    def periods_chart(self, obj: Session) -> SafeString | str:
        return power_energy_chart(read_periods(obj.charging_periods, obj.end_date_time)) or "—"

    @admin.display(description="periods")
    def periods_table(self, obj: Session) -> SafeString | str:
        return periods_table(read_periods(obj.charging_periods, obj.end_date_time))

    @admin.display(description="as OCPI JSON")
    def periods_json(self, obj: Session) -> SafeString | str:
        return self._pre(obj.charging_periods)

    @admin.display(description="preferences in effect")
    def preferences_json(self, obj: Session) -> SafeString | str:
        return self._pre(obj.charging_preferences)

    @admin.display(description="location, tariffs, time zone")
    def snapshot_json(self, obj: Session) -> SafeString | str:
        return self._pre(obj.snapshot)

    @admin.display(description="OCPI JSON")
    def doc_json(self, obj: Session) -> SafeString | str:
        return self._pre(obj.doc)

    # --- actions ---

    def _stop(self, request: HttpRequest, queryset: QuerySet[Session], status: str) -> None:
        done, skipped = 0, 0
        for session in queryset.filter(partner__isnull=True).exclude(status__in=[s.value for s in _FINAL]):
            try:
                session_stop(session=session, status=status)
                done += 1
            except OcpiError as exc:
                self.message_user(request, f"{session}: {service_error_message(exc)}", messages.ERROR)
        skipped = queryset.count() - done
        self.message_user(request, f"{done} session(s) stopped as {status}; {skipped} left as they were.")

    @admin.action(description="Stop selected own sessions (COMPLETED, a CDR follows)")
    def stop_completed(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._stop(request, queryset, SessionStatus.COMPLETED)

    @admin.action(description="Stop selected own sessions as INVALID")
    def stop_invalid(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._stop(request, queryset, SessionStatus.INVALID)

    @admin.action(description="Push selected own sessions again to the token's eMSP (PUT)")
    def push_again(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        count = sum(session_push_again(session) for session in queryset.filter(partner__isnull=True))
        self.message_user(request, f"{count} session(s) queued for their eMSP.")

    @admin.action(description="Send charging preferences (chosen above) for selected partners' sessions")
    def send_charging_preferences(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        profile_type = request.POST.get("profile_type")
        if not profile_type:
            self.message_user(request, "Choose a profile type in the action bar first.", messages.ERROR)
            return
        prefs: dict[str, Any] = {"profile_type": profile_type}
        form = SessionActionForm(request.POST)
        form.is_valid()
        departure, energy = form.cleaned_data.get("departure_time"), form.cleaned_data.get("energy_need")
        if departure:
            prefs["departure_time"] = format_datetime(departure)
        if energy is not None:
            prefs["energy_need"] = energy
        for session in queryset.filter(partner__isnull=False).select_related("partner"):
            try:
                answer = session_charging_preferences_send(session=session, data=prefs)
            except OcpiError as exc:
                self.message_user(request, f"{session}: {service_error_message(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{session}: the CPO answered {answer}")


_FINAL = (SessionStatus.COMPLETED, SessionStatus.INVALID)


def _names(field: Any) -> list[str]:
    return list(field) if isinstance(field, tuple | list) else [field]
