"""Test data for the Tokens module: OCPI Token bodies as dicts, `own_token` (through the service, so the cached JSON
and the outbox are right), `partner_token`, and the official Token examples."""

import json
from typing import Any

import pytest

from conftest import examples_dir
from ocpi_core.models import Partner
from tokens.models import Token
from tokens.services import Key, token_put

STAMP = "2024-01-01T00:00:00Z"
EXAMPLES = (
    "token_example_1_app_user.json",
    "token_example_2_full_rfid.json",
    "token_put_example.json",
)


def example(name: str) -> Any:
    """One official example, parsed (skips the test when the examples folder is absent)."""
    path = examples_dir() / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())


def token_data(
    uid: str = "04A1B2C3",
    *,
    country_code: str = "NL",
    party_id: str = "OWE",
    type: str = "RFID",
    last_updated: str = STAMP,
    **fields: Any,
) -> dict[str, Any]:
    """A valid OCPI Token (fields in spec order)."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": type,
        "contract_id": f"{country_code}OWEC{uid[:8]}",
        "issuer": "Own eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": last_updated,
    }
    data.update(fields)
    return data


def own_token(uid: str = "04A1B2C3", **fields: Any) -> Token:
    """One of our own eMSP tokens (NL*OWE), written through the service (pushes to CPO partners)."""
    data = token_data(uid, **fields)
    key = Key(data["country_code"], data["party_id"], uid, data["type"])
    return token_put(partner=None, key=key, data=data).token


def partner_token(partner: Partner, uid: str = "0AFF0001", **fields: Any) -> Token:
    """A partner's token in our cache (as if pushed or pulled), by default under DE*PRT."""
    fields.setdefault("country_code", "DE")
    fields.setdefault("party_id", "PRT")
    data = token_data(uid, **fields)
    key = Key(data["country_code"], data["party_id"], uid, data["type"])
    return token_put(partner=partner, key=key, data=data).token
