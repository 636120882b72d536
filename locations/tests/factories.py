"""Test data for the Locations module: factory_boy factories for rows, OCPI bodies as dicts, and `own_location`,
which writes one of our own locations through the service so that its cached JSON (`doc`) is right.

Rows made by the factories alone have no `doc`; use `own_location` (or a receiver PUT) wherever the cached JSON is
read (the Sender list, GET of a Location).
"""

from datetime import UTC, datetime
from typing import Any

import factory
from django.utils import timezone

from locations.models import Connector, Evse, Location
from locations.services import Key, location_put
from ocpi_core.envelope import format_datetime

STAMP = "2024-01-01T00:00:00Z"


class LocationFactory(factory.django.DjangoModelFactory):
    """A Location row (our own unless `partner` is given), without EVSEs and without cached JSON."""

    class Meta:
        model = Location

    partner = None
    country_code = "NL"
    party_id = "OWN"
    ocpi_id = factory.Sequence(lambda n: f"LOC{n:05d}")
    publish = True
    name = factory.Sequence(lambda n: f"Location {n}")
    address = factory.Sequence(lambda n: f"Stationsplein {n}")
    city = "Amsterdam"
    postal_code = "1012AB"
    country = "NLD"
    coordinates = factory.LazyFunction(lambda: {"latitude": "52.378900", "longitude": "4.900300"})
    time_zone = "Europe/Amsterdam"
    last_updated = factory.LazyFunction(timezone.now)


class EvseFactory(factory.django.DjangoModelFactory):
    """An EVSE row of a Location, without connectors."""

    class Meta:
        model = Evse

    location = factory.SubFactory(LocationFactory)
    position = factory.Sequence(lambda n: n)
    uid = factory.Sequence(lambda n: f"EVSE{n:05d}")
    evse_id = factory.Sequence(lambda n: f"NL*OWN*E{n:05d}")
    status = "AVAILABLE"
    last_updated = factory.LazyFunction(timezone.now)


class ConnectorFactory(factory.django.DjangoModelFactory):
    """A Connector row of an EVSE: Type 2 socket, 3-phase AC 230 V / 16 A."""

    class Meta:
        model = Connector

    evse = factory.SubFactory(EvseFactory)
    position = factory.Sequence(lambda n: n)
    ocpi_id = "1"
    standard = "IEC_62196_T2"
    format = "SOCKET"
    power_type = "AC_3_PHASE"
    max_voltage = 230
    max_amperage = 16
    last_updated = factory.LazyFunction(timezone.now)


# --- OCPI bodies (dicts as on the wire) ---


def connector_data(connector_id: str = "1", *, last_updated: str = STAMP, **fields: Any) -> dict[str, Any]:
    """A valid OCPI Connector."""
    data: dict[str, Any] = {
        "id": connector_id,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 16,
        "last_updated": last_updated,
    }
    data.update(fields)
    return data


def evse_data(uid: str = "EVSE1", *, connectors: int = 1, last_updated: str = STAMP, **fields: Any) -> dict[str, Any]:
    """A valid OCPI EVSE with `connectors` connectors (ids 1..n)."""
    data: dict[str, Any] = {
        "uid": uid,
        "evse_id": f"NL*OWN*E{uid}"[:48],
        "status": "AVAILABLE",
        "connectors": [connector_data(str(i), last_updated=last_updated) for i in range(1, connectors + 1)],
        "last_updated": last_updated,
    }
    data.update(fields)
    return data


def location_data(
    location_id: str = "LOC1",
    *,
    country_code: str = "NL",
    party_id: str = "OWN",
    evses: int = 1,
    last_updated: str = STAMP,
    **fields: Any,
) -> dict[str, Any]:
    """A valid OCPI Location with `evses` EVSEs (uids `<location_id>-1` .. `-n`, one connector each)."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": location_id,
        "publish": True,
        "name": f"Location {location_id}",
        "address": "Stationsplein 1",
        "city": "Amsterdam",
        "postal_code": "1012AB",
        "country": "NLD",
        "coordinates": {"latitude": "52.378900", "longitude": "4.900300"},
        "evses": [evse_data(f"{location_id}-{i}", last_updated=last_updated) for i in range(1, evses + 1)],
        "time_zone": "Europe/Amsterdam",
        "last_updated": last_updated,
    }
    if not evses:
        del data["evses"]
    data.update(fields)
    return data


def own_location(
    location_id: str = "LOC1",
    *,
    country_code: str = "NL",
    party_id: str = "OWN",
    evses: int = 1,
    last_updated: datetime | str | None = None,
    **fields: Any,
) -> Location:
    """One of our own locations with `evses` EVSEs, written by `location_put(partner=None, ...)`: rows, cached JSON
    and an outbox row per partner receiving Locations, exactly as the platform API or the admin would. Its
    last_updated is now unless given."""
    stamp = last_updated or datetime.now(UTC)
    if isinstance(stamp, datetime):
        stamp = format_datetime(stamp)
    data = location_data(
        location_id, country_code=country_code, party_id=party_id, evses=evses, last_updated=stamp, **fields
    )
    return location_put(partner=None, key=Key(country_code, party_id, location_id), data=data).location
