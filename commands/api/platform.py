"""Platform API for commands (/api/commands/), JWT-authenticated staff (REST_FRAMEWORK defaults).

- `GET /api/commands/` and `/api/commands/{id}/`: commands received (as CPO) and sent (as eMSP), with their
  CommandResponse, CommandResult and delivery state;
- `POST /api/commands/`: send one of the five commands to a partner CPO (we are the eMSP);
- `POST /api/commands/{id}/result`: the operator's charge point system (webhook gateway) reports what the charger did
  with a received command; the CommandResult is then POSTed to the eMSP.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from commands.choices import CommandResultType, CommandType
from commands.models import Command
from commands.services import command_result_report, command_send
from ocpi_core.api.platform import AUTH_ERRORS
from ocpi_core.models import Partner, Party

TAG = "Platform API: commands"
_SEND_EXAMPLES = [
    OpenApiExample(
        "START_SESSION",
        summary="Start a session for a token of our demo eMSP at a partner CPO's EVSE",
        value={
            "partner": 1,
            "command_type": "START_SESSION",
            "location_id": "LOC1",
            "evse_uid": "EVSE1",
            "token": {
                "country_code": "NL",
                "party_id": "DME",
                "uid": "DME0001A1",
                "type": "RFID",
                "contract_id": "NLDMEC00000001",
                "issuer": "Demo Mobility",
                "valid": True,
                "whitelist": "ALLOWED",
                "last_updated": "2026-01-01T00:00:00Z",
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "STOP_SESSION",
        value={"partner": 1, "command_type": "STOP_SESSION", "session_id": "SESSION1"},
        request_only=True,
    ),
    OpenApiExample(
        "UNLOCK_CONNECTOR",
        value={
            "partner": 1,
            "command_type": "UNLOCK_CONNECTOR",
            "location_id": "LOC1",
            "evse_uid": "EVSE1",
            "connector_id": "1",
        },
        request_only=True,
    ),
]


class CommandSerializer(serializers.ModelSerializer[Command]):
    """A command as the platform API shows it."""

    partner = serializers.CharField(source="partner.name", read_only=True)
    partner_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Command
        fields = (
            "id",
            "uid",
            "direction",
            "partner_id",
            "partner",
            "command_type",
            "state",
            "request",
            "response_url",
            "location_id",
            "evse_uid",
            "connector_id",
            "session_id",
            "reservation_id",
            "authorization_reference",
            "gateway",
            "response_result",
            "response_timeout",
            "response_message",
            "responded_at",
            "deadline_at",
            "result",
            "result_message",
            "result_at",
            "result_delivery",
            "result_attempts",
            "result_error",
            "created_at",
        )
        read_only_fields = fields


class CommandSendSerializer(serializers.Serializer[Any]):
    """A command to send to a partner CPO: the OCPI command object's fields (`response_url` is ours, added)."""

    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.filter(status=Partner.Status.REGISTERED))
    command_type = serializers.ChoiceField(choices=CommandType.choices)
    emsp = serializers.PrimaryKeyRelatedField(
        queryset=Party.objects.filter(partner__isnull=True, role="EMSP"), required=False, allow_null=True
    )
    token = serializers.DictField(required=False, help_text="OCPI Token (START_SESSION, RESERVE_NOW)")
    location_id = serializers.CharField(required=False, max_length=36)
    evse_uid = serializers.CharField(required=False, max_length=36)
    connector_id = serializers.CharField(required=False, max_length=36)
    authorization_reference = serializers.CharField(required=False, max_length=36)
    session_id = serializers.CharField(required=False, max_length=36)
    reservation_id = serializers.CharField(required=False, max_length=36)
    expiry_date = serializers.CharField(required=False, help_text="OCPI DateTime (RESERVE_NOW)")


class CommandResultSerializer(serializers.Serializer[Any]):
    """What the charger did with a received command (reported by the operator's charge point system)."""

    result = serializers.ChoiceField(choices=CommandResultType.choices)
    message = serializers.CharField(required=False, max_length=512)
    session_id = serializers.CharField(
        required=False, max_length=36, help_text="RESERVE_NOW: the RESERVATION session the charger holds"
    )


class CommandPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class CommandListView(ListAPIView[Command]):
    """/api/commands/: list (filters `direction`, `command_type`, `state`, `partner`), and send a command."""

    serializer_class = CommandSerializer
    pagination_class = CommandPagination
    parser_classes = [JSONParser]

    def get_queryset(self) -> Any:
        queryset = Command.objects.select_related("partner").order_by("-created_at", "-pk")
        params = self.request.query_params
        for param, field in (("direction", "direction"), ("command_type", "command_type"), ("state", "state")):
            if params.get(param):
                queryset = queryset.filter(**{field: params[param]})
        if params.get("partner", "").isdigit():
            queryset = queryset.filter(partner_id=int(params["partner"]))
        return queryset

    @extend_schema(
        operation_id="platform_commands_list",
        summary="List commands, sent and received, newest first",
        tags=[TAG],
        responses={200: CommandSerializer(many=True), **AUTH_ERRORS},
        parameters=[
            OpenApiParameter("direction", str, enum=list(Command.Direction.values)),
            OpenApiParameter("command_type", str, enum=list(CommandType.values)),
            OpenApiParameter("state", str, enum=list(Command.State.values)),
            OpenApiParameter("partner", int),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="platform_commands_send",
        tags=[TAG],
        summary="Send a command to a partner CPO",
        request=CommandSendSerializer,
        examples=_SEND_EXAMPLES,
        responses={
            201: CommandSerializer,
            400: OpenApiResponse(
                description="Invalid body, naming the field (`partner` must be the id of a registered partner)"
            ),
            **AUTH_ERRORS,
            404: OpenApiResponse(description="The partner offers no commands Receiver"),
        },
        description="Send a command to a partner CPO (we are the eMSP). The answer holds the CPO's CommandResponse; "
        "the CommandResult is stored when the CPO posts it to our response_url.",
    )
    def post(self, request: Request) -> Response:
        serializer = CommandSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        partner, command_type, emsp = data.pop("partner"), data.pop("command_type"), data.pop("emsp", None)
        command = command_send(partner=partner, command_type=command_type, data=data, emsp=emsp)
        return Response(CommandSerializer(command).data, status=status.HTTP_201_CREATED)


class CommandView(RetrieveAPIView[Command]):
    """/api/commands/{id}/: one command."""

    serializer_class = CommandSerializer
    queryset = Command.objects.select_related("partner")

    @extend_schema(
        operation_id="platform_commands_get",
        summary="Get one command",
        tags=[TAG],
        responses={200: CommandSerializer, **AUTH_ERRORS, 404: OpenApiResponse(description="Unknown command")},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CommandResultView(APIView):
    """/api/commands/{id}/result: the charger's outcome of a received command (webhook gateway)."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="platform_commands_result",
        summary="Report what the charger did with a received command (the CommandResult is sent to the eMSP)",
        tags=[TAG],
        request=CommandResultSerializer,
        examples=[OpenApiExample("Accepted", value={"result": "ACCEPTED"}, request_only=True)],
        responses={
            200: CommandSerializer,
            400: OpenApiResponse(description="Invalid body, or a command no longer waiting for its result"),
            **AUTH_ERRORS,
            404: OpenApiResponse(description="No received command with this id"),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        serializer = CommandResultSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        command = Command.objects.filter(pk=pk, direction=Command.Direction.RECEIVED).first()
        if command is None:
            raise NotFound("No received command with this id")
        if not command_result_report(command_id=command.pk, **serializer.validated_data):
            raise ValidationError({"result": "This command is not waiting for a result (answered or timed out)"})
        command.refresh_from_db()
        return Response(CommandSerializer(command).data)
