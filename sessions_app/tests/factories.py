"""Test data for the Sessions module: OCPI Session bodies as dicts, our own location with tariffs to start sessions
at, and the official session examples."""

import json
from decimal import Decimal
from typing import Any

from conftest import examples_dir
from locations.models import Location
from locations.services import Key as LocationKey
from locations.services import location_put
from locations.tests.factories import connector_data, evse_data, location_data
from tariffs.tests.factories import own_tariff

STAMP = "2024-01-01T00:00:00Z"


def cdr_token(country_code: str = "DE", party_id: str = "PRT", uid: str = "TOKEN1") -> dict[str, Any]:
    """A CdrToken of an eMSP party."""
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{country_code}-{party_id}-C{uid}"[:36],
    }


def session_data(
    session_id: str = "S1",
    *,
    country_code: str = "DE",
    party_id: str = "CPO",
    last_updated: str = STAMP,
    **fields: Any,
) -> dict[str, Any]:
    """A valid OCPI Session of a CPO party, with one charging period and exact numbers (as a partner would send)."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": session_id,
        "start_date_time": "2024-01-01T00:00:00Z",
        "kwh": 1.25,
        "cdr_token": cdr_token("NL", "OWE"),
        "auth_method": "WHITELIST",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "currency": "EUR",
        "charging_periods": [
            {"start_date_time": "2024-01-01T00:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 1.25}]}
        ],
        "total_cost": {"excl_vat": 0.3125, "incl_vat": 0.378125},
        "status": "ACTIVE",
        "last_updated": last_updated,
    }
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def own_charging_location(
    location_id: str = "LOC1", *, capable: bool = True, tariff_ids: tuple[str, ...] = ("T1",), currency: str = "EUR"
) -> Location:
    """One of our own locations (NL*OWN) with EVSE `EVSE1` and connector `1` listing `tariff_ids` (own tariffs made
    first), CHARGING_PREFERENCES_CAPABLE unless `capable` is false."""
    for tariff_id in tariff_ids:
        own_tariff(tariff_id, currency=currency)
    capabilities = ["RFID_READER", "CHARGING_PREFERENCES_CAPABLE"] if capable else ["RFID_READER"]
    data = location_data(location_id, evses=0)
    evse = evse_data("EVSE1", capabilities=capabilities, connectors=0)
    connector = connector_data("1")
    if tariff_ids:
        connector["tariff_ids"] = list(tariff_ids)
    evse["connectors"] = [connector]
    data["evses"] = [evse]
    return location_put(partner=None, key=LocationKey("NL", "OWN", location_id), data=data).location


def example(name: str) -> dict[str, Any]:
    """One official example, parsed with exact numbers (skips when the examples folder is absent)."""
    result: dict[str, Any] = json.loads((examples_dir() / name).read_text(), parse_float=Decimal)
    return result
