"""The operators' back-office for push and pull (STYLE §8): the outbox (deliveries and their attempts, with "Resend
now"), pull sync runs with their progress, and the sync state of each partner and module.

All of it is read-only: rows are written by `ocpi_core.push` and `ocpi_core.sync`; the actions call them (resend) or
queue their Celery tasks (pull now, full sync).
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.timezone import localtime

from ocpi_core.admin import badge, ocpi_status_colour
from ocpi_core.constants import InterfaceRole
from ocpi_core.models import Delivery, DeliveryAttempt, Partner, SyncRun, SyncState
from ocpi_core.push import outbox_resend
from ocpi_core.sync import SYNC_STALE_AFTER, pull_modules

_GREEN, _ORANGE, _RED, _BLUE, _GREY = "#2e7d32", "#e65100", "#c62828", "#1565c0", "#616161"

DELIVERY_COLOURS: dict[str, str] = {
    Delivery.Status.PENDING: _BLUE,
    Delivery.Status.IN_FLIGHT: _ORANGE,
    Delivery.Status.DELIVERED: _GREEN,
    Delivery.Status.FAILED: _RED,
    Delivery.Status.SUPERSEDED: _GREY,
}
SYNC_COLOURS: dict[str, str] = {
    SyncRun.Status.RUNNING: _BLUE,
    SyncRun.Status.SUCCEEDED: _GREEN,
    SyncRun.Status.FAILED: _RED,
}
# While a sync runs, its list reloads itself (HTTP Refresh header) so pages and objects count up.
SYNC_REFRESH_SECONDS = 5


def short(text: str, length: int = 60) -> SafeString | str:
    if not text:
        return ""
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))


def when(value: datetime | None) -> str:
    return localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the push and sync engines: shown, never added or edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- the outbox ------------------------------------------------------------------------------------------------------


def delivery_status_badge(status: str) -> SafeString:
    return badge(status, DELIVERY_COLOURS.get(status, _GREY), Delivery.Status(status).label)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "method", "url", "http_status", "ocpi_status", "duration_ms", "outcome", "error")
    readonly_fields = fields
    verbose_name_plural = "attempts (newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The push outbox: one row per change of an own object and partner; failed rows can be resent."""

    list_display = (
        "created_at",
        "partner",
        "module",
        "object_display",
        "method",
        "status_badge",
        "attempts",
        "next_attempt",
        "last_result",
        "last_error_short",
    )
    list_filter = ("status", "partner", "module", "method")
    search_fields = ("object_path", "last_error")
    date_hierarchy = "created_at"
    list_select_related = ("partner",)
    show_full_result_count = False  # the outbox grows: no second COUNT(*) over the whole table
    actions = ("resend_now",)
    inlines = (DeliveryAttemptInline,)
    fields = (
        "partner",
        "module",
        "object_display",
        "method",
        "fields",
        "status_badge",
        "created_at",
        "window_start",
        "next_attempt_at",
        "lease_until",
        "attempts",
        "delivered_at",
        "last_result",
        "last_error",
        "superseded_by",
    )
    readonly_fields = fields

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("ocpi_core.change_delivery"))

    @admin.display(description="object", ordering="object_path")
    def object_display(self, obj: Delivery) -> str:
        return f"{obj.country_code}/{obj.party_id}/{obj.object_path}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> SafeString:
        return delivery_status_badge(obj.status)

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery) -> str:
        return when(obj.next_attempt_at) if obj.status in Delivery.OPEN else "—"

    @admin.display(description="last HTTP / OCPI status")
    def last_result(self, obj: Delivery) -> SafeString | str:
        if obj.last_http_status is None and obj.last_ocpi_status is None:
            return "—"
        ocpi = (
            badge(str(obj.last_ocpi_status), ocpi_status_colour(obj.last_ocpi_status))
            if obj.last_ocpi_status is not None
            else "—"
        )
        return format_html("{} / {}", obj.last_http_status or "—", ocpi)

    @admin.display(description="last error")
    def last_error_short(self, obj: Delivery) -> SafeString | str:
        return short(obj.last_error)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        failed = Delivery.objects.filter(status=Delivery.Status.FAILED).count()
        title = "Push outbox"
        if failed:
            title += f" — {failed} failed deliver{'y' if failed == 1 else 'ies'}"
            if request.GET.get("status__exact") != Delivery.Status.FAILED and request.method == "GET":
                link = reverse("admin:ocpi_core_delivery_changelist") + "?status__exact=FAILED"
                self.message_user(
                    request,
                    format_html(
                        '{} deliver{} failed and will not be retried: <a href="{}">show them</a>, then '
                        '"Resend now" once the partner is fixed.',
                        failed,
                        "y" if failed == 1 else "ies",
                        link,
                    ),
                    messages.WARNING,
                )
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.action(description="Resend now (failed or waiting deliveries)", permissions=["resend"])
    def resend_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        selected = list(queryset)
        count = outbox_resend(deliveries=selected)
        skipped = len(selected) - count
        self.message_user(
            request,
            f"{count} deliver{'y' if count == 1 else 'ies'} queued to be sent now."
            + (f" {skipped} left alone (delivered, superseded or being sent)." if skipped else ""),
            messages.SUCCESS if count else messages.WARNING,
        )


# --- pull sync -------------------------------------------------------------------------------------------------------


def sync_status_badge(run: SyncRun) -> SafeString:
    return badge(run.status, SYNC_COLOURS.get(run.status, _GREY), run.get_status_display())


def sync_progress(run: SyncRun) -> str:
    """'120 of 500 (24%)' objects when the partner said how many, '120' otherwise."""
    if run.total:
        return f"{run.received} of {run.total} ({min(100, run.received * 100 // run.total)}%)"
    return str(run.received)


def sync_duration(run: SyncRun) -> str:
    end = run.finished_at or timezone.now()
    text = duration((end - run.started_at).total_seconds())
    return text if run.finished_at else f"{text} so far"


def sync_running() -> bool:
    """Is a sync running now (a run marked RUNNING for longer than SYNC_STALE_AFTER died with its worker)?"""
    recent = timezone.now() - SYNC_STALE_AFTER
    return SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__gte=recent).exists()


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    """Every pull of a partner's Sender list, with its progress while it runs."""

    list_display = (
        "started_at",
        "partner",
        "module",
        "kind",
        "status_badge",
        "finished_at",
        "duration_display",
        "pages",
        "progress",
        "errors",
        "removed",
        "message_short",
    )
    list_filter = ("status", "kind", "partner", "module")
    search_fields = ("message", "partner__name")
    date_hierarchy = "started_at"
    list_select_related = ("partner",)
    show_full_result_count = False
    fields = (
        "partner",
        "module",
        "kind",
        "status_badge",
        "date_from",
        "started_at",
        "finished_at",
        "duration_display",
        "pages",
        "progress",
        "errors",
        "removed",
        "message",
    )
    readonly_fields = fields

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: SyncRun) -> SafeString:
        return sync_status_badge(obj)

    @admin.display(description="duration")
    def duration_display(self, obj: SyncRun) -> str:
        return sync_duration(obj)

    @admin.display(description="objects")
    def progress(self, obj: SyncRun) -> str:
        return sync_progress(obj)

    @admin.display(description="message")
    def message_short(self, obj: SyncRun) -> SafeString | str:
        return short(obj.message.replace("\n", " · "), 80)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        running = sync_running()
        title = "Sync runs" + (f" — running now, refreshed every {SYNC_REFRESH_SECONDS} s" if running else "")
        response = super().changelist_view(request, {"title": title, **(extra_context or {})})
        if running:
            response["Refresh"] = str(SYNC_REFRESH_SECONDS)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        run = self.get_object(request, object_id)
        if run is not None and run.status == SyncRun.Status.RUNNING:
            response["Refresh"] = str(SYNC_REFRESH_SECONDS)
        return response


def partner_sync_enqueue(partners: Iterable[Partner], *, full: bool) -> list[tuple[Partner, list[str], str]]:
    """Queue a pull (incremental or full) of every pullable module each partner offers as a SENDER.

    Returns (partner, modules queued, problem) per partner; `problem` is empty when all went well.
    """
    from ocpi_core.tasks import sync_partner_task

    results: list[tuple[Partner, list[str], str]] = []
    for partner in partners:
        if partner.status != Partner.Status.REGISTERED:
            results.append((partner, [], f"not registered ({partner.get_status_display()})"))
            continue
        modules = [m for m in pull_modules() if partner.endpoint_url(m, InterfaceRole.SENDER)]
        if not modules:
            results.append((partner, [], "offers no module we pull (no SENDER endpoint)"))
            continue
        try:
            for module in modules:
                sync_partner_task.delay(partner.pk, module, full=full)
        except Exception as exc:  # the broker is down: say so, nothing else to undo
            results.append((partner, [], f"could not queue the sync ({exc.__class__.__name__}: {exc})"))
            continue
        results.append((partner, modules, ""))
    return results


def sync_enqueue_messages(
    modeladmin: admin.ModelAdmin, request: HttpRequest, partners: Iterable[Partner], *, full: bool
) -> None:
    """Run partner_sync_enqueue and tell the operator what was queued, partner by partner."""
    kind = "full sync" if full else "incremental pull"
    for partner, modules, problem in partner_sync_enqueue(partners, full=full):
        if problem:
            modeladmin.message_user(request, f"{partner}: {problem}", messages.ERROR)
            continue
        modeladmin.log_change(request, partner, f"Queued a {kind} of {', '.join(modules)}")
        modeladmin.message_user(
            request,
            format_html(
                '{}: {} of {} queued; follow it on <a href="{}">Sync runs</a>.',
                partner,
                kind,
                ", ".join(modules),
                reverse("admin:ocpi_core_syncrun_changelist") + "?" + urlencode({"partner__id__exact": partner.pk}),
            ),
            messages.SUCCESS,
        )


@admin.register(SyncState)
class SyncStateAdmin(ReadOnlyAdmin):
    """Per partner and module: the last successful (and full) sync, whether one runs now, and the last run."""

    list_display = (
        "partner",
        "module",
        "last_success_at",
        "last_full_at",
        "running",
        "last_run",
    )
    list_filter = ("partner", "module")
    list_select_related = ("partner",)
    actions = ("pull_now", "full_sync")
    fields = ("partner", "module", "last_success_at", "last_full_at", "running", "last_run")
    readonly_fields = fields

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("ocpi_core.change_partner"))

    @admin.display(description="running since", ordering="running_since")
    def running(self, obj: SyncState) -> SafeString | str:
        if obj.running_since is None:
            return "—"
        return badge(f"since {when(obj.running_since)}", _BLUE)

    @admin.display(description="last run")
    def last_run(self, obj: SyncState) -> SafeString | str:
        run = SyncRun.objects.filter(partner_id=obj.partner_id, module=obj.module).order_by("-started_at").first()
        if run is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a> {} {}, {} objects, {} errors',
            reverse("admin:ocpi_core_syncrun_change", args=[run.pk]),
            sync_status_badge(run),
            run.get_kind_display(),
            when(run.started_at),
            sync_progress(run),
            run.errors,
        )

    def _partners(self, queryset: QuerySet[SyncState]) -> list[Partner]:
        return list(Partner.objects.filter(pk__in=queryset.values("partner_id")).prefetch_related("endpoints"))

    @admin.action(description="Pull now (incremental)", permissions=["sync"])
    def pull_now(self, request: HttpRequest, queryset: QuerySet[SyncState]) -> None:
        sync_enqueue_messages(self, request, self._partners(queryset), full=False)

    @admin.action(description="Full sync (objects no longer listed are retired)", permissions=["sync"])
    def full_sync(self, request: HttpRequest, queryset: QuerySet[SyncState]) -> None:
        sync_enqueue_messages(self, request, self._partners(queryset), full=True)


# --- on the partner's page -------------------------------------------------------------------------------------------


def partner_push_sync_summary(partner: Partner) -> SafeString:
    """The partner's outbox counts and, per pulled module, the sync state and last run (read-only)."""
    counts = dict(
        Delivery.objects.filter(partner=partner)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    outbox = reverse("admin:ocpi_core_delivery_changelist")
    push = format_html_join(
        " · ",
        '<a href="{}?{}">{}</a>',
        (
            (
                outbox,
                urlencode({"partner__id__exact": str(partner.pk), "status__exact": str(status)}),
                badge(f"{counts.get(status, 0)} {Delivery.Status(status).label.lower()}", colour),
            )
            for status, colour in (
                (Delivery.Status.PENDING, _BLUE),
                (Delivery.Status.IN_FLIGHT, _ORANGE),
                (Delivery.Status.FAILED, _RED if counts.get(Delivery.Status.FAILED) else _GREY),
            )
        ),
    )
    states = {s.module: s for s in SyncState.objects.filter(partner=partner)}
    modules = sorted(set(states) | {m for m in pull_modules() if partner.endpoint_url(m, InterfaceRole.SENDER)})
    rows = []
    for module in modules:
        state = states.get(module)
        run = SyncRun.objects.filter(partner=partner, module=module).order_by("-started_at").first()
        last = (
            format_html(
                '<a href="{}">{}</a> {} {}, {} objects, {} errors',
                reverse("admin:ocpi_core_syncrun_change", args=[run.pk]),
                sync_status_badge(run),
                run.get_kind_display(),
                when(run.started_at),
                sync_progress(run),
                run.errors,
            )
            if run
            else "never"
        )
        rows.append(
            (
                module,
                when(state.last_success_at) if state else "—",
                when(state.last_full_at) if state else "—",
                f"since {when(state.running_since)}" if state and state.running_since else "—",
                last,
            )
        )
    sync = (
        format_html(
            "<table><thead><tr><th>module</th><th>last success</th><th>last full</th><th>running</th>"
            "<th>last run</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )
        if rows
        else "no module pulled from this partner"
    )
    return format_html("<p>Push outbox: {}</p><div>Pull sync: {}</div>", push, sync)
