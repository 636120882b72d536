"""Back-office for commands: received (we are the CPO) and sent (we are the eMSP), with status badges, a timeline, a
"Send command" form for staff and the reservations partners made (the CPO may cancel one)."""

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from commands.choices import CommandResponseType, CommandResultType, CommandType
from commands.models import Command, Reservation
from commands.services import command_send, reservation_cancel_by_cpo
from commands.tasks import command_result_send_task, enqueue
from ocpi_core.admin import SERVICE_ERRORS, badge, changelist_link, service_error_message
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import format_datetime
from ocpi_core.models import Partner, Party

_GREEN, _ORANGE, _RED, _BLUE, _GREY = "#2e7d32", "#e65100", "#c62828", "#1565c0", "#616161"
RESPONSE_COLOURS: dict[str, str] = {
    CommandResponseType.ACCEPTED: _GREEN,
    CommandResponseType.REJECTED: _RED,
    CommandResponseType.NOT_SUPPORTED: _ORANGE,
    CommandResponseType.UNKNOWN_SESSION: _ORANGE,
}
RESULT_COLOURS: dict[str, str] = {
    CommandResultType.ACCEPTED: _GREEN,
    CommandResultType.TIMEOUT: _ORANGE,
    CommandResultType.CANCELED_RESERVATION: _BLUE,
}
STATE_COLOURS: dict[str, str] = {
    Command.State.WAITING: _BLUE,
    Command.State.DONE: _GREEN,
    Command.State.CLOSED: _GREY,
    Command.State.TIMED_OUT: _ORANGE,
}


def _stamp(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


class CommandSendForm(forms.Form):
    """What staff fill in to send a command to a partner CPO; the OCPI body is built and checked by command_send."""

    partner = forms.ModelChoiceField(
        queryset=Partner.objects.filter(
            status=Partner.Status.REGISTERED, endpoints__identifier=ModuleID.COMMANDS, endpoints__role="RECEIVER"
        ).distinct(),
        help_text="A registered partner offering the commands Receiver (a CPO).",
    )
    command = forms.ChoiceField(choices=CommandType.choices)
    emsp = forms.ModelChoiceField(
        queryset=Party.objects.filter(partner__isnull=True, role=Role.EMSP), label="Our eMSP party"
    )
    token_uid = forms.CharField(max_length=36, required=False, help_text="START_SESSION, RESERVE_NOW")
    token_type = forms.ChoiceField(
        choices=[(v, v) for v in ("APP_USER", "AD_HOC_USER", "RFID", "OTHER")], initial="APP_USER", required=False
    )
    contract_id = forms.CharField(max_length=36, required=False, help_text="Defaults to the token uid")
    location_id = forms.CharField(max_length=36, required=False)
    evse_uid = forms.CharField(max_length=36, required=False)
    connector_id = forms.CharField(max_length=36, required=False)
    authorization_reference = forms.CharField(max_length=36, required=False)
    session_id = forms.CharField(max_length=36, required=False, help_text="STOP_SESSION")
    reservation_id = forms.CharField(max_length=36, required=False, help_text="RESERVE_NOW, CANCEL_RESERVATION")
    expiry_minutes = forms.IntegerField(
        min_value=1, max_value=24 * 60, initial=30, required=False, help_text="RESERVE_NOW"
    )

    def command_data(self) -> dict[str, Any]:
        """The OCPI command object (without response_url) from the form."""
        data = self.cleaned_data
        emsp: Party = data["emsp"]
        body: dict[str, Any] = {
            name: data[name]
            for name in (
                "location_id",
                "evse_uid",
                "connector_id",
                "authorization_reference",
                "session_id",
                "reservation_id",
            )
            if data.get(name)
        }
        if data["command"] in (CommandType.START_SESSION, CommandType.RESERVE_NOW) and data.get("token_uid"):
            body["token"] = {
                "country_code": emsp.country_code,
                "party_id": emsp.party_id,
                "uid": data["token_uid"],
                "type": data.get("token_type") or "APP_USER",
                "contract_id": data.get("contract_id") or data["token_uid"],
                "issuer": emsp.name or str(emsp),
                "valid": True,
                "whitelist": "ALLOWED",
                "last_updated": format_datetime(timezone.now()),
            }
        if data["command"] == CommandType.RESERVE_NOW:
            body["expiry_date"] = format_datetime(timezone.now() + timedelta(minutes=data.get("expiry_minutes") or 30))
        return body


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    """Commands in both directions; nothing is edited by hand."""

    list_display = (
        "id",
        "command_type",
        "direction_badge",
        "partner",
        "location_id",
        "state_badge",
        "response_badge",
        "result_badge",
        "result_delivery",
        "created_at",
    )
    list_filter = ("direction", "command_type", "state", "response_result", "result", "result_delivery", "partner")
    search_fields = ("uid", "location_id", "evse_uid", "session_id", "reservation_id", "authorization_reference")
    list_select_related = ("partner",)
    date_hierarchy = "created_at"
    actions = ("send_result_again",)
    fieldsets = (
        (None, {"fields": ("command_type", "direction_badge", "partner", "uid", "timeline")}),
        (
            "Target",
            {
                "fields": (
                    "location_id",
                    "evse_uid",
                    "connector_id",
                    "session_id",
                    "session_link",
                    "reservation_id",
                    "authorization_reference",
                    "gateway",
                )
            },
        ),
        ("Request", {"fields": ("response_url", "request_json")}),
        (
            "Answer",
            {
                "fields": (
                    "response_badge",
                    "response_timeout",
                    "response_message",
                    "result_badge",
                    "result_message",
                    "result_delivery",
                    "result_attempts",
                    "result_error",
                )
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Command | None = None) -> list[str]:
        return [str(name) for _, options in self.fieldsets for name in options["fields"]]  # everything is read-only

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Command | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Command | None = None) -> bool:
        return False

    @admin.display(description="session")
    def session_link(self, obj: Command) -> SafeString | str:
        """The session the command is about (STOP_SESSION's session_id, or the one a START started), by its id."""
        if not obj.session_id:
            return "—"
        return changelist_link("sessions_app.session", {"ocpi_id": obj.session_id}, f"session {obj.session_id}")

    @admin.display(description="direction", ordering="direction")
    def direction_badge(self, obj: Command) -> SafeString:
        if obj.direction == Command.Direction.RECEIVED:
            return badge("received", _BLUE, "Received from a partner eMSP: we are the CPO")
        return badge("sent", _GREY, "Sent to a partner CPO: we are the eMSP")

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Command) -> SafeString:
        return badge(obj.get_state_display(), STATE_COLOURS.get(obj.state, _GREY))

    @admin.display(description="response", ordering="response_result")
    def response_badge(self, obj: Command) -> SafeString | str:
        if not obj.response_result:
            return "—"
        return badge(obj.response_result, RESPONSE_COLOURS.get(obj.response_result, _GREY), "CommandResponse")

    @admin.display(description="result", ordering="result")
    def result_badge(self, obj: Command) -> SafeString | str:
        if not obj.result:
            return "—"
        return badge(obj.result, RESULT_COLOURS.get(obj.result, _RED), "CommandResult")

    @admin.display(description="request")
    def request_json(self, obj: Command) -> SafeString:
        import orjson

        text = orjson.dumps(obj.request, option=orjson.OPT_INDENT_2).decode()
        return format_html('<pre style="white-space:pre-wrap;max-height:30em;overflow:auto">{}</pre>', text)

    @admin.display(description="timeline")
    def timeline(self, obj: Command) -> SafeString:
        """received → response → result → delivered to the eMSP (or sent → response → result for our commands)."""
        first = "received" if obj.direction == Command.Direction.RECEIVED else "sent"
        steps: list[tuple[str, str]] = [(first, _stamp(obj.created_at))]
        if obj.responded_at:
            steps.append((f"response {obj.response_result or '(none)'}", _stamp(obj.responded_at)))
        if obj.result_error and not obj.result:
            steps.append((f"error: {obj.result_error[:120]}", ""))
        if obj.result_at:
            steps.append((f"result {obj.result}", _stamp(obj.result_at)))
        elif obj.state == Command.State.WAITING and obj.deadline_at:
            steps.append(("waiting for the result until", _stamp(obj.deadline_at)))
        elif obj.state == Command.State.TIMED_OUT:
            steps.append(("timed out", _stamp(obj.updated_at)))
        if obj.direction == Command.Direction.RECEIVED and obj.result_delivery:
            when = _stamp(obj.result_delivered_at)
            steps.append((f"result {obj.get_result_delivery_display().lower()} to the eMSP", when))
        return format_html(
            "<ol style='margin:0;padding-left:1.2em'>{}</ol>",
            format_html_join("", "<li>{} <span style='color:#888'>{}</span></li>", steps),
        )

    @admin.action(description="Send the CommandResult to the eMSP again")
    def send_result_again(self, request: HttpRequest, queryset: QuerySet[Command]) -> None:
        ids = list(
            queryset.filter(direction=Command.Direction.RECEIVED)
            .exclude(result="")
            .exclude(result_delivery=Command.Delivery.PENDING)
            .values_list("pk", flat=True)
        )
        Command.objects.filter(pk__in=ids).update(result_delivery=Command.Delivery.PENDING, result_attempts=0)
        for command_id in ids:
            enqueue(command_result_send_task, command_id)
        self.message_user(request, f"{len(ids)} CommandResult(s) queued.", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        own = [path("send/", self.admin_site.admin_view(self.send_view), name="commands_command_send")]
        return own + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {**(extra_context or {}), "can_send": request.user.is_staff})

    def send_view(self, request: HttpRequest) -> HttpResponse:
        """Send a command to a partner CPO (we are the eMSP)."""
        form = CommandSendForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                command = command_send(
                    partner=form.cleaned_data["partner"],
                    command_type=form.cleaned_data["command"],
                    data=form.command_data(),
                    emsp=form.cleaned_data["emsp"],
                )
            except SERVICE_ERRORS as exc:
                form.add_error(None, service_error_message(exc))
            else:
                if command.response_result:
                    self.message_user(request, f"{command}: the CPO answered {command.response_result}.")
                else:
                    self.message_user(request, f"{command}: {command.result_error}", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:commands_command_change", args=(command.pk,)))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Send command",
            "form": form,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/commands/command/send.html", context)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    """Reservations partners' eMSPs made at our locations; the CPO may cancel one (CANCELED_RESERVATION)."""

    list_display = ("reservation_id", "emsp", "partner", "location_id", "evse_uid", "expiry_date", "status_badge")
    list_filter = ("status", "partner")
    search_fields = ("reservation_id", "location_id", "evse_uid", "session_id")
    list_select_related = ("partner",)
    readonly_fields = [f.name for f in Reservation._meta.fields]
    actions = ("cancel_reservations",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Reservation | None = None) -> bool:
        return False

    @admin.display(description="eMSP")
    def emsp(self, obj: Reservation) -> str:
        return f"{obj.emsp_country_code}*{obj.emsp_party_id}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Reservation) -> SafeString:
        colours: dict[str, str] = {Reservation.Status.ACTIVE: _GREEN, Reservation.Status.CANCELED: _ORANGE}
        colour = colours.get(obj.status, _GREY)
        expired = obj.status == Reservation.Status.ACTIVE and obj.expiry_date < timezone.now()
        return badge("expired" if expired else obj.status.lower(), colour)

    @admin.action(description="Cancel (CPO): tell the eMSP CANCELED_RESERVATION")
    def cancel_reservations(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        count = 0
        for reservation in queryset.filter(status=Reservation.Status.ACTIVE).select_related("command"):
            reservation_cancel_by_cpo(reservation=reservation, message="Canceled by the operator")
            count += 1
        self.message_user(request, f"{count} reservation(s) canceled; the eMSPs are told.", messages.SUCCESS)
