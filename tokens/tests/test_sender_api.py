"""eMSP Sender /ocpi/2.2.1/emsp/tokens through real HTTP (REFERENCE §10.3): the paginated list of our own tokens and
real-time authorization (POST {tokens}/{uid}/authorize) with every outcome and error."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import auth_header, make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Party
from tokens.models import Authorization, Token
from tokens.services import token_change_own, token_set_bookkeeping
from tokens.tests.factories import own_token, partner_token, token_data

URL = "/ocpi/2.2.1/emsp/tokens"


@pytest.fixture
def cpo(own_parties: Any) -> tuple[Any, str]:
    """A registered CPO partner (DE*CPX) asking us, as eMSP, about our tokens."""
    return make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))


def authorize(client: Any, uid: str, body: Any = None, **params: str) -> Any:
    return client.post(f"{URL}/{uid}/authorize", json=body, params=params)


# --- list ------------------------------------------------------------------------------------------------------------


def test_list_pages_through_our_own_tokens_only(ocpi, cpo):
    _, token = cpo
    for n in range(5):
        own_token(f"UID{n}", last_updated=f"2024-01-0{n + 1}T00:00:00Z")
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    partner_token(emsp, "THEIRS")  # a partner's token is never listed

    first = ocpi(token).get(URL, params={"limit": 2})
    rest = ocpi(token).get(URL, params={"offset": 2, "limit": 10})

    assert first.status_code == 200
    assert [t["uid"] for t in first.json()["data"]] == ["UID0", "UID1"]
    assert first.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in first.headers["Link"]
    assert [t["uid"] for t in rest.json()["data"]] == ["UID2", "UID3", "UID4"]
    assert "Link" not in rest.headers
    assert first.json()["data"][0] == token_data("UID0", last_updated="2024-01-01T00:00:00Z")


def test_list_date_filters_from_inclusive_to_exclusive(ocpi, cpo):
    _, token = cpo
    for n in range(1, 5):
        own_token(f"UID{n}", last_updated=f"2024-01-0{n}T00:00:00Z")

    response = ocpi(token).get(URL, params={"date_from": "2024-01-02T00:00:00Z", "date_to": "2024-01-04T00:00:00Z"})

    assert [t["uid"] for t in response.json()["data"]] == ["UID2", "UID3"]
    assert response.headers["X-Total-Count"] == "2"


def test_list_routed_to_another_party_is_404(ocpi, cpo):
    _, token = cpo
    own_token("UID1")

    response = ocpi(token).get(URL, headers={"OCPI-to-country-code": "NL", "OCPI-to-party-id": "OWN"})  # our CPO

    assert response.status_code == 404


# --- authorize -------------------------------------------------------------------------------------------------------


def test_authorize_allowed_with_location_and_reference(ocpi, cpo):
    partner, token = cpo
    own_token("CARD1")
    location = {"location_id": "LOC1", "evse_uids": ["EVSE1", "EVSE2"]}

    response = authorize(ocpi(token), "CARD1", location)

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000)
    info = body["data"]
    assert info["allowed"] == "ALLOWED"
    assert info["token"] == token_data("CARD1")
    assert info["location"] == location
    reference = info["authorization_reference"]
    assert 0 < len(reference) <= 36
    log = Authorization.objects.get()
    assert (log.direction, log.partner_id, log.allowed, log.authorization_reference) == (
        "IN",
        partner.pk,
        "ALLOWED",
        reference,
    )
    assert (log.location_id, log.evse_uids, log.token_uid, log.token_id) == (
        "LOC1",
        ["EVSE1", "EVSE2"],
        "CARD1",
        Token.objects.get().pk,
    )


def test_each_authorization_gets_a_new_reference(ocpi, cpo):
    _, token = cpo
    own_token("CARD1")

    refs = {authorize(ocpi(token), "CARD1").json()["data"]["authorization_reference"] for _ in range(3)}

    assert len(refs) == 3


def test_authorize_without_body_and_with_type(ocpi, cpo):
    _, token = cpo
    own_token("SAME")
    own_token("SAME", type="APP_USER", whitelist="NEVER", valid=False)

    rfid = authorize(ocpi(token), "SAME")
    app = authorize(ocpi(token), "SAME", type="APP_USER")

    assert rfid.json()["data"]["allowed"] == "ALLOWED"
    assert "location" not in rfid.json()["data"]
    assert app.json()["data"]["allowed"] == "BLOCKED"
    assert app.json()["data"]["token"]["type"] == "APP_USER"


@pytest.mark.parametrize(
    ("setup", "allowed"),
    [
        (lambda t: token_change_own(token=t, changes={"valid": False}), "BLOCKED"),
        (
            lambda t: token_set_bookkeeping(token=t, changes={"expires_at": timezone.now() - timedelta(days=1)}),
            "EXPIRED",
        ),
        (lambda t: token_set_bookkeeping(token=t, changes={"no_credit": True}), "NO_CREDIT"),
        (lambda t: token_set_bookkeeping(token=t, changes={"allowed_location_ids": ["HOME"]}), "NOT_ALLOWED"),
    ],
)
def test_refusals_are_answers_with_http_200(ocpi, cpo, setup, allowed):
    _, token = cpo
    setup(own_token("CARD1"))

    response = authorize(ocpi(token), "CARD1", {"location_id": "LOC1"})

    body = response.json()
    assert (response.status_code, body["status_code"]) == (200, 1000)
    assert body["data"]["allowed"] == allowed
    assert body["data"]["token"]["valid"] is (allowed != "BLOCKED")
    assert "location" not in body["data"]
    assert body["data"]["info"]["language"] == "en"
    assert Authorization.objects.get().allowed == allowed


def test_location_restricted_token_allowed_at_its_location(ocpi, cpo):
    _, token = cpo
    token_set_bookkeeping(token=own_token("CARD1"), changes={"allowed_location_ids": ["HOME"]})

    response = authorize(ocpi(token), "CARD1", {"location_id": "home", "evse_uids": ["E1"]})

    assert response.json()["data"]["allowed"] == "ALLOWED"
    assert response.json()["data"]["location"] == {"location_id": "home", "evse_uids": ["E1"]}


def test_location_needed_and_missing_is_2002(ocpi, cpo):
    _, token = cpo
    token_set_bookkeeping(token=own_token("CARD1"), changes={"allowed_location_ids": ["HOME"]})

    response = authorize(ocpi(token), "CARD1")

    body = response.json()
    assert body["status_code"] == 2002
    assert "data" not in body
    assert Authorization.objects.count() == 0


def test_unknown_token_is_404_2004_without_data(ocpi, cpo):
    _, token = cpo
    own_token("CARD1")
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    partner_token(emsp, "THEIRS")

    for uid, params in (("NOPE", {}), ("CARD1", {"type": "APP_USER"}), ("THEIRS", {})):
        response = authorize(ocpi(token), uid, **params)
        body = response.json()
        assert (response.status_code, body["status_code"]) == (404, 2004)
        assert "data" not in body
    assert Authorization.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "params", "words"),
    [
        ({"evse_uids": ["E1"]}, {}, "location_id"),
        ({"location_id": "L" * 37}, {}, "location_id"),
        ({"location_id": "L1", "evse_uids": "E1"}, {}, "evse_uids"),
        ([1, 2], {}, "body"),
        (None, {"type": "BADGE"}, "type"),
    ],
)
def test_invalid_authorize_request_is_2001(ocpi, cpo, body, params, words):
    _, token = cpo
    own_token("CARD1")

    response = authorize(ocpi(token), "CARD1", body, **params)

    payload = response.json()
    assert (response.status_code, payload["status_code"]) == (200, 2001)
    assert words in payload["status_message"]
    assert Authorization.objects.count() == 0


def test_authorize_answers_with_few_queries(cpo):
    """The driver waits: the authorize view reads the token (party check in the same query) and writes one log row."""
    own_token("CARD1")
    Party.objects.filter(role=Role.EMSP, partner__isnull=True).update(name="Own eMSP")
    _, token = cpo
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=auth_header(token))
    client.post(f"{URL}/CARD1/authorize", {"location_id": "L1"}, format="json")  # warm-up (last contact)

    with CaptureQueriesContext(connection) as queries:
        response = client.post(f"{URL}/CARD1/authorize", {"location_id": "L1"}, format="json")

    assert response.status_code == 200
    ours = [q["sql"] for q in queries.captured_queries if "tokens_" in q["sql"]]
    assert len(ours) == 2, ours  # the token (joined with the party check) and the log insert
    assert len(queries.captured_queries) <= 8, [q["sql"] for q in queries.captured_queries]
