"""Back-office for ChargingProfiles: requests both ways with their answers and results, and the unsolicited updates.

Received requests are read-only (partners made them). "Add" sends a new request to a CPO partner: the form hands
partner, session, kind, duration and profile to `chargingprofile_send`, which stores the CPO's answer.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.safestring import SafeString

from chargingprofiles.models import (
    ActiveProfileUpdate,
    CallbackStatus,
    ChargingProfileRequest,
    Kind,
    ResponseType,
    ResultType,
)
from chargingprofiles.services import chargingprofile_send
from ocpi_core.admin import _BLUE, _GREEN, _GREY, _ORANGE, _RED, badge
from ocpi_core.exceptions import OcpiError
from ocpi_core.models import Partner

_COLOURS: dict[str, str] = {
    ResponseType.ACCEPTED: _GREEN,
    ResponseType.NOT_SUPPORTED: _GREY,
    ResponseType.REJECTED: _RED,
    ResponseType.TOO_OFTEN: _ORANGE,
    ResponseType.UNKNOWN_SESSION: _ORANGE,
    ResultType.UNKNOWN: _ORANGE,
    CallbackStatus.PENDING: _BLUE,
    CallbackStatus.SENT: _GREEN,
    CallbackStatus.FAILED: _RED,
    ActiveProfileUpdate.Status.RECEIVED: _BLUE,
}


def _badge(value: str, title: str = "") -> SafeString | str:
    return badge(value, _COLOURS.get(value, _GREY), title) if value else "—"


class SendForm(forms.ModelForm):
    """A new request to a CPO partner (sent when saved)."""

    partner = forms.ModelChoiceField(queryset=Partner.objects.filter(status=Partner.Status.REGISTERED))
    kind = forms.ChoiceField(choices=Kind.choices)
    duration = forms.IntegerField(required=False, min_value=0, help_text="Get active profile: seconds asked for")
    charging_profile = forms.JSONField(required=False, help_text="Set profile: an OCPI ChargingProfile")

    class Meta:
        model = ChargingProfileRequest
        fields = ("partner", "session_id", "kind", "duration", "charging_profile")


@admin.register(ChargingProfileRequest)
class ChargingProfileRequestAdmin(admin.ModelAdmin):
    """Every request, received (CPO) or sent (eMSP/SCSP)."""

    list_display = (
        "created_at",
        "direction",
        "kind",
        "session_id",
        "partner",
        "response_badge",
        "result_badge",
        "callback_badge",
        "result_at",
    )
    list_filter = ("direction", "kind", "response", "result", "callback_status", "partner")
    search_fields = ("session_id", "partner__name", "sender_party_id", "cpo_party_id")
    list_select_related = ("partner",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "direction",
        "kind",
        "partner",
        "session_id",
        "session_pk",
        "sender_country_code",
        "sender_party_id",
        "cpo_country_code",
        "cpo_party_id",
        "response_url",
        "duration",
        "charging_profile",
        "response_badge",
        "timeout",
        "result_badge",
        "active_profile",
        "result_at",
        "callback_badge",
        "callback_at",
        "last_error",
        "created_at",
        "updated_at",
    )

    @admin.display(description="response", ordering="response")
    def response_badge(self, obj: ChargingProfileRequest) -> SafeString | str:
        return _badge(obj.response, "The CPO's immediate ChargingProfileResponse")

    @admin.display(description="result", ordering="result")
    def result_badge(self, obj: ChargingProfileRequest) -> SafeString | str:
        return _badge(obj.result, "The EVSE's outcome (asynchronous result)")

    @admin.display(description="result delivery", ordering="callback_status")
    def callback_badge(self, obj: ChargingProfileRequest) -> SafeString | str:
        return _badge(obj.callback_status, "Received requests: our result POST to the sender's response_url")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = SendForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else SendForm.Meta.fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            sent = chargingprofile_send(
                partner=data["partner"],
                session_id=data["session_id"],
                kind=data["kind"],
                duration=data.get("duration"),
                charging_profile=data.get("charging_profile"),
            )
        except OcpiError as exc:
            self.message_user(request, f"Not sent: {exc.message}", messages.ERROR)
            return
        obj.pk = sent.pk
        level = messages.SUCCESS if sent.response == ResponseType.ACCEPTED else messages.WARNING
        self.message_user(request, f"Sent; the CPO answered {sent.response or sent.last_error}", level)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        if obj.pk is None:  # refused before sending: back to the list, where the message shows
            return HttpResponseRedirect(reverse("admin:chargingprofiles_chargingprofilerequest_changelist"))
        return super().response_add(request, obj, post_url_continue)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return super().log_addition(request, obj, message) if obj.pk is not None else None


@admin.register(ActiveProfileUpdate)
class ActiveProfileUpdateAdmin(admin.ModelAdmin):
    """Unsolicited ActiveChargingProfile PUTs, sent (CPO) or received (eMSP/SCSP). Read-only."""

    list_display = ("created_at", "direction", "session_id", "partner", "status_badge", "sent_at")
    list_filter = ("direction", "status", "partner")
    search_fields = ("session_id", "partner__name")
    list_select_related = ("partner",)
    readonly_fields = (
        "direction",
        "partner",
        "session_id",
        "sender_country_code",
        "sender_party_id",
        "cpo_country_code",
        "cpo_party_id",
        "profile",
        "status_badge",
        "created_at",
        "sent_at",
        "last_error",
    )
    fields = readonly_fields

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ActiveProfileUpdate) -> SafeString | str:
        return _badge(obj.status)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
