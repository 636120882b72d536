"""Locations interfaces (REFERENCE §6.2, §6.3): CPO Sender (our own locations) and eMSP Receiver (partners')."""

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request

from locations.models import Location
from locations.services import Key, location_object_get, location_patch, location_put, publishable
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_list, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.exceptions import UnknownLocation
from ocpi_core.pagination import paginate
from ocpi_core.selectors import own_parties_for_request

_OBJECT = {"oneOf": [object_schema("Location"), object_schema("EVSE"), object_schema("Connector")]}
_ID = OpenApiParameter.PATH


def own_locations(view: OcpiAPIView) -> QuerySet[Location]:
    """Our own locations of the CPO parties the request is for, that may be sent to partners."""
    parties = own_parties_for_request(routing=view.routing, role=Role.CPO)
    owners = Q(pk__in=[])
    for party in parties:
        owners |= Q(country_code__iexact=party.country_code, party_id__iexact=party.party_id)
    return Location.objects.filter(owners, partner__isnull=True).exclude(publish=False, publish_allowed_to=None)


class LocationSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/locations: our locations, paginated (the cached JSON is joined, never re-rendered)."""

    ocpi_module = ModuleID.LOCATIONS

    @ocpi_list(object_schema("Location"), operation_id="ocpi_cpo_locations_list", tags=["OCPI locations"])
    def get(self, request: Request) -> Any:
        queryset = own_locations(self).only("pk", "last_updated", "doc")
        page = paginate(queryset, request.query_params, request.path)
        body = b"[" + b",".join(location.doc.encode() for location in page.objects) + b"]"
        return raw_data_response(body, headers=page.headers)


class LocationSenderObjectView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/locations/{location_id}[/{evse_uid}[/{connector_id}]]."""

    ocpi_module = ModuleID.LOCATIONS

    @extend_schema(operation_id="ocpi_cpo_locations_get", tags=["OCPI locations"], responses=ocpi_responses(_OBJECT))
    def get(
        self, request: Request, location_id: str, evse_uid: str | None = None, connector_id: str | None = None
    ) -> OcpiResponse:
        location = own_locations(self).filter(ocpi_id__iexact=location_id).only("country_code", "party_id").first()
        if location is None or not publishable(location):
            raise UnknownLocation(f"Unknown location {location_id}")
        key = Key(location.country_code, location.party_id, location_id, evse_uid, connector_id)
        return OcpiResponse(location_object_get(key=key, partner=None))


class LocationReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]]."""

    ocpi_module = ModuleID.LOCATIONS

    def _key(self, kwargs: dict[str, Any]) -> Key:
        return Key(
            kwargs["country_code"],
            kwargs["party_id"],
            kwargs["location_id"],
            kwargs.get("evse_uid"),
            kwargs.get("connector_id"),
        )

    @extend_schema(operation_id="ocpi_emsp_locations_get", tags=["OCPI locations"], responses=ocpi_responses(_OBJECT))
    def get(self, request: Request, **kwargs: Any) -> OcpiResponse:
        from locations.services import _assert_owner

        key = self._key(kwargs)
        partner = request_auth(request).partner
        _assert_owner(partner, key)
        return OcpiResponse(location_object_get(key=key, partner=partner))

    @extend_schema(
        operation_id="ocpi_emsp_locations_put",
        tags=["OCPI locations"],
        request=ocpi_request("Location"),
        responses=ocpi_responses(None, created=True),
    )
    def put(self, request: Request, **kwargs: Any) -> OcpiResponse:
        result = location_put(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse(http_status=201 if result.created else 200)

    @extend_schema(
        operation_id="ocpi_emsp_locations_patch",
        tags=["OCPI locations"],
        request=ocpi_request("Location"),
        responses=ocpi_responses(None),
    )
    def patch(self, request: Request, **kwargs: Any) -> OcpiResponse:
        location_patch(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse()
