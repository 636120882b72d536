"""Credentials as receiver (REFERENCE §5): a partner registers, updates and unregisters with us over real HTTP."""

from typing import Any

import pytest

from conftest import FakePartner
from ocpi_core.crypto import token_generate
from ocpi_core.models import Partner, PartnerToken, Party


def credentials_body(fake: FakePartner, token: str) -> dict[str, Any]:
    fake.accepted_tokens.add(token)
    return {"token": token, "url": fake.versions_url, "roles": fake.roles}


def test_register_with_token_a_stores_partner_and_kills_token_a(ocpi, ocpi_base_url, invited_partner, fake_partner):
    partner, token_a = invited_partner
    token_b = token_generate()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_b))

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000)
    token_c = body["data"]["token"]
    assert body["data"]["url"] == f"{ocpi_base_url}/ocpi/versions"
    assert {r["role"] for r in body["data"]["roles"]} == {"CPO", "EMSP"}
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert partner.token_out() == token_b
    assert partner.endpoint_url("credentials") == fake_partner.server.url_for("/ocpi/2.2.1/credentials")
    assert list(Party.objects.filter(partner=partner).values_list("party_id", flat=True)) == ["FKC"]
    # the partner was called back with token B before we answered
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions", "/ocpi/2.2.1"]
    # token A is dead, token C works
    assert ocpi(token_a).get("/ocpi/versions").status_code == 401
    assert ocpi(token_c).get("/ocpi/versions").status_code == 200
    assert ocpi(token_c).get("/ocpi/2.2.1/credentials").json()["data"]["token"] == token_c


def test_second_post_is_405(ocpi, ocpi_base_url, registered_partner, fake_partner):
    _, token = registered_partner
    response = ocpi(token).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000
    assert fake_partner.received == []


@pytest.mark.parametrize("method", ["put", "delete"])
def test_put_and_delete_unregistered_are_405(ocpi, ocpi_base_url, invited_partner, fake_partner, method):
    partner, token_a = invited_partner
    client = ocpi(token_a)
    if method == "put":
        response = client.put("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))
    else:
        response = client.delete("/ocpi/2.2.1/credentials")
    assert response.status_code == 405
    partner.refresh_from_db()
    assert partner.status == Partner.Status.INVITED
    assert PartnerToken.objects.filter(partner=partner, kind=PartnerToken.Kind.REGISTRATION).count() == 1


def test_partner_unreachable_is_3001_and_nothing_stored(ocpi, ocpi_base_url, invited_partner):
    partner, token_a = invited_partner
    body = {
        "token": token_generate(),
        "url": "http://127.0.0.1:9/ocpi/versions",
        "roles": [{"role": "CPO", "business_details": {"name": "X"}, "party_id": "XXX", "country_code": "NL"}],
    }
    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=body)
    assert response.json()["status_code"] == 3001
    partner.refresh_from_db()
    assert partner.status == Partner.Status.INVITED
    assert not Party.objects.filter(partner=partner).exists()
    assert ocpi(token_a).get("/ocpi/versions").status_code == 200  # token A still valid
