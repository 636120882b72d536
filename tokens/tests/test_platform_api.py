"""Platform API for our own tokens (/api/tokens/): JWT staff only; issue/replace, block/unblock/expire go through the
services (cached JSON, outbox rows for CPO partners); a refused request changes nothing."""

from typing import Any

import pytest
from django.test import Client

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, PartnerEndpoint
from tokens.models import Token
from tokens.tests.factories import token_data

BASE = "/api/tokens/"


@pytest.fixture
def cpo_receiver(own_parties: Any) -> Any:
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    PartnerEndpoint.objects.create(partner=partner, identifier="tokens", role="RECEIVER", url="http://127.0.0.1:9/t")
    return partner


def body(uid: str = "CARD1", **fields: Any) -> dict[str, Any]:
    data = token_data(uid, **fields)
    del data["last_updated"]
    return data


def test_anonymous_is_refused(own_parties):
    assert Client().get(BASE).status_code == 401


def test_issue_list_block_unblock_expire(staff, cpo_receiver):
    created = staff.put(f"{BASE}NL/OWE/CARD1", body(), content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["uid"] == "CARD1"

    listed = staff.get(BASE, {"party": "NL*OWE"}).json()
    assert (listed["count"], listed["results"][0]["uid"]) == (1, "CARD1")

    blocked = staff.post(f"{BASE}NL/OWE/CARD1/block")
    assert (blocked.status_code, blocked.json()["valid"]) == (200, False)
    assert staff.get(BASE, {"valid": "false"}).json()["count"] == 1
    unblocked = staff.post(f"{BASE}NL/OWE/CARD1/unblock")
    assert unblocked.json()["valid"] is True
    expired = staff.post(f"{BASE}NL/OWE/CARD1/expire")
    assert expired.json()["valid"] is False
    assert Token.objects.get().expires_at is not None
    assert Delivery.objects.filter(partner=cpo_receiver).exists()


def test_refused_writes_change_nothing(staff, cpo_receiver):
    bad = staff.put(f"{BASE}NL/OWE/CARD1", body(whitelist="SOMETIMES"), content_type="application/json")
    foreign = staff.put(f"{BASE}NL/OWN/CARD1", body(party_id="OWN"), content_type="application/json")
    unknown = staff.post(f"{BASE}NL/OWE/NOPE/block")

    assert bad.status_code == 400
    assert "whitelist" in bad.json()["detail"]
    assert foreign.status_code == 400
    assert unknown.status_code == 404
    assert Token.objects.count() == 0
    assert Delivery.objects.count() == 0
