"""Base classes every OCPI view builds on: token auth, orjson parsing, the envelope for every failure, routing
headers on functional modules."""

from typing import Any

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from ocpi_core.authentication import IsRegisteredPartner, OcpiTokenAuthentication
from ocpi_core.constants import CONFIGURATION_MODULES
from ocpi_core.envelope import dumps
from ocpi_core.exceptions import InvalidParameters, ocpi_exception_handler
from ocpi_core.hot import assert_addressed_here, response_routing_headers
from ocpi_core.routing import Routing, routing_from_request
from ocpi_core.validation import body_problem


class OcpiJSONParser(BaseParser):
    """JSON bodies through orjson."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        from rest_framework.exceptions import ParseError

        raw = stream.read() if stream is not None else b""
        if not raw:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(str(exc)) from exc
        problem = body_problem(raw, data)
        if problem is not None:  # valid JSON, not OCPI content: 2001 (HTTP 200, the OCPI layer's answer)
            raise InvalidParameters(problem)
        return data


class OcpiJSONRenderer(BaseRenderer):
    """Renders DRF Responses with orjson (our views mostly return ready OcpiResponses)."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return b"" if data is None else dumps(data)


class OcpiContentNegotiation(DefaultContentNegotiation):
    """A body without Content-Type is read as JSON (older peers omit it); any Accept header gets JSON."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        if not request.content_type:
            return parsers[0]
        return super().select_parser(request, parsers)

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class OcpiAPIView(APIView):
    """An OCPI endpoint. Subclasses set `ocpi_module`; functional modules get the routing headers."""

    authentication_classes = [OcpiTokenAuthentication]
    permission_classes = [IsRegisteredPartner]
    parser_classes = [OcpiJSONParser]
    renderer_classes = [OcpiJSONRenderer]
    content_negotiation_class = OcpiContentNegotiation
    throttle_classes: list[Any] = []
    # No OPTIONS: DRF would answer its metadata, which is no envelope (and the middleware then made it a 404).
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]
    ocpi_module: str = ""

    def get_exception_handler(self) -> Any:
        return ocpi_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.routing = Routing() if self.is_configuration else routing_from_request(request)
        assert_addressed_here(self.routing)

    @property
    def is_configuration(self) -> bool:
        return self.ocpi_module in CONFIGURATION_MODULES

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        routing = getattr(self, "routing", None)
        if routing is not None and not self.is_configuration:
            for name, value in response_routing_headers(request, routing).items():
                response[name] = value
        return response
