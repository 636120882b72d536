"""Locations interfaces (REFERENCE §6.2, §6.3): CPO Sender (our own locations) and eMSP Receiver (partners')."""

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request

from locations.models import Location
from locations.services import Key, location_object_get, location_patch, location_put
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.api.schema import object_schema, ocpi_list, ocpi_request, ocpi_responses
from ocpi_core.authentication import request_auth
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.exceptions import UnknownLocation
from ocpi_core.hot import own_party_keys
from ocpi_core.pagination import paginate_raw

_TAGS = ["OCPI locations"]


def _sender_schema(type_name: str, name: str) -> Any:
    """OpenAPI of a Sender object GET at one URL depth: its own operationId and object type."""
    responses = ocpi_responses(object_schema(type_name))
    return extend_schema_view(get=extend_schema(operation_id=f"ocpi_cpo_{name}_get", tags=_TAGS, responses=responses))


def _receiver_schema(type_name: str, name: str) -> Any:
    """OpenAPI of the Receiver's GET / PUT / PATCH at one URL depth: own operationIds and object type."""
    return extend_schema_view(
        get=extend_schema(
            operation_id=f"ocpi_emsp_{name}_get", tags=_TAGS, responses=ocpi_responses(object_schema(type_name))
        ),
        put=extend_schema(
            operation_id=f"ocpi_emsp_{name}_put",
            tags=_TAGS,
            request=ocpi_request(type_name),
            responses=ocpi_responses(None, created=True),
        ),
        patch=extend_schema(
            operation_id=f"ocpi_emsp_{name}_patch",
            tags=_TAGS,
            request=ocpi_request(type_name),
            responses=ocpi_responses(None),
        ),
    )


def own_locations(view: OcpiAPIView) -> QuerySet[Location]:
    """Our own locations of the CPO parties the request is for, that may be sent to partners.

    The filter is the key prefix and predicate of the `location_page_sender` index: a page by cursor is an index range
    scan, an OFFSET page an index-only scan, an object a unique-index lookup. The own parties come from the hot cache.
    """
    owners = Q(pk__in=[])
    for country_code, party_id in own_party_keys(routing=view.routing, role=Role.CPO):
        owners |= Q(country_code__lower=country_code, party_id__lower=party_id)
    # publish=false locations go only to the drivers listed in publish_allowed_to (REFERENCE §6.1); SQL NULL is
    # `isnull` here: `publish_allowed_to=None` would match a stored JSON null only
    return Location.objects.filter(owners, partner__isnull=True).filter(
        Q(publish=True) | Q(publish_allowed_to__isnull=False)
    )


class LocationSenderListView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/locations: our locations, paginated (the cached JSON is joined, never re-rendered)."""

    ocpi_module = ModuleID.LOCATIONS

    @ocpi_list(object_schema("Location"), operation_id="ocpi_cpo_locations_list", tags=_TAGS)
    def get(self, request: Request) -> Any:
        page = paginate_raw(own_locations(self), request.query_params, request.path)
        return raw_data_response(page.data, headers=page.headers)


@_sender_schema("Location", "location")
class LocationSenderObjectView(OcpiAPIView):
    """GET /ocpi/2.2.1/cpo/locations/{location_id}[/{evse_uid}[/{connector_id}]] (one class per depth, for the
    schema)."""

    ocpi_module = ModuleID.LOCATIONS

    def get(
        self, request: Request, location_id: str, evse_uid: str | None = None, connector_id: str | None = None
    ) -> Any:
        found = own_locations(self).filter(ocpi_id__lower=location_id.lower())
        # the whole location: its cached JSON as it is stored, one query (an EVSE or Connector is read from rows)
        columns = ("country_code", "party_id", "doc") if evse_uid is None else ("country_code", "party_id")
        row = next(iter(found.values_list(*columns)[:1]), None)
        if row is None:
            raise UnknownLocation(f"Unknown location {location_id}")
        if evse_uid is None and row[2]:
            return raw_data_response(row[2].encode())
        key = Key(row[0], row[1], location_id, evse_uid, connector_id)
        return OcpiResponse(location_object_get(key=key, partner=None))


@_sender_schema("EVSE", "evse")
class EvseSenderObjectView(LocationSenderObjectView):
    """GET /ocpi/2.2.1/cpo/locations/{location_id}/{evse_uid}."""


@_sender_schema("Connector", "connector")
class ConnectorSenderObjectView(LocationSenderObjectView):
    """GET /ocpi/2.2.1/cpo/locations/{location_id}/{evse_uid}/{connector_id}."""


@_receiver_schema("Location", "location")
class LocationReceiverView(OcpiAPIView):
    """/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]]:
    GET what we hold, PUT creates or replaces, PATCH merges; the depth of the URL says which object (one class per
    depth, for the schema)."""

    ocpi_module = ModuleID.LOCATIONS

    def _key(self, kwargs: dict[str, Any]) -> Key:
        return Key(
            kwargs["country_code"],
            kwargs["party_id"],
            kwargs["location_id"],
            kwargs.get("evse_uid"),
            kwargs.get("connector_id"),
        )

    def get(self, request: Request, **kwargs: Any) -> OcpiResponse:
        return OcpiResponse(location_object_get(key=self._key(kwargs), partner=request_auth(request).partner))

    def put(self, request: Request, **kwargs: Any) -> OcpiResponse:
        result = location_put(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse(http_status=201 if result.created else 200)

    def patch(self, request: Request, **kwargs: Any) -> OcpiResponse:
        location_patch(partner=request_auth(request).partner, key=self._key(kwargs), data=request.data)
        return OcpiResponse()


@_receiver_schema("EVSE", "evse")
class EvseReceiverView(LocationReceiverView):
    """/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}/{evse_uid}."""


@_receiver_schema("Connector", "connector")
class ConnectorReceiverView(LocationReceiverView):
    """/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}/{evse_uid}/{connector_id}."""
