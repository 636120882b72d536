"""The operators' back-office for CDRs (STYLE §8): every CDR read-only (CDRs are immutable, REFERENCE §8.1), with
readable totals ("€12.34 incl. VAT, 22.5 kWh, 1h05"), the tariff engine's breakdown of our own CDRs, the reconciliation
of partners' CDRs (our recomputation of their cost: a badge, a filter, the comparison table and an action to recompute
it), and the action that issues the credit CDR of one of our own (pushed to the eMSP like any own CDR)."""

import json
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from cdrs.models import Cdr, Reconciliation
from cdrs.reconciliation import cdr_reconcile
from cdrs.services import cdr_credit
from ocpi_core.admin import badge, service_error_message
from ocpi_core.admin_filters import OwnerListFilter, PartyListFilter
from ocpi_core.exceptions import OcpiError
from tariffs.admin import money

_GREEN, _BLUE, _ORANGE, _RED, _GREY = "#2e7d32", "#1565c0", "#ef6c00", "#c62828", "#757575"
_RECONCILIATION_COLOURS: dict[str, str] = {
    Reconciliation.MATCH: _GREEN,
    Reconciliation.MISMATCH: _RED,
    Reconciliation.NOT_CHECKABLE: _GREY,
}


def hours_text(hours: Any) -> str:
    """1.0833 h → "1h05" (minutes rounded to the nearest)."""
    minutes = int((Decimal(hours) * 60).to_integral_value())
    return f"{minutes // 60}h{minutes % 60:02d}"


def totals_summary(cdr: Cdr) -> str:
    """ "€12.34 incl. VAT, 22.5 kWh, 1h05" (excl. VAT when the CDR gives no incl_vat)."""
    data = cdr.data
    cost = data.get("total_cost") or {}
    if cost.get("incl_vat") is not None:
        amount = f"{money(cdr.currency, cost['incl_vat'])} incl. VAT"
    else:
        amount = f"{money(cdr.currency, cost.get('excl_vat', 0))} excl. VAT"
    energy = f"{Decimal(data.get('total_energy', 0)).normalize():f} kWh"
    return f"{amount}, {energy}, {hours_text(data.get('total_time', 0))}"


class OwnCdrFilter(OwnerListFilter):
    """Our own CDRs or partners'."""


class PartyFilter(PartyListFilter):
    """The party the CDRs are under."""


class ReconciliationFilter(admin.SimpleListFilter):
    title = "reconciliation"
    parameter_name = "reconciliation"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*((choice.value, str(choice.label)) for choice in Reconciliation), ("none", "not checked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Cdr]) -> QuerySet[Cdr]:
        value = self.value()
        if value == "none":
            return queryset.filter(reconciliation_status="")
        if value in Reconciliation.values:
            return queryset.filter(reconciliation_status=value)
        return queryset


def reconciliation_table(cdr: Cdr) -> SafeString | str:
    """Their figures beside ours, field by field, the difference and a verdict; then the reason and the notes."""
    info: dict[str, Any] = cdr.reconciliation or {}
    if not info:
        return "—"
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td style="text-align:right">{}</td><td style="text-align:right">{}</td>'
        '<td style="text-align:right">{}</td><td>{}</td></tr>',
        (
            (
                row.get("field", ""),
                str(row.get("vat", "")).replace("_", ". ").replace("vat", "VAT"),
                row.get("theirs") if row.get("theirs") is not None else "—",
                row.get("ours") if row.get("ours") is not None else "—",
                row.get("difference") if row.get("difference") is not None else "—",
                badge("ok", _GREEN) if row.get("ok") else badge("differs", _RED) if row.get("ok") is False else "—",
            )
            for row in info.get("rows") or []
            if isinstance(row, dict)
        ),
    )
    quantities = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (name, (info.get("theirs") or {}).get(name, "—"), (info.get("ours") or {}).get(name, "—"))
            for name in ("total_energy", "total_time", "total_parking_time")
            if name in (info.get("theirs") or {}) or name in (info.get("ours") or {})
        ),
    )
    notes = format_html_join("", "<li>{}</li>", ((note,) for note in info.get("notes") or []))
    facts = format_html(
        "<p>{} — {}</p><p>Tariff: {} ({}); time zone: {} ({}); tolerance: {} {}; checked {}.</p>",
        reconciliation_badge(cdr),
        info.get("reason", ""),
        info.get("tariff_id") or "—",
        info.get("tariff_source") or "—",
        info.get("time_zone") or "—",
        info.get("time_zone_source") or "—",
        info.get("tolerance", ""),
        info.get("currency", cdr.currency),
        info.get("checked_at", ""),
    )
    table = (
        format_html(
            '<table class="reconciliation"><tr><th>total</th><th>VAT</th><th>theirs</th><th>ours</th>'
            "<th>difference</th><th></th></tr>{}</table>",
            rows,
        )
        if info.get("rows")
        else ""
    )
    extra = (
        format_html("<table><tr><th>quantity</th><th>theirs</th><th>ours</th></tr>{}</table>", quantities)
        if quantities
        else ""
    )
    return format_html("{}{}{}{}", facts, table, extra, format_html("<ul>{}</ul>", notes) if notes else "")


def reconciliation_badge(cdr: Cdr) -> SafeString | str:
    status = cdr.reconciliation_status
    if not status:
        return "—"
    reason = str((cdr.reconciliation or {}).get("reason", ""))
    return badge(Reconciliation(status).label, _RECONCILIATION_COLOURS.get(status, _GREY), reason)


@admin.register(Cdr)
class CdrAdmin(admin.ModelAdmin):
    """Every CDR, read-only; "Issue credit CDR" on our own."""

    list_display = (
        "ocpi_id",
        "party",
        "owner",
        "kind",
        "token_uid",
        "location_id",
        "start_date_time",
        "totals",
        "reconciliation_column",
    )
    list_filter = (OwnCdrFilter, ReconciliationFilter, PartyFilter, "credit", "partner", "start_date_time")
    search_fields = ("ocpi_id", "session_id", "token_uid", "contract_id", "location_id", "evse_uid")
    list_select_related = ("partner",)
    date_hierarchy = "start_date_time"
    ordering = ("-start_date_time", "-pk")
    actions = ["issue_credit", "recompute_reconciliation"]
    fieldsets = (
        (None, {"fields": ("ocpi_id", "party", "owner", "kind", "credit_of_link", "session_id", "last_updated")}),
        ("Charging", {"fields": ("start_date_time", "end_date_time", "location_id", "evse_uid", "totals")}),
        ("Token", {"fields": ("token_party", "token_uid", "contract_id", "auth_method")}),
        ("Delivery", {"fields": ("receiver", "receiver_location")}),
        ("Pricing breakdown", {"fields": ("breakdown",)}),
        ("Reconciliation (partners' CDRs: our recomputation of the cost)", {"fields": ("reconciliation_details",)}),
        ("OCPI JSON", {"fields": ("doc_json",)}),
    )
    readonly_fields = (
        "ocpi_id",
        "party",
        "owner",
        "kind",
        "credit_of_link",
        "session_id",
        "last_updated",
        "start_date_time",
        "end_date_time",
        "location_id",
        "evse_uid",
        "totals",
        "token_party",
        "token_uid",
        "contract_id",
        "auth_method",
        "receiver",
        "receiver_location",
        "breakdown",
        "reconciliation_details",
        "doc_json",
    )

    # --- immutable ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Cdr | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Cdr | None = None) -> bool:
        return False

    # --- columns and displays ---

    @admin.display(description="party", ordering="party_id")
    def party(self, obj: Cdr) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="token party")
    def token_party(self, obj: Cdr) -> str:
        return f"{obj.token_country_code}*{obj.token_party_id}"

    @admin.display(description="owner", ordering="partner__name")
    def owner(self, obj: Cdr) -> SafeString:
        if obj.partner_id is None:
            return badge("own", _GREEN)
        return badge(obj.partner.name if obj.partner else "partner", _BLUE, "Received from a partner")

    @admin.display(description="kind", ordering="credit")
    def kind(self, obj: Cdr) -> SafeString:
        if obj.credit:
            return badge("credit", _ORANGE, f"Credits {obj.credit_reference_id}")
        return badge("CDR", _GREEN)

    @admin.display(description="totals")
    def totals(self, obj: Cdr) -> str:
        return totals_summary(obj)

    @admin.display(description="reconciliation", ordering="reconciliation_status")
    def reconciliation_column(self, obj: Cdr) -> SafeString | str:
        return reconciliation_badge(obj)

    @admin.display(description="comparison")
    def reconciliation_details(self, obj: Cdr) -> SafeString | str:
        if obj.is_own:
            return "— (our own CDR: priced by our tariff engine, see the breakdown)"
        return reconciliation_table(obj)

    @admin.display(description="credits")
    def credit_of_link(self, obj: Cdr) -> SafeString | str:
        if obj.credit_of_id is not None:
            return format_html('<a href="../../{}/change/">{}</a>', obj.credit_of_id, obj.credit_reference_id)
        return obj.credit_reference_id or "—"

    @admin.display(description="breakdown")
    def breakdown(self, obj: Cdr) -> SafeString | str:
        pricing = obj.pricing
        if not pricing:
            return "—"
        lines = pricing.get("lines") or pricing.get("breakdown") or []
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line.get("dimension", ""),
                    line.get("volume", ""),
                    line.get("price", ""),
                    line.get("excl_vat", ""),
                    line.get("incl_vat", ""),
                )
                for line in lines
                if isinstance(line, dict)
            ),
        )
        table = format_html(
            "<table><tr><th>dimension</th><th>volume</th><th>price</th><th>excl. VAT</th><th>incl. VAT</th></tr>"
            "{}</table>",
            rows,
        )
        return format_html("{}<pre>{}</pre>", table, json.dumps(pricing, indent=2))

    @admin.display(description="OCPI JSON")
    def doc_json(self, obj: Cdr) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.doc), indent=2))

    # --- actions ---

    @admin.action(description="Issue credit CDR (negated amounts, sent to the eMSP)")
    def issue_credit(self, request: HttpRequest, queryset: QuerySet[Cdr]) -> None:
        issued = 0
        for cdr in queryset.order_by("pk"):
            try:
                cdr_credit(cdr=cdr)
                issued += 1
            except OcpiError as exc:
                self.message_user(request, f"{cdr.ocpi_id}: {service_error_message(exc)}", messages.ERROR)
        if issued:
            self.message_user(request, f"Issued {issued} credit CDR(s).", messages.SUCCESS)

    @admin.action(description="Recompute reconciliation (partners' CDRs: price again from the tariff, compare)")
    def recompute_reconciliation(self, request: HttpRequest, queryset: QuerySet[Cdr]) -> None:
        counts: dict[str, int] = {}
        for cdr in queryset.filter(partner__isnull=False).order_by("pk"):
            outcome = cdr_reconcile(cdr=cdr)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        skipped = queryset.filter(partner__isnull=True).count()
        summary = ", ".join(f"{count} {Reconciliation(status).label}" for status, count in sorted(counts.items()))
        self.message_user(
            request,
            f"Reconciled {sum(counts.values())} CDR(s){': ' + summary if summary else ''}"
            + (f"; {skipped} own CDR(s) skipped (priced here)." if skipped else "."),
            messages.WARNING if counts.get(Reconciliation.MISMATCH) else messages.SUCCESS,
        )
