"""Test data for ChargingProfiles: a charging session of ours on the simulator, profiles, partners."""

from typing import Any

from conftest import make_partner
from gateway.base import GatewayCommand
from gateway.simulator import SimulatorGateway
from ocpi_core.constants import Role
from sessions_app.models import Session
from sessions_app.tests.factories import own_charging_location


def token(country_code: str = "DE", party_id: str = "PRT", uid: str = "TOKEN1") -> dict[str, Any]:
    """The eMSP's Token object a START_SESSION command carries."""
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{country_code}-{party_id}-C{uid}",
        "issuer": "eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-01-01T00:00:00Z",
    }


def charging_session(country_code: str = "DE", party_id: str = "PRT") -> Session:
    """One of our own ACTIVE sessions (NL*OWN, LOC1/EVSE1/1), started on the simulator for the token's eMSP."""
    own_charging_location()
    command = GatewayCommand(
        command_id=0,
        command_type="START_SESSION",
        country_code="NL",
        party_id="OWN",
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        token=token(country_code, party_id),
    )
    assert SimulatorGateway().start_session(command=command) == "ACCEPTED"
    return Session.objects.get(partner__isnull=True)


def profile(limit: float = 11000.0, unit: str = "W", **fields: Any) -> dict[str, Any]:
    """A valid ChargingProfile: `limit` from the start, half of it after 10 minutes."""
    data = {
        "charging_rate_unit": unit,
        "charging_profile_period": [{"start_period": 0, "limit": limit}, {"start_period": 600, "limit": limit / 2}],
        **fields,
    }
    return {name: value for name, value in data.items() if value is not None}


def emsp_partner(name: str = "emsp", base_url: str = "http://127.0.0.1:9/ocpi") -> tuple[Any, str]:
    """A registered eMSP partner owning DE*PRT (the token owner of `charging_session`)."""
    return make_partner(name=name, base_url=base_url, roles=(("DE", "PRT", Role.EMSP),))
