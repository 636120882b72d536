"""Back-office of the partner self-test (STYLE §8): runs with their progress and verdict, the checks of a run as a
table with outcome filters, "Run self-test again"; the partner page's "Run conformance self-test" action calls
`selftest_enqueue_messages`.

Everything here is read-only: rows are written by `selftest.services` only.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.timezone import localtime

from ocpi_core.admin import badge
from ocpi_core.models import Partner
from selftest.models import SelfTestCheck, SelfTestRun
from selftest.services import selftest_enqueue

_GREEN, _ORANGE, _RED, _BLUE, _GREY = "#2e7d32", "#e65100", "#c62828", "#1565c0", "#616161"
RUN_COLOURS: dict[str, str] = {
    SelfTestRun.Status.RUNNING: _BLUE,
    SelfTestRun.Status.PASSED: _GREEN,
    SelfTestRun.Status.FAILED: _RED,
    SelfTestRun.Status.ERROR: _ORANGE,
}
OUTCOME_COLOURS: dict[str, str] = {
    SelfTestCheck.Outcome.PASS: _GREEN,
    SelfTestCheck.Outcome.FAIL: _RED,
    SelfTestCheck.Outcome.WARN: _ORANGE,
    SelfTestCheck.Outcome.SKIP: _GREY,
}
REFRESH_SECONDS = 3  # a running self-test's pages reload themselves (HTTP Refresh header)


def run_badge(run: SelfTestRun) -> SafeString:
    return badge(run.status, RUN_COLOURS.get(run.status, _GREY), run.get_status_display())


def outcome_badge(outcome: str) -> SafeString:
    return badge(outcome, OUTCOME_COLOURS.get(outcome, _GREY), SelfTestCheck.Outcome(outcome).label)


def run_counts(run: SelfTestRun) -> SafeString:
    """'12 pass · 2 fail · 1 warn · 3 skip' as badges."""
    return format_html_join(
        " ",
        "{}",
        (
            (badge(f"{count} {outcome.lower()}", OUTCOME_COLOURS[outcome] if count else _GREY),)
            for outcome, count in (
                (SelfTestCheck.Outcome.PASS, run.passed),
                (SelfTestCheck.Outcome.FAIL, run.failed),
                (SelfTestCheck.Outcome.WARN, run.warnings),
                (SelfTestCheck.Outcome.SKIP, run.skipped),
            )
        ),
    )


def _when(value: datetime | None) -> str:
    return localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def run_link(run: SelfTestRun) -> SafeString:
    return format_html(
        '<a href="{}">{} {}</a>',
        reverse("admin:selftest_selftestrun_change", args=[run.pk]),
        run_badge(run),
        _when(run.started_at),
    )


def partner_selftest_summary(partner: Partner) -> SafeString:
    """The partner's last self-test and a link to all of them (shown on the partner's page)."""
    runs = reverse("admin:selftest_selftestrun_changelist") + "?" + urlencode({"partner__id__exact": partner.pk})
    last = SelfTestRun.objects.filter(partner=partner).order_by("-started_at", "-pk").first()
    if last is None:
        return format_html('never run (<a href="{}">self-test runs</a>)', runs)
    return format_html('last: {} {} · <a href="{}">all self-test runs</a>', run_link(last), run_counts(last), runs)


def selftest_enqueue_messages(modeladmin: admin.ModelAdmin, request: HttpRequest, partners: Iterable[Partner]) -> None:
    """Start a self-test per registered partner on a worker and tell the operator where to follow it."""
    for partner in partners:
        if partner.status != Partner.Status.REGISTERED:
            modeladmin.message_user(
                request, f"{partner}: not registered ({partner.get_status_display()}); nothing to test", messages.ERROR
            )
            continue
        run = selftest_enqueue(partner=partner)
        modeladmin.log_change(request, partner, "Started a conformance self-test")
        modeladmin.message_user(
            request,
            format_html(
                '{}: conformance self-test started; follow it on <a href="{}">its report</a>.',
                partner,
                reverse("admin:selftest_selftestrun_change", args=[run.pk]),
            ),
            messages.SUCCESS,
        )


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SelfTestRun)
class SelfTestRunAdmin(_ReadOnly):
    """Every self-test of a partner; its page shows the checks, filterable by outcome."""

    list_display = ("started_at", "partner", "status_badge", "counts", "progress_display", "duration", "requests")
    list_filter = ("status", "partner")
    search_fields = ("partner__name", "message")
    date_hierarchy = "started_at"
    list_select_related = ("partner",)
    actions = ("run_again",)
    fields = (
        "partner",
        "status_badge",
        "counts",
        "progress_display",
        "started_at",
        "finished_at",
        "duration",
        "requests",
        "message",
    )
    readonly_fields = fields
    change_form_template = "admin/selftest/selftestrun/change_form.html"

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("ocpi_core.change_partner"))

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: SelfTestRun) -> SafeString:
        return run_badge(obj)

    @admin.display(description="checks")
    def counts(self, obj: SelfTestRun) -> SafeString:
        return run_counts(obj)

    @admin.display(description="progress")
    def progress_display(self, obj: SelfTestRun) -> str:
        return f"{obj.progress} ({obj.requests} requests)" if obj.status == SelfTestRun.Status.RUNNING else "finished"

    @admin.display(description="duration")
    def duration(self, obj: SelfTestRun) -> str:
        seconds = ((obj.finished_at or timezone.now()) - obj.started_at).total_seconds()
        return f"{seconds:.1f} s" + ("" if obj.finished_at else " so far")

    @admin.action(description="Run self-test again", permissions=["rerun"])
    def run_again(self, request: HttpRequest, queryset: QuerySet[SelfTestRun]) -> HttpResponse | None:
        partners = Partner.objects.filter(pk__in=queryset.values("partner_id")).order_by("name")
        selftest_enqueue_messages(self, request, partners)
        if request.POST.get("_return") == "change" and len(partners) == 1:
            latest = SelfTestRun.objects.filter(partner=partners[0]).order_by("-pk").first()
            if latest is not None:
                return HttpResponseRedirect(reverse("admin:selftest_selftestrun_change", args=[latest.pk]))
        return None

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if SelfTestRun.objects.filter(status=SelfTestRun.Status.RUNNING).exists():
            response["Refresh"] = str(REFRESH_SECONDS)
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        context: dict[str, Any] = dict(extra_context or {})
        if run is not None:
            outcome = request.GET.get("outcome", "")
            checks = run.checks.all()
            if outcome in SelfTestCheck.Outcome.values:
                checks = checks.filter(outcome=outcome)
            else:
                outcome = ""
            context.update(
                checks=[(c, outcome_badge(c.outcome)) for c in checks],
                outcome=outcome,
                outcome_filters=[("", "All"), *SelfTestCheck.Outcome.choices],
                can_rerun=self.has_rerun_permission(request),
            )
        response = super().change_view(request, object_id, form_url, context)
        if run is not None and run.status == SelfTestRun.Status.RUNNING:
            response["Refresh"] = str(REFRESH_SECONDS)
        return response


@admin.register(SelfTestCheck)
class SelfTestCheckAdmin(_ReadOnly):
    """Checks of every run, to compare a rule across partners and runs."""

    list_display = ("run", "rule", "title", "outcome_display", "http_status", "ocpi_status_code", "field_path", "ev")
    list_filter = ("outcome", "run__partner", "rule")
    search_fields = ("rule", "title", "evidence", "url", "field_path")
    list_select_related = ("run__partner",)
    fields = (
        "run",
        "rule",
        "title",
        "outcome_display",
        "url",
        "http_status",
        "ocpi_status_code",
        "field_path",
        "evidence_pre",
    )
    readonly_fields = fields

    @admin.display(description="outcome", ordering="outcome")
    def outcome_display(self, obj: SelfTestCheck) -> SafeString:
        return outcome_badge(obj.outcome)

    @admin.display(description="evidence")
    def ev(self, obj: SelfTestCheck) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.evidence, Truncator(obj.evidence).chars(80))

    @admin.display(description="evidence")
    def evidence_pre(self, obj: SelfTestCheck) -> SafeString:
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', obj.evidence)
