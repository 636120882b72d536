"""Test data for the CDRs module: OCPI CDR bodies as dicts, the official example, and own CDRs stored through the
service (so the JSON document and the outbox are right)."""

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from cdrs.models import Cdr
from cdrs.services import _store_own, token_partner
from conftest import examples_dir
from ocpi_core.envelope import format_datetime

STAMP = "2024-01-01T12:00:00Z"


def cdr_example() -> dict[str, Any]:
    """The official CDR example (`cdr_example.json`; INDEX.md: valid by the field rules, with swapped coordinates and
    a last_updated before end_date_time, which no field rule forbids). Skips when the examples are absent."""
    path = examples_dir() / "cdr_example.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def cdr_data(
    cdr_id: str = "CDR1",
    *,
    country_code: str = "BE",
    party_id: str = "BEC",
    token: tuple[str, str] = ("NL", "OWE"),
    last_updated: str = STAMP,
    **fields: Any,
) -> dict[str, Any]:
    """A valid CDR: 1.5 h, 11.25 kWh at €0.25/kWh, €2.8125 excl. / €3.403125 incl. 21 % VAT."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": cdr_id,
        "start_date_time": "2024-01-01T10:00:00Z",
        "end_date_time": "2024-01-01T11:30:00Z",
        "session_id": f"S-{cdr_id}"[:36],
        "cdr_token": {
            "country_code": token[0],
            "party_id": token[1],
            "uid": "012345678",
            "type": "RFID",
            "contract_id": "NL-OWE-C12345678-X",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1",
            "name": "Harbour",
            "address": "Kade 1",
            "city": "Gent",
            "postal_code": "9000",
            "country": "BEL",
            "coordinates": {"latitude": "51.047599", "longitude": "3.729944"},
            "evse_uid": "3256",
            "evse_id": "BE*BEC*E041503003",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "tariffs": [
            {
                "country_code": country_code,
                "party_id": party_id,
                "id": "T1",
                "currency": "EUR",
                "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1}]}],
                "last_updated": "2023-12-01T00:00:00Z",
            }
        ],
        "charging_periods": [
            {
                "start_date_time": "2024-01-01T10:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 11.25}, {"type": "TIME", "volume": 1.5}],
                "tariff_id": "T1",
            }
        ],
        "total_cost": {"excl_vat": 2.8125, "incl_vat": 3.403125},
        "total_energy": 11.25,
        "total_energy_cost": {"excl_vat": 2.8125, "incl_vat": 3.403125},
        "total_time": 1.5,
        "last_updated": last_updated,
    }
    data.update(fields)
    return data


def own_cdr(cdr_id: str = "OWN1", *, token: tuple[str, str] = ("DE", "PRT"), **fields: Any) -> Cdr:
    """One of our own CDRs (NL*OWN), stored through the service: queued for the token's eMSP partner, if any."""
    data = cdr_data(cdr_id, country_code="NL", party_id="OWN", token=token, **fields)
    data.setdefault("last_updated", format_datetime(timezone.now()))
    data = copy.deepcopy(data)
    for tariff in data["tariffs"]:
        tariff.update(country_code="NL", party_id="OWN")
    cdr = _store_own(data, pricing={"tariff_id": "T1", "lines": [{"excl_vat": str(Decimal("2.8125"))}]})
    assert cdr.receiver == token_partner(country_code=token[0], party_id=token[1])
    return cdr
