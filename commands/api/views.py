"""Commands interfaces (REFERENCE §11.1, §11.2): the CPO Receiver of partners' commands and the eMSP's
CommandResult receiver (the `response_url`s of the commands we send; the SENDER interface in version details)."""

from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, extend_schema
from rest_framework.request import Request

from commands.choices import CommandType
from commands.services import REQUEST_TYPES, command_receive, command_response_body, command_result_receive
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID
from ocpi_core.envelope import OcpiResponse

_TAGS = ["OCPI commands"]
_COMMAND = OpenApiParameter(
    "command", str, OpenApiParameter.PATH, enum=list(CommandType.values), description="CommandType"
)


class CommandReceiverView(OcpiAPIView):
    """POST /ocpi/2.2.1/cpo/commands/{command}: answered at once with a CommandResponse; the CommandResult follows on
    the request's response_url."""

    ocpi_module = ModuleID.COMMANDS

    @extend_schema(
        operation_id="ocpi_cpo_commands_post",
        tags=_TAGS,
        parameters=[_COMMAND],
        request=OpenApiRequest({"oneOf": [object_schema(name) for name in REQUEST_TYPES.values()]}),
        responses=ocpi_responses(object_schema("CommandResponse")),
        description="The body is the object of the command: StartSession, StopSession, ReserveNow, "
        "CancelReservation or UnlockConnector. An unknown location is answered 2003 with a REJECTED CommandResponse.",
    )
    def post(self, request: Request, command: str) -> OcpiResponse:
        received = command_receive(
            partner=request_auth(request).partner, command_type=command, data=request.data, routing=self.routing
        )
        return OcpiResponse(command_response_body(received))


class CommandResultReceiverView(OcpiAPIView):
    """POST /ocpi/2.2.1/emsp/commands/{command}/{uid}: a CPO reports the CommandResult of a command we sent."""

    ocpi_module = ModuleID.COMMANDS

    @extend_schema(
        operation_id="ocpi_emsp_commands_result_post",
        tags=_TAGS,
        parameters=[_COMMAND, OpenApiParameter("uid", str, OpenApiParameter.PATH, description="Our command id")],
        request=ocpi_request("CommandResult"),
        responses=ocpi_responses(None),
    )
    def post(self, request: Request, command: str, uid: str) -> OcpiResponse:
        command_result_receive(partner=request_auth(request).partner, command_type=command, uid=uid, data=request.data)
        return OcpiResponse()
