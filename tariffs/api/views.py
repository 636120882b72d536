"""Tariffs interfaces (REFERENCE §9.2): CPO Sender (our own tariffs) and eMSP Receiver (partners')."""

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request

from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_list, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.hot import own_party_keys
from ocpi_core.pagination import paginate_raw
from tariffs.models import Tariff
from tariffs.services import Key, tariff_delete, tariff_get, tariff_put

_TAGS = ["OCPI tariffs"]


def own_tariffs(view: OcpiAPIView) -> QuerySet[Tariff]:
    """Our own tariffs of the CPO parties the request is for."""
    owners = Q(pk__in=[])
    for country_code, party_id in own_party_keys(routing=view.routing, role=Role.CPO):
        owners |= Q(country_code__lower=country_code, party_id__lower=party_id)
    return Tariff.objects.filter(owners, partner__isnull=True)


class TariffSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/tariffs: our tariffs, paginated (the cached JSON is joined, never re-rendered)."""

    ocpi_module = ModuleID.TARIFFS

    @ocpi_list(object_schema("Tariff"), operation_id="ocpi_cpo_tariffs_list", tags=_TAGS)
    def get(self, request: Request) -> Any:
        page = paginate_raw(own_tariffs(self), request.query_params, request.path)
        return raw_data_response(page.data, headers=page.headers)


class TariffReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/tariffs/{country_code}/{party_id}/{tariff_id}: GET, PUT, DELETE (no PATCH: 405)."""

    ocpi_module = ModuleID.TARIFFS
    http_method_names = ["get", "put", "delete", "head"]

    def _key(self, kwargs: dict[str, Any]) -> Key:
        return Key(kwargs["country_code"], kwargs["party_id"], kwargs["tariff_id"])

    @extend_schema(operation_id="ocpi_emsp_tariffs_get", tags=_TAGS, responses=ocpi_responses(object_schema("Tariff")))
    def get(self, request: Request, **kwargs: Any) -> Any:
        doc = tariff_get(partner=request_auth(request).partner, key=self._key(kwargs))
        return raw_data_response(doc.encode())

    @extend_schema(
        operation_id="ocpi_emsp_tariffs_put",
        tags=_TAGS,
        request=ocpi_request("Tariff"),
        responses=ocpi_responses(None, created=True),
    )
    def put(self, request: Request, **kwargs: Any) -> OcpiResponse:
        result = tariff_put(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse(http_status=201 if result.created else 200)

    @extend_schema(operation_id="ocpi_emsp_tariffs_delete", tags=_TAGS, responses=ocpi_responses(None))
    def delete(self, request: Request, **kwargs: Any) -> OcpiResponse:
        tariff_delete(partner=request_auth(request).partner, key=self._key(kwargs))
        return OcpiResponse()
