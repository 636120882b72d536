"""Back-office for tokens: our own eMSP tokens (issued, edited, blocked, unblocked, expired: every change through
tokens.services, so CPO partners get it pushed), partners' tokens (read-only: they are the eMSP's data), and the
log of real-time authorizations."""

from typing import Any

import orjson
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ocpi_core.admin_filters import OwnerListFilter, PartyListFilter
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import OcpiError
from ocpi_core.validation import validation_errors
from tokens.models import AllowedType, Authorization, Token
from tokens.services import (
    BOOKKEEPING_FIELDS,
    TOKEN,
    Key,
    token_change_own,
    token_expire_own,
    token_save_own,
    token_set_bookkeeping,
)

_COLOURS = {
    AllowedType.ALLOWED: "#2e7d32",
    AllowedType.BLOCKED: "#c62828",
    AllowedType.EXPIRED: "#6d4c41",
    AllowedType.NO_CREDIT: "#ef6c00",
    AllowedType.NOT_ALLOWED: "#ad1457",
}


def badge(text: str, colour: str) -> SafeString:
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 6px;border-radius:8px;font-size:11px">{}</span>',
        colour,
        text,
    )


class OwnTokenFilter(OwnerListFilter):
    """Our own tokens or partners'."""


class PartyFilter(PartyListFilter):
    """The party the tokens are under."""


class TokenAdminForm(forms.ModelForm):
    """Our own token, checked by the spec's field rules (and our eMSP parties) before anything is saved."""

    class Meta:
        model = Token
        fields = (
            "country_code",
            "party_id",
            "uid",
            "type",
            "contract_id",
            "visual_number",
            "issuer",
            "group_id",
            "valid",
            "whitelist",
            "language",
            "default_profile_type",
            "energy_contract",
            "expires_at",
            "no_credit",
            "allowed_location_ids",
        )

    def ocpi_data(self) -> dict[str, Any]:
        """The form's token as an OCPI object (last_updated is stamped by the service)."""
        values = {**{f: getattr(self.instance, f) for f in ("country_code", "party_id", "uid", "type")}}
        values.update(self.cleaned_data)
        data = {name: values.get(TOKEN.attr(name)) for name in TOKEN.names() if name != "last_updated"}
        return {name: value for name, value in data.items() if value not in (None, "")}

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if not self.errors:
            data = {**self.ocpi_data(), "last_updated": format_datetime(self.instance.last_updated or _now())}
            for message in validation_errors("Token", data):
                self.add_error(None, message)
        return cleaned


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    form = TokenAdminForm
    list_display = ("uid", "type", "party", "owner", "contract_id", "visual_number", "valid_badge", "whitelist")
    list_display_links = ("uid",)
    list_filter = (OwnTokenFilter, PartyFilter, "type", "valid", "whitelist")
    search_fields = ("uid", "contract_id", "visual_number", "issuer")
    list_select_related = ("partner",)
    readonly_fields = ("partner", "last_updated", "doc_json")
    actions = ("block", "unblock", "expire")
    date_hierarchy = "last_updated"

    def get_readonly_fields(self, request: HttpRequest, obj: Token | None = None) -> Any:
        if obj is not None and not obj.is_own:  # a partner's token is the eMSP's data
            return [*TokenAdminForm.Meta.fields, *self.readonly_fields]
        if obj is not None:  # the key of an issued token never changes (a new uid/type is a new token)
            return ["country_code", "party_id", "uid", "type", *self.readonly_fields]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Token, form: Any, change: bool) -> None:
        data = form.ocpi_data()
        key = Key(obj.country_code, obj.party_id, obj.uid, obj.type)
        try:
            result = token_save_own(key=key, data=data)
            bookkeeping = {name: form.cleaned_data.get(name) for name in BOOKKEEPING_FIELDS}
            token_set_bookkeeping(token=result.token, changes=bookkeeping)
        except OcpiError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = result.token.pk

    @admin.display(description="party", ordering="party_id")
    def party(self, obj: Token) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="owner", ordering="partner__name")
    def owner(self, obj: Token) -> SafeString:
        return badge("own", "#1565c0") if obj.is_own else format_html("{}", obj.partner)

    @admin.display(description="valid", ordering="valid")
    def valid_badge(self, obj: Token) -> SafeString:
        return badge("valid", "#2e7d32") if obj.valid else badge("invalid", "#c62828")

    @admin.display(description="OCPI JSON")
    def doc_json(self, obj: Token) -> SafeString | str:
        if not obj.doc:
            return "—"
        pretty = orjson.dumps(orjson.loads(obj.doc), option=orjson.OPT_INDENT_2).decode()
        return format_html("<pre style='margin:0'>{}</pre>", pretty)

    def _change(self, request: HttpRequest, queryset: QuerySet[Token], verb: str, **changes: Any) -> None:
        done = skipped = 0
        for token in queryset.order_by("pk"):
            if not token.is_own:
                skipped += 1
                continue
            if verb == "expired":
                token_expire_own(token=token)
            else:
                token_change_own(token=token, changes=changes)
            done += 1
        self.message_user(request, f"{done} token(s) {verb} and pushed to CPO partners.")
        if skipped:
            self.message_user(request, f"{skipped} partner token(s) skipped: only the eMSP changes them.", "warning")

    @admin.action(description="Block selected own tokens (valid = false, pushed)")
    def block(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._change(request, queryset, "blocked", valid=False)

    @admin.action(description="Unblock selected own tokens (valid = true, pushed)")
    def unblock(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._change(request, queryset, "unblocked", valid=True)

    @admin.action(description="Expire selected own tokens now (pushed)")
    def expire(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._change(request, queryset, "expired")


@admin.register(Authorization)
class AuthorizationAdmin(admin.ModelAdmin):
    """The log of real-time authorizations: read-only."""

    list_display = (
        "created_at",
        "direction",
        "source",
        "token_uid",
        "token_type",
        "party",
        "partner",
        "location_id",
        "allowed_badge",
        "authorization_reference",
        "duration_ms",
    )
    list_filter = ("direction", "source", "allowed", "token_type")
    search_fields = ("token_uid", "authorization_reference", "location_id", "partner__name")
    list_select_related = ("partner",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="party")
    def party(self, obj: Authorization) -> str:
        return f"{obj.country_code}*{obj.party_id}" if obj.country_code else "—"

    @admin.display(description="allowed", ordering="allowed")
    def allowed_badge(self, obj: Authorization) -> SafeString | str:
        if not obj.allowed:
            return "—"
        return badge(obj.allowed, _COLOURS.get(AllowedType(obj.allowed), "#555"))
