"""The operators' back-office for the protocol core: partners, parties and the traffic log (STYLE §8).

Every change that touches a partner goes through `ocpi_core.services`; tokens are never shown, except token A once,
on the page that issues it.
"""

import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.timezone import localtime

from ocpi_core.client import PartnerCallError
from ocpi_core.exceptions import OcpiError
from ocpi_core.forms import OwnPartyForm, PartnerInviteForm, PartnerRegisterForm
from ocpi_core.models import Partner, PartnerEndpoint, Party, TrafficLog
from ocpi_core.registry import versions_url
from ocpi_core.services import (
    own_party_ensure,
    partner_endpoints_refresh,
    partner_invite,
    partner_register,
    partner_rotate,
    partner_unregister,
)

admin.site.site_header = "OCPI platform back-office"
admin.site.site_title = "OCPI platform back-office"
admin.site.index_title = "Operations"

# Errors the partner services raise; ValueError: our stored token cannot be decrypted with the configured key.
SERVICE_ERRORS = (OcpiError, PartnerCallError, ValueError)

_GREEN, _ORANGE, _RED, _BLUE, _GREY = "#2e7d32", "#e65100", "#c62828", "#1565c0", "#616161"

_STATUS_COLOURS: dict[str, str] = {
    Partner.Status.INVITED: _BLUE,
    Partner.Status.REGISTERING: _ORANGE,
    Partner.Status.REGISTERED: _GREEN,
    Partner.Status.SUSPENDED: _ORANGE,
    Partner.Status.UNREGISTERED: _GREY,
}


def badge(text: str, colour: str, title: str = "") -> SafeString:
    """A small coloured label for list columns and detail pages."""
    return format_html(
        '<span title="{}" style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'font-size:11px;white-space:nowrap">{}</span>',
        title,
        colour,
        text,
    )


def changelist_link(model: str, params: dict[str, Any], text: str) -> SafeString:
    """A link to an admin changelist ("app_label.model") filtered by `params`: list_filter parameters or lookups on
    the target model's own fields (which ModelAdmin.lookup_allowed always accepts)."""
    app_label, model_name = model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist") + "?" + urlencode(params)
    return format_html('<a href="{}">{}</a>', url, text)


def related_links(links: list[tuple[str, dict[str, Any], str]]) -> SafeString:
    """Several filtered changelist links, separated by middle dots."""
    return format_html_join(" · ", "{}", ((changelist_link(*link),) for link in links))


def service_error_message(exc: Exception) -> str:
    return str(getattr(exc, "message", "") or exc)


def ocpi_status_colour(code: int) -> str:
    """1xxx success: green; 2xxx client errors: orange; 3xxx server errors, 4xxx hub errors (and beyond): red."""
    if 1000 <= code < 2000:
        return _GREEN
    if 2000 <= code < 3000:
        return _ORANGE
    return _RED


# --- partners --------------------------------------------------------------------------------------------------------


class PartnerReadOnlyInline(admin.TabularInline):
    """What the handshake stored about a partner: shown, never edited (services replace it on every handshake)."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Part of the partner: whoever may see the partner may see these.
        return request.user.has_perm("ocpi_core.view_partner") or request.user.has_perm("ocpi_core.change_partner")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PartnerEndpointInline(PartnerReadOnlyInline):
    model = PartnerEndpoint
    fields = ("identifier", "role", "url")
    verbose_name_plural = "endpoints (from the partner's version details)"


class PartnerPartyInline(PartnerReadOnlyInline):
    model = Party
    fields = ("country_code", "party_id", "role", "name", "website")
    verbose_name_plural = "parties (roles from the partner's credentials)"
    show_change_link = True


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    """Partners are created by inviting them or registering with them (buttons on the list), never by hand."""

    list_display = (
        "name",
        "status_badge",
        "roles",
        "version",
        "token_forms",
        "last_contact_at",
        "registered_at",
        "last_error_short",
    )
    list_filter = ("status", "token_encoding", "token_encoding_seen", "version")
    search_fields = ("name", "versions_url", "parties__party_id")
    ordering = ("name",)
    inlines = (PartnerEndpointInline, PartnerPartyInline)
    actions = ("rotate_credentials", "refetch_endpoints", "unregister", "pull_now", "full_sync", "run_selftest")
    # token_out_encrypted is in no fieldset, no readonly field and no form: it cannot be shown or edited.
    editable_fields = ("name", "token_encoding", "page_size")
    fieldsets = (
        (None, {"fields": ("name", "status_badge", "versions_url", "version", "registered_at", "last_contact_at")}),
        ("Last error", {"fields": ("last_error",)}),
        (
            "Tokens",
            {
                "fields": ("token_out_display", "tokens_in_display"),
                "description": "Only the last characters of each token: tokens are never shown again once issued.",
            },
        ),
        (
            "Partner quirks",
            {
                "fields": ("token_encoding", "token_encoding_seen", "page_size"),
                "description": "How this partner's implementation differs from the letter of OCPI 2.2.1.",
            },
        ),
        ("Related", {"fields": ("related",)}),
        ("Push and pull sync", {"fields": ("push_sync_summary",)}),
        ("Conformance self-test", {"fields": ("selftest_summary",)}),
        ("Bookkeeping", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "related",
        "push_sync_summary",
        "selftest_summary",
        "status_badge",
        "versions_url",
        "version",
        "registered_at",
        "last_contact_at",
        "last_error",
        "token_out_display",
        "tokens_in_display",
        "token_encoding_seen",
        "created_at",
        "updated_at",
    )
    # Actions offered as buttons on a partner's page too, for the statuses where they make sense.
    object_buttons = (
        ("rotate_credentials", "Rotate credentials", {Partner.Status.REGISTERED}),
        ("refetch_endpoints", "Re-fetch endpoints", {Partner.Status.REGISTERED}),
        ("unregister", "Unregister", set(Partner.Status) - {Partner.Status.UNREGISTERED}),
        ("pull_now", "Pull now", {Partner.Status.REGISTERED}),
        ("full_sync", "Full sync", {Partner.Status.REGISTERED}),
        ("run_selftest", "Run conformance self-test", {Partner.Status.REGISTERED}),
    )
    change_list_template = "admin/ocpi_core/partner/change_list.html"
    change_form_template = "admin/ocpi_core/partner/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partner]:
        return super().get_queryset(request).prefetch_related("parties")

    # --- permissions: partners come from the handshake; a registered partner is unregistered, not deleted ---

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Partner | None = None) -> bool:
        if obj is not None and obj.status == Partner.Status.REGISTERED:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete would bypass the per-partner rule above
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # A partner's parties are read-only on their own (PartyAdmin) but go with the partner.
        perms_needed.discard(Party._meta.verbose_name)
        return deleted, model_count, perms_needed, protected

    def can_connect(self, request: HttpRequest) -> bool:
        """May this user invite partners or register with them (the model's add permission)?"""
        return request.user.has_perm("ocpi_core.add_partner")

    # --- columns and read-only fields ---

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Partner) -> SafeString:
        return badge(obj.status, _STATUS_COLOURS.get(obj.status, _GREY), obj.get_status_display())

    @admin.display(description="this partner's")
    def related(self, obj: Partner) -> SafeString:
        """Filtered changelists of the partner's data (its FK as the changelists' own `partner__id__exact`)."""
        params = {"partner__id__exact": obj.pk}
        return related_links(
            [
                ("ocpi_core.trafficlog", params, "traffic log"),
                ("ocpi_core.delivery", params, "deliveries"),
                ("ocpi_core.syncrun", params, "sync runs"),
                ("sessions_app.session", params, "sessions"),
                ("cdrs.cdr", params, "CDRs"),
                ("tokens.token", params, "tokens"),
                ("commands.command", params, "commands"),
            ]
        )

    @admin.display(description="token form (we send / it sends)")
    def token_forms(self, obj: Partner) -> str:
        """One short column for the two encodings (their long labels hid the list's last columns at 1400 px)."""
        return f"{obj.token_encoding.lower()} / {obj.token_encoding_seen.lower() or '—'}"

    @admin.display(description="roles")
    def roles(self, obj: Partner) -> str:
        return ", ".join(f"{p.country_code}*{p.party_id} {p.role}" for p in obj.parties.all()) or "—"

    @admin.display(description="last error", ordering="last_error")
    def last_error_short(self, obj: Partner) -> SafeString | str:
        if not obj.last_error:
            return ""
        return format_html('<span title="{}">{}</span>', obj.last_error, Truncator(obj.last_error).chars(60))

    @admin.display(description="token we send")
    def token_out_display(self, obj: Partner) -> str:
        if not obj.token_out_encrypted:
            return "— (none: we cannot call this partner)"
        return f"{obj.token_out_hint or '…'} as {obj.get_token_encoding_display()}"

    @admin.display(description="tokens it may present")
    def tokens_in_display(self, obj: Partner) -> SafeString | str:
        tokens = list(obj.tokens.all())
        if not tokens:
            return "— (none: it cannot call us)"
        return format_html(
            "<ul style='margin:0;padding-left:1em'>{}</ul>",
            format_html_join(
                "",
                "<li>{} <code>{}</code>, issued {}</li>",
                (
                    (t.get_kind_display(), t.hint or "…", localtime(t.created_at).strftime("%Y-%m-%d %H:%M %Z"))
                    for t in tokens
                ),
            ),
        )

    # --- saving: only the quirk fields and the name; everything else belongs to the handshake services ---

    def save_model(self, request: HttpRequest, obj: Partner, form: Any, change: bool) -> None:
        changed = [name for name in form.changed_data if name in self.editable_fields]
        if changed:
            # update_fields: a handshake running meanwhile keeps its status, tokens and endpoints.
            obj.save(update_fields=[*changed, "updated_at"])

    # --- actions: each calls a service and reports per partner ---

    def _run_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Partner],
        run: Callable[[Partner], tuple[int, str]],
        log_message: str,
    ) -> HttpResponse | None:
        for partner in queryset:
            try:
                level, text = run(partner)
            except SERVICE_ERRORS as exc:
                self.message_user(request, f"{partner}: {service_error_message(exc)}", messages.ERROR)
            else:
                self.log_change(request, partner, log_message)
                self.message_user(request, f"{partner}: {text}", level)
        return self._back_to_change_page(request, queryset)

    def _back_to_change_page(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        """Actions started from a partner's page (its object-tools buttons) return to that page."""
        if request.POST.get("_return") != "change":
            return None
        pks = list(queryset.values_list("pk", flat=True)[:2])
        if len(pks) != 1:
            return None
        return HttpResponseRedirect(reverse("admin:ocpi_core_partner_change", args=[pks[0]]))

    @admin.action(description="Rotate credentials (credentials PUT, new tokens both ways)", permissions=["change"])
    def rotate_credentials(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        def run(partner: Partner) -> tuple[int, str]:
            partner = partner_rotate(partner=partner)
            return messages.SUCCESS, f"credentials rotated; we now send {partner.token_out_hint}"

        return self._run_action(request, queryset, run, "Rotated credentials")

    @admin.action(description="Re-fetch endpoints (versions and version details)", permissions=["change"])
    def refetch_endpoints(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        def run(partner: Partner) -> tuple[int, str]:
            partner = partner_endpoints_refresh(partner=partner)
            count = partner.endpoints.count()
            return (
                messages.SUCCESS,
                f"{count} endpoint{'s' if count != 1 else ''} fetched for version {partner.version}",
            )

        return self._run_action(request, queryset, run, "Re-fetched endpoints")

    @admin.action(description="Unregister (credentials DELETE; its tokens stop working)", permissions=["change"])
    def unregister(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        if request.POST.get("confirm") != "yes":  # not undone by a click: a page names the partners first
            return TemplateResponse(
                request,
                "admin/ocpi_core/partner/unregister_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Unregister partners?",
                    "opts": self.model._meta,
                    "partners": list(queryset.prefetch_related("parties")),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "return_to": request.POST.get("_return", ""),
                },
            )

        def run(partner: Partner) -> tuple[int, str]:
            remote_error = partner_unregister(partner=partner)
            if remote_error:
                return messages.WARNING, f"unregistered here; the partner answered with an error: {remote_error}"
            return messages.SUCCESS, "unregistered"

        return self._run_action(request, queryset, run, "Unregistered")

    @admin.display(description="state")
    def push_sync_summary(self, obj: Partner) -> SafeString:
        from ocpi_core.admin_push import partner_push_sync_summary

        return partner_push_sync_summary(obj)

    @admin.action(description="Pull now (incremental sync of every module it sends)", permissions=["change"])
    def pull_now(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        from ocpi_core.admin_push import sync_enqueue_messages

        sync_enqueue_messages(self, request, queryset.prefetch_related("endpoints"), full=False)
        return self._back_to_change_page(request, queryset)

    @admin.action(description="Full sync (objects it no longer lists are retired)", permissions=["change"])
    def full_sync(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        from ocpi_core.admin_push import sync_enqueue_messages

        sync_enqueue_messages(self, request, queryset.prefetch_related("endpoints"), full=True)
        return self._back_to_change_page(request, queryset)

    @admin.display(description="last self-test")
    def selftest_summary(self, obj: Partner) -> SafeString:
        from selftest.admin import partner_selftest_summary

        return partner_selftest_summary(obj)

    @admin.action(description="Run conformance self-test (read-only checks, on a worker)", permissions=["change"])
    def run_selftest(self, request: HttpRequest, queryset: QuerySet[Partner]) -> HttpResponse | None:
        from selftest.admin import selftest_enqueue_messages

        selftest_enqueue_messages(self, request, queryset)
        return self._back_to_change_page(request, queryset)

    # --- invite / register views (buttons on the list) ---

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("invite/", self.admin_site.admin_view(self.invite_view), name="ocpi_core_partner_invite"),
            path("register/", self.admin_site.admin_view(self.register_view), name="ocpi_core_partner_register"),
        ]
        return own + super().get_urls()  # before the default `<path:object_id>/` catch-all

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "can_connect": self.can_connect(request)})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        partner = self.get_object(request, unquote(object_id))
        actions = self.get_actions(request)
        buttons = [
            (name, label)
            for name, label, statuses in self.object_buttons
            if name in actions and partner is not None and partner.status in statuses
        ]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "partner_buttons": buttons})

    def _view_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    def invite_view(self, request: HttpRequest) -> HttpResponse:
        """Issue a token A: the partner registers with us using it and our versions URL."""
        if not self.can_connect(request):
            raise PermissionDenied
        form = PartnerInviteForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                partner, token_a = partner_invite(name=form.cleaned_data["name"])
            except SERVICE_ERRORS as exc:
                form.add_error(None, service_error_message(exc))
            else:
                self.log_change(request, partner, "Invited (token A issued)")
                context = self._view_context(
                    request, f"Partner {partner} invited", partner=partner, token_a=token_a, versions_url=versions_url()
                )
                # Shown on this response only (admin_view adds no-cache headers); never stored in clear.
                return TemplateResponse(request, "admin/ocpi_core/partner/invite_done.html", context)
        return TemplateResponse(
            request, "admin/ocpi_core/partner/invite.html", self._view_context(request, "Invite partner", form=form)
        )

    def register_view(self, request: HttpRequest) -> HttpResponse:
        """Register with a partner from its versions URL and token A (we start the handshake)."""
        if not self.can_connect(request):
            raise PermissionDenied
        form = PartnerRegisterForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                partner = partner_register(
                    versions_url=form.cleaned_data["versions_url"],
                    token=form.cleaned_data["token"],
                    name=form.cleaned_data["name"] or None,
                    encoding=form.encoding(),
                )
            except SERVICE_ERRORS as exc:
                form.add_error(None, service_error_message(exc))
            else:
                self.log_change(request, partner, "Registered with the partner")
                endpoints = partner.endpoints.count()
                self.message_user(
                    request,
                    f"Registered with {partner} (OCPI {partner.version}, {endpoints} endpoints).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:ocpi_core_partner_change", args=[partner.pk]))
        return TemplateResponse(
            request,
            "admin/ocpi_core/partner/register.html",
            self._view_context(request, "Register with partner", form=form),
        )


# --- parties ---------------------------------------------------------------------------------------------------------


class OwnPartyFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "own"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Own parties"), ("no", "Partners' parties")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Party]) -> QuerySet[Party]:
        if self.value() == "yes":
            return queryset.filter(partner__isnull=True)
        if self.value() == "no":
            return queryset.filter(partner__isnull=False)
        return queryset


@admin.register(Party)
class PartyAdmin(admin.ModelAdmin):
    """Our own parties are edited here; partners' parties come from their credentials and are read-only."""

    form = OwnPartyForm
    list_display = ("country_code", "party_id", "role", "name", "is_own", "partner")
    list_filter = ("role", OwnPartyFilter, "country_code")
    search_fields = ("country_code", "party_id", "name", "partner__name")
    list_select_related = ("partner",)
    own_description = (
        "Registered partners learn about changes to our parties at the next credentials update "
        "(the Rotate credentials action on partners)."
    )

    @admin.display(description="own", boolean=True, ordering="partner")
    def is_own(self, obj: Party) -> bool:
        return obj.partner_id is None

    def get_fieldsets(self, request: HttpRequest, obj: Party | None = None) -> Any:
        if obj is None:
            fields: tuple[str, ...] = ("country_code", "party_id", "role", "name", "website")
        elif obj.is_own:
            fields = ("country_code", "party_id", "role", "name", "website", "logo", "created_at", "updated_at")
        else:
            fields = ("partner", "country_code", "party_id", "role", "name", "website", "logo", "updated_at")
        return [(None, {"fields": fields, "description": self.own_description if obj is None or obj.is_own else ""})]

    def get_readonly_fields(self, request: HttpRequest, obj: Party | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("partner", "country_code", "party_id", "role", "logo", "created_at", "updated_at")

    def has_change_permission(self, request: HttpRequest, obj: Party | None = None) -> bool:
        if obj is not None and not obj.is_own:
            return False  # replaced by the partner's next credentials exchange
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Party | None = None) -> bool:
        if obj is not None and not obj.is_own:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would delete partners' parties too
        return actions

    def save_model(self, request: HttpRequest, obj: Party, form: Any, change: bool) -> None:
        party = own_party_ensure(
            country_code=obj.country_code, party_id=obj.party_id, role=obj.role, name=obj.name, website=obj.website
        )
        obj.pk = party.pk
        obj._state.adding = False


# --- traffic log -----------------------------------------------------------------------------------------------------


@admin.register(TrafficLog)
class TrafficLogAdmin(admin.ModelAdmin):
    """Every OCPI request in and out, for debugging; written by the middleware and the client only."""

    list_display = (
        "created_at",
        "direction_badge",
        "partner",
        "method",
        "module",
        "url_short",
        "http_status",
        "ocpi_status",
        "duration_ms",
    )
    list_filter = ("direction", "module", "partner", "http_status", "ocpi_status_code")
    date_hierarchy = "created_at"
    search_fields = ("url", "request_id", "correlation_id")
    list_select_related = ("partner",)
    show_full_result_count = False  # the log is large: no second COUNT(*) over the whole table
    fields = (
        "created_at",
        "direction_badge",
        "partner",
        "method",
        "url",
        "module",
        "http_status",
        "ocpi_status",
        "duration_ms",
        "request_id",
        "correlation_id",
        "error",
        "request_body_pre",
        "response_body_pre",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TrafficLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TrafficLog | None = None) -> bool:
        return bool(request.user.is_superuser)

    @admin.display(description="direction", ordering="direction")
    def direction_badge(self, obj: TrafficLog) -> SafeString:
        colour = _BLUE if obj.direction == TrafficLog.Direction.IN else "#6a1b9a"
        return badge(obj.direction, colour, obj.get_direction_display())

    @admin.display(description="url")
    def url_short(self, obj: TrafficLog) -> SafeString:
        # a URL has no spaces: let it break anywhere, or its column pushes HTTP and OCPI status out of a 1400 px view
        return format_html(
            '<span title="{}" style="overflow-wrap:anywhere">{}</span>', obj.url, Truncator(obj.url).chars(80)
        )

    @admin.display(description="OCPI status", ordering="ocpi_status_code")
    def ocpi_status(self, obj: TrafficLog) -> SafeString | str:
        if obj.ocpi_status_code is None:
            return "—"
        return badge(str(obj.ocpi_status_code), ocpi_status_colour(obj.ocpi_status_code))

    @staticmethod
    def _pre(body: str) -> SafeString | str:
        if not body:
            return "—"
        with contextlib.suppress(orjson.JSONDecodeError):  # truncated or not JSON: shown as stored
            body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
        return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>', body)

    @admin.display(description="request body")
    def request_body_pre(self, obj: TrafficLog) -> SafeString | str:
        return self._pre(obj.request_body)

    @admin.display(description="response body")
    def response_body_pre(self, obj: TrafficLog) -> SafeString | str:
        return self._pre(obj.response_body)


from ocpi_core import admin_push  # noqa: E402,F401  (outbox, sync runs and states)
