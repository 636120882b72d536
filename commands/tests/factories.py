"""Test data for the Commands module: OCPI command bodies as on the wire, and a partner eMSP calling us."""

from datetime import UTC, datetime, timedelta
from typing import Any

from ocpi_core.envelope import format_datetime

STAMP = "2024-01-01T00:00:00Z"


def token_data(
    uid: str = "APP0001", *, country_code: str = "DE", party_id: str = "PRT", **fields: Any
) -> dict[str, Any]:
    """A valid OCPI Token of the partner eMSP (an app user)."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": "APP_USER",
        "contract_id": f"{country_code}-{party_id}-C{uid}"[:36],
        "issuer": "Partner eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": STAMP,
    }
    data.update(fields)
    return data


def start_session(response_url: str, location_id: str = "LOC1", **fields: Any) -> dict[str, Any]:
    """A StartSession body."""
    data: dict[str, Any] = {"response_url": response_url, "token": token_data(), "location_id": location_id}
    data.update(fields)
    return data


def reserve_now(
    response_url: str, reservation_id: str = "RES1", location_id: str = "LOC1", **fields: Any
) -> dict[str, Any]:
    """A ReserveNow body expiring in an hour."""
    data: dict[str, Any] = {
        "response_url": response_url,
        "token": token_data(),
        "expiry_date": format_datetime(datetime.now(UTC) + timedelta(hours=1)),
        "reservation_id": reservation_id,
        "location_id": location_id,
    }
    data.update(fields)
    return data
