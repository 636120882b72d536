"""Platform API for charging profiles (/api/chargingprofiles/), JWT-authenticated staff (REST_FRAMEWORK defaults).

- `POST /api/chargingprofiles/`: ask a partner CPO to set, get or clear the charging profile of one of its sessions
  (we are the eMSP/SCSP, `chargingprofile_send`); the answer holds the CPO's ChargingProfileResponse, the result is
  stored when the CPO POSTs it to the request's own response_url;
- `GET /api/chargingprofiles/` and `/api/chargingprofiles/{id}/`: the requests, sent and received, with their
  response and result.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from chargingprofiles.models import ChargingProfileRequest, Direction, Kind
from chargingprofiles.services import chargingprofile_send
from ocpi_core.api.platform import AUTH_ERRORS
from ocpi_core.models import Partner

TAG = "Platform API: charging profiles"
_SEND_EXAMPLES = [
    OpenApiExample(
        "set",
        summary="Limit a partner CPO's session to 11 kW",
        value={
            "partner": 1,
            "session_id": "SESSION1",
            "kind": "set",
            "charging_profile": {
                "charging_rate_unit": "W",
                "charging_profile_period": [{"start_period": 0, "limit": 11000}],
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "get",
        summary="The active profile of the next hour",
        value={"partner": 1, "session_id": "SESSION1", "kind": "get", "duration": 3600},
        request_only=True,
    ),
    OpenApiExample("clear", value={"partner": 1, "session_id": "SESSION1", "kind": "clear"}, request_only=True),
]
KINDS = {"set": Kind.SET, "get": Kind.ACTIVE, "clear": Kind.CLEAR}  # what the operator asks -> the stored kind


class ChargingProfileRequestSerializer(serializers.ModelSerializer[ChargingProfileRequest]):
    """A charging profile request as the platform API shows it."""

    partner = serializers.CharField(source="partner.name", read_only=True)
    partner_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = ChargingProfileRequest
        fields = (
            "id",
            "direction",
            "kind",
            "partner_id",
            "partner",
            "session_id",
            "sender_country_code",
            "sender_party_id",
            "cpo_country_code",
            "cpo_party_id",
            "response_url",
            "duration",
            "charging_profile",
            "response",
            "timeout",
            "result",
            "active_profile",
            "result_at",
            "callback_status",
            "last_error",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ChargingProfileSendSerializer(serializers.Serializer[Any]):
    """What to ask a partner CPO about one of its sessions."""

    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.filter(status=Partner.Status.REGISTERED))
    session_id = serializers.CharField(max_length=36, help_text="The session's OCPI id at the CPO")
    kind = serializers.ChoiceField(
        choices=list(KINDS), help_text="set (PUT a profile), get (GET the active profile), clear (DELETE)"
    )
    charging_profile = serializers.DictField(required=False, help_text="set: the OCPI ChargingProfile")
    duration = serializers.IntegerField(required=False, min_value=0, help_text="get: seconds of profile asked for")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "set" and attrs.get("charging_profile") is None:
            raise serializers.ValidationError({"charging_profile": "is required to set a profile"})
        if attrs["kind"] == "get" and attrs.get("duration") is None:
            raise serializers.ValidationError({"duration": "is required to get the active profile"})
        return attrs


class ChargingProfilePagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ChargingProfileListView(ListAPIView[ChargingProfileRequest]):
    """/api/chargingprofiles/: list (filters `direction`, `kind`, `session_id`, `partner`), and send a request."""

    serializer_class = ChargingProfileRequestSerializer
    pagination_class = ChargingProfilePagination
    parser_classes = [JSONParser]

    def get_queryset(self) -> Any:
        queryset = ChargingProfileRequest.objects.select_related("partner").order_by("-created_at", "-pk")
        params = self.request.query_params
        for param in ("direction", "kind", "session_id"):
            if params.get(param):
                queryset = queryset.filter(**{param: params[param]})
        if params.get("partner", "").isdigit():
            queryset = queryset.filter(partner_id=int(params["partner"]))
        return queryset

    @extend_schema(
        operation_id="platform_chargingprofiles_list",
        summary="List charging profile requests, sent and received, newest first",
        tags=[TAG],
        responses={200: ChargingProfileRequestSerializer(many=True), **AUTH_ERRORS},
        parameters=[
            OpenApiParameter("direction", str, enum=list(Direction.values)),
            OpenApiParameter("kind", str, enum=list(Kind.values)),
            OpenApiParameter("session_id", str),
            OpenApiParameter("partner", int),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="platform_chargingprofiles_send",
        tags=[TAG],
        summary="Set, get or clear the charging profile of a partner CPO's session",
        request=ChargingProfileSendSerializer,
        examples=_SEND_EXAMPLES,
        responses={
            201: ChargingProfileRequestSerializer,
            400: OpenApiResponse(
                description="Invalid body, naming the field (`partner` must be the id of a registered partner), "
                "or a partner offering no chargingprofiles Receiver"
            ),
            **AUTH_ERRORS,
        },
        description="Set, get or clear the charging profile of a partner CPO's session (we are the eMSP/SCSP). The "
        "answer holds the CPO's ChargingProfileResponse (or `last_error` when the call failed); the result is stored "
        "when the CPO posts it to the request's response_url.",
    )
    def post(self, request: Request) -> Response:
        serializer = ChargingProfileSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        sent = chargingprofile_send(
            partner=data["partner"],
            session_id=data["session_id"],
            kind=KINDS[data["kind"]],
            duration=data.get("duration"),
            charging_profile=data.get("charging_profile"),
        )
        return Response(ChargingProfileRequestSerializer(sent).data, status=status.HTTP_201_CREATED)


class ChargingProfileView(RetrieveAPIView[ChargingProfileRequest]):
    """/api/chargingprofiles/{id}/: one request."""

    serializer_class = ChargingProfileRequestSerializer
    queryset = ChargingProfileRequest.objects.select_related("partner")

    @extend_schema(
        operation_id="platform_chargingprofiles_get",
        summary="Get one charging profile request",
        tags=[TAG],
        responses={
            200: ChargingProfileRequestSerializer,
            **AUTH_ERRORS,
            404: OpenApiResponse(description="Unknown request"),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
