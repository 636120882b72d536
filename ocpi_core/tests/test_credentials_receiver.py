"""Credentials as receiver (REFERENCE §5): a partner registers, updates and unregisters with us over real HTTP."""

import base64
import json
from typing import Any

import orjson
import pytest

from conftest import FakePartner, auth_header, envelope_body, make_partner
from ocpi_core.crypto import token_generate
from ocpi_core.models import Partner, PartnerToken, Party, TrafficLog
from ocpi_core.tests.test_protocol import stored_state

JSON = {"Content-Type": "application/json"}


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


# --- helpers for the tests below ------------------------------------------------------------------------------------


def serve_details(fake: FakePartner, endpoints: list[dict[str, str]], version: str = "2.2.1") -> None:
    """Make the fake partner's version details answer these endpoints (ahead of its own handler)."""
    fake.server.expect_oneshot_request("/ocpi/2.2.1").respond_with_data(
        envelope_body({"version": version, "endpoints": endpoints}), content_type="application/json"
    )


# --- PUT: update and token rotation ----------------------------------------------------------------------------------


def test_put_rotates_token_and_refetches_partner_with_the_new_token(
    ocpi, ocpi_base_url, registered_partner, fake_partner
):
    partner, old_token = registered_partner
    new_token_for_us = token_generate()
    fake_partner.extra_endpoints = [
        {"identifier": "locations", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/locations")}
    ]
    fake_partner.roles = [
        {"role": "EMSP", "business_details": {"name": "Renamed eMSP"}, "party_id": "NEW", "country_code": "BE"}
    ]

    response = ocpi(old_token).put("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, new_token_for_us))

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000)
    new_token = body["data"]["token"]
    assert new_token != old_token
    assert body["data"]["url"] == f"{ocpi_base_url}/ocpi/versions"
    # we re-read its versions and details with the token from the body, before answering
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert {r["headers"]["Authorization"] for r in fake_partner.received} == {auth_header(new_token_for_us)}
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert partner.versions_url == fake_partner.versions_url
    assert partner.token_out() == new_token_for_us
    assert partner.endpoint_url("credentials") == fake_partner.server.url_for("/ocpi/2.2.1/credentials")
    assert partner.endpoint_url("locations", "SENDER") == fake_partner.server.url_for("/ocpi/2.2.1/locations")
    assert list(partner.parties.values_list("country_code", "party_id", "role", "name")) == [
        ("BE", "NEW", "EMSP", "Renamed eMSP")
    ]
    # the old token is dead, the new one works everywhere
    assert ocpi(old_token).get("/ocpi/versions").status_code == 401
    assert ocpi(old_token).get("/ocpi/2.2.1/credentials").status_code == 401
    assert ocpi(new_token).get("/ocpi/2.2.1/credentials").json()["data"]["token"] == new_token


def test_put_failing_callback_keeps_the_old_token(ocpi, ocpi_base_url, registered_partner, fake_partner):
    _, old_token = registered_partner
    before = stored_state()
    body = {"token": token_generate(), "url": fake_partner.versions_url, "roles": fake_partner.roles}  # not accepted

    response = ocpi(old_token).put("/ocpi/2.2.1/credentials", json=body)

    assert response.json()["status_code"] == 3001
    assert stored_state() == before
    assert ocpi(old_token).get("/ocpi/2.2.1/credentials").json()["data"]["token"] == old_token


# --- DELETE and GET ---------------------------------------------------------------------------------------------


def test_delete_unregisters_and_kills_the_token(ocpi, registered_partner):
    partner, token = registered_partner

    response = ocpi(token).delete("/ocpi/2.2.1/credentials")

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000)
    assert "data" not in body
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert partner.token_out_encrypted == ""
    assert not partner.tokens.exists()
    assert ocpi(token).get("/ocpi/versions").status_code == 401
    assert ocpi(token).delete("/ocpi/2.2.1/credentials").status_code == 401


def test_get_returns_the_presented_token_and_our_roles(ocpi, ocpi_base_url, registered_partner):
    _, token = registered_partner

    for client in (ocpi(token), ocpi(token, raw=True)):
        body = client.get("/ocpi/2.2.1/credentials").json()
        assert body["status_code"] == 1000
        assert body["data"]["token"] == token
        assert body["data"]["url"] == f"{ocpi_base_url}/ocpi/versions"
        assert sorted((r["role"], r["country_code"], r["party_id"]) for r in body["data"]["roles"]) == [
            ("CPO", "NL", "OWN"),
            ("EMSP", "NL", "OWE"),
        ]


# --- registration failures: 3001 / 3002 / 3003, nothing stored ------------------------------------------------------


def test_partner_without_2_2_1_is_3002_and_nothing_stored(ocpi, ocpi_base_url, invited_partner, fake_partner):
    _, token_a = invited_partner
    fake_partner.versions = ["2.1.1", "2.2"]
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 3002)
    assert "2.1.1" in body["status_message"]
    assert stored_state() == before
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions"]


def test_partner_details_without_credentials_is_3003_and_nothing_stored(
    ocpi, ocpi_base_url, invited_partner, fake_partner
):
    _, token_a = invited_partner
    serve_details(
        fake_partner,
        [{"identifier": "locations", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/locations")}],
    )
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 3003)
    assert "credentials" in body["status_message"]
    assert stored_state() == before


def test_partner_lacking_a_required_module_is_3003(ocpi, ocpi_base_url, invited_partner, fake_partner, settings):
    _, token_a = invited_partner
    settings.OCPI_REQUIRED_PARTNER_MODULES = ["tokens"]
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    assert response.json()["status_code"] == 3003
    assert "tokens" in response.json()["status_message"]
    assert stored_state() == before


def test_partner_versions_answering_401_is_3001(ocpi, ocpi_base_url, invited_partner, fake_partner):
    _, token_a = invited_partner
    body = {"token": token_generate(), "url": fake_partner.versions_url, "roles": fake_partner.roles}  # not accepted
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=body)

    assert (response.status_code, response.json()["status_code"]) == (200, 3001)
    assert stored_state() == before
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>It works!</body></html>", "text/html"),
        (b'{"versions": ["2.2.1"]}', "application/json"),
        (envelope_body({"version": "2.2.1", "url": "http://127.0.0.1:9/ocpi/2.2.1"}), "application/json"),
    ],
)
def test_partner_versions_not_an_envelope_or_not_a_list_is_3001(
    ocpi, ocpi_base_url, invited_partner, fake_partner, body, content_type
):
    _, token_a = invited_partner
    fake_partner.server.expect_oneshot_request("/ocpi/versions").respond_with_data(body, content_type=content_type)
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    assert response.json()["status_code"] == 3001
    assert stored_state() == before


def test_partner_details_with_invalid_endpoint_is_3001(ocpi, ocpi_base_url, invited_partner, fake_partner):
    _, token_a = invited_partner
    serve_details(fake_partner, [{"identifier": "credentials", "role": "SENDER"}])

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    assert response.json()["status_code"] == 3001
    assert "endpoints[0].url" in response.json()["status_message"]


def test_partner_offering_newer_versions_and_custom_modules_registers(
    ocpi, ocpi_base_url, invited_partner, fake_partner
):
    """Tolerant reading (REFERENCE §4.2, §17): versions we do not know and prefixed custom modules are ignored."""
    partner, token_a = invited_partner
    fake_partner.versions = ["2.1.1", "2.2.1", "3.0"]
    credentials_url = fake_partner.server.url_for("/ocpi/2.2.1/credentials")
    serve_details(
        fake_partner,
        [
            {"identifier": "credentials", "role": "SENDER", "url": credentials_url},
            {"identifier": "nltnm-tokens", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/x/tokens")},
        ],
    )

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    assert response.json()["status_code"] == 1000, response.json()
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert list(partner.endpoints.values_list("identifier", flat=True)) == ["credentials"]


# --- invalid bodies: 2001, nothing stored, nobody called -----------------------------------------------------------


def _role(**changes: Any) -> dict[str, Any]:
    return {"role": "CPO", "business_details": {"name": "X"}, "party_id": "XXX", "country_code": "NL", **changes}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": ...}, "token: is required"),
        ({"token": "has space"}, "token: does not match"),
        ({"token": "t" * 65}, "token: must be at most 64"),
        ({"token": ""}, "token: does not match"),
        ({"token": 12345}, "token: must be a string"),
        ({"url": ...}, "url: is required"),
        ({"roles": []}, "roles: must contain at least one element"),
        ({"roles": ...}, "roles: is required"),
        ({"roles": [_role(), _role()]}, "roles[1]: duplicate role"),
        ({"roles": [_role(), _role(party_id="xxx", country_code="nl")]}, "roles[1]: duplicate role"),
        ({"roles": [_role(role="MSP")]}, "roles[0].role: must be one of"),
        ({"roles": [_role(role="cpo")]}, "roles[0].role: must be one of"),
        ({"roles": [_role(party_id="XXXX")]}, "roles[0].party_id: must be at most 3"),
        ({"roles": [_role(business_details={})]}, "roles[0].business_details.name: is required"),
    ],
)
def test_invalid_credentials_body_is_2001_and_nothing_stored(
    ocpi, ocpi_base_url, invited_partner, fake_partner, change, message
):
    _, token_a = invited_partner
    body = credentials_body(fake_partner, token_generate())
    for key, value in change.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=body)

    answer = response.json()
    assert (response.status_code, answer["status_code"]) == (200, 2001)
    assert message in answer["status_message"]
    assert stored_state() == before
    assert fake_partner.received == []


@pytest.mark.parametrize("payload", [[], "token", None, 42])
def test_credentials_body_that_is_not_an_object_is_2001(ocpi, invited_partner, payload):
    _, token_a = invited_partner
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", content=orjson.dumps(payload), headers=JSON)

    assert (response.status_code, response.json()["status_code"]) == (200, 2001)
    assert stored_state() == before


def test_invalid_put_body_is_2001_and_token_unchanged(ocpi, registered_partner, fake_partner):
    _, token = registered_partner
    before = stored_state()

    response = ocpi(token).put("/ocpi/2.2.1/credentials", json={"token": "a b", "url": fake_partner.versions_url})

    assert (response.status_code, response.json()["status_code"]) == (200, 2001)
    assert stored_state() == before
    assert ocpi(token).get("/ocpi/versions").status_code == 200


# --- SSRF guard on partner URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put"])
def test_private_partner_url_is_refused_when_private_urls_are_off(
    ocpi, ocpi_base_url, own_parties, fake_partner, settings, method
):
    if method == "post":
        _, token = make_partner(name="invited", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    else:
        _, token = make_partner(name="registered")
    settings.OCPI_ALLOW_PRIVATE_URLS = False
    before = stored_state()

    response = getattr(ocpi(token), method)(
        "/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate())
    )

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 3001)
    assert "non-public" in body["status_message"]
    assert stored_state() == before
    assert fake_partner.received == []  # never called


@pytest.mark.parametrize("url", ["ftp://example.com/ocpi/locations", "https://user:pw@example.com/ocpi/locations"])
def test_partner_endpoint_with_unusable_url_is_3001(ocpi, ocpi_base_url, invited_partner, fake_partner, url):
    """Every endpoint of the partner's version details passes the URL guard before anything is stored."""
    _, token_a = invited_partner
    serve_details(
        fake_partner,
        [
            {"identifier": "credentials", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/c")},
            {"identifier": "locations", "role": "SENDER", "url": url},
        ],
    )
    before = stored_state()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_generate()))

    body = response.json()
    assert body["status_code"] == 3001
    assert "locations" in body["status_message"]
    assert stored_state() == before


# --- traffic log -------------------------------------------------------------------------------------------------


def test_traffic_log_redacts_tokens_in_both_directions(ocpi, ocpi_base_url, invited_partner, fake_partner):
    partner, token_a = invited_partner
    token_b = token_generate()

    response = ocpi(token_a).post("/ocpi/2.2.1/credentials", json=credentials_body(fake_partner, token_b))
    token_c = response.json()["data"]["token"]

    inbound = TrafficLog.objects.get(direction=TrafficLog.Direction.IN, url="/ocpi/2.2.1/credentials")
    assert (inbound.partner_id, inbound.module, inbound.http_status, inbound.ocpi_status_code) == (
        partner.pk,
        "credentials",
        200,
        1000,
    )
    assert json.loads(inbound.request_body)["token"] == "***"
    assert json.loads(inbound.response_body)["data"]["token"] == "***"
    outbound = TrafficLog.objects.filter(direction=TrafficLog.Direction.OUT).order_by("pk")
    assert [row.url for row in outbound] == [fake_partner.versions_url, fake_partner.server.url_for("/ocpi/2.2.1")]
    secrets = {token_a, token_b, token_c}
    secrets |= {base64.b64encode(s.encode()).decode() for s in secrets}
    for row in TrafficLog.objects.values():
        text = " ".join(str(value) for value in row.values())
        assert "Authorization" not in text
        assert not [s for s in secrets if s in text]
