"""authorize_token (contract C5), as CPO: own tokens decided locally, partners' tokens by their whitelist from the
local copy or by a real-time call to the eMSP (a local HTTP server), unknown tokens asked of the eMSPs; every call in
the Authorization log (REFERENCE §10.1, §15)."""

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Partner, PartnerEndpoint
from tokens.models import Authorization, Token
from tokens.services import authorize_token, token_set_bookkeeping
from tokens.tests.factories import own_token, partner_token, token_data

AUTHORIZE = "/ocpi/2.2.1/tokens/0AFF0001/authorize"


@pytest.fixture
def emsp(httpserver: HTTPServer, own_parties: Any) -> Partner:
    """A registered eMSP partner (DE*PRT) whose tokens Sender is a local HTTP server."""
    partner, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="tokens", role="SENDER", url=httpserver.url_for("/ocpi/2.2.1/tokens")
    )
    return partner


def answer(httpserver: HTTPServer, data: Any = None, *, status: int = 200, code: int = 1000) -> list[Request]:
    """Make the eMSP answer the authorize call with an envelope; returns the list its requests are recorded in."""
    seen: list[Request] = []

    def handle(request: Request) -> Response:
        seen.append(request)
        return Response(envelope_body(data, code), status=status, mimetype="application/json")

    httpserver.expect_request(AUTHORIZE, method="POST").respond_with_handler(handle)
    return seen


def info(allowed: str, *, uid: str = "0AFF0001", whitelist: str = "NEVER", **fields: Any) -> dict[str, Any]:
    """An AuthorizationInfo carrying a newer copy of the token (the cache takes it)."""
    token = token_data(uid, country_code="DE", party_id="PRT", whitelist=whitelist, last_updated="2024-05-01T00:00:00Z")
    return {"allowed": allowed, "token": token, **fields}


def test_always_is_decided_from_the_local_copy_without_calling(httpserver, emsp):
    partner_token(emsp, whitelist="ALWAYS")
    partner_token(emsp, "0AFF0002", whitelist="ALWAYS", valid=False)

    allowed = authorize_token(uid="0aff0001", location_id="LOC1", evse_uids=["E1"])
    blocked = authorize_token(uid="0AFF0002")

    assert (allowed.allowed, allowed.source, allowed.authorization_reference) == ("ALLOWED", "cache", None)
    assert allowed.location == {"location_id": "LOC1", "evse_uids": ["E1"]}
    assert allowed.token == token_data("0AFF0001", country_code="DE", party_id="PRT", whitelist="ALWAYS")
    assert (blocked.allowed, blocked.source) == ("BLOCKED", "cache")
    assert httpserver.log == []
    assert list(Authorization.objects.values_list("direction", "source", "allowed").order_by("pk")) == [
        ("OUT", "cache", "ALLOWED"),
        ("OUT", "cache", "BLOCKED"),
    ]


def test_allowed_valid_is_local_and_invalid_asks_the_emsp(httpserver, emsp):
    partner_token(emsp, whitelist="ALLOWED")
    assert authorize_token(uid="0AFF0001").source == "cache"
    assert httpserver.log == []

    Token.objects.filter(uid="0AFF0001").update(valid=False)  # it may have become valid again: ask (§10.1)
    seen = answer(httpserver, info("ALLOWED", authorization_reference="REF-1"))
    outcome = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (outcome.allowed, outcome.source, outcome.authorization_reference) == ("ALLOWED", "realtime", "REF-1")
    assert len(seen) == 1
    assert Token.objects.get(uid="0AFF0001").whitelist == "NEVER"  # the newer copy the eMSP returned is kept


def test_allowed_offline_asks_first_and_uses_the_local_copy_when_unreachable(httpserver, emsp):
    partner_token(emsp, whitelist="ALLOWED_OFFLINE")
    lost = {"language": "en", "text": "Lost"}
    answer(httpserver, info("BLOCKED", whitelist="ALLOWED_OFFLINE", authorization_reference="REF-2", info=lost))

    online = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (online.allowed, online.source, online.info) == ("BLOCKED", "realtime", lost)

    httpserver.clear()
    answer(httpserver, status=503, code=3000)
    offline = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (offline.allowed, offline.source) == ("ALLOWED", "cache")


def test_never_always_asks_with_location_type_and_routing(httpserver, emsp):
    partner_token(emsp, type="APP_USER", whitelist="NEVER", valid=False)  # valid=false does not skip the call
    allowed_here = {"location_id": "LOC1", "evse_uids": ["E2"]}
    seen = answer(httpserver, info("ALLOWED", location=allowed_here, authorization_reference="REF-3"))

    outcome = authorize_token(uid="0AFF0001", token_type="APP_USER", location_id="LOC1", evse_uids=["E1", "E2"])

    assert (outcome.allowed, outcome.source, outcome.location) == ("ALLOWED", "realtime", allowed_here)
    request = seen[0]
    assert request.args["type"] == "APP_USER"
    assert json.loads(request.get_data()) == {"location_id": "LOC1", "evse_uids": ["E1", "E2"]}
    assert (request.headers["OCPI-from-country-code"], request.headers["OCPI-from-party-id"]) == ("NL", "OWN")
    assert (request.headers["OCPI-to-country-code"], request.headers["OCPI-to-party-id"]) == ("DE", "PRT")
    log = Authorization.objects.get()
    assert (log.partner_id, log.authorization_reference, log.allowed_evse_uids) == (emsp.pk, "REF-3", ["E2"])


def test_never_refuses_when_the_emsp_is_unreachable(emsp):
    PartnerEndpoint.objects.filter(partner=emsp).update(url="http://127.0.0.1:9/ocpi/2.2.1/tokens")  # closed port
    partner_token(emsp, whitelist="NEVER")

    outcome = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (outcome.allowed, outcome.source) == ("NOT_ALLOWED", "realtime")
    assert "reached" in (outcome.info or {})["text"]


def test_an_invalid_answer_counts_as_unreachable(httpserver, emsp):
    partner_token(emsp, whitelist="ALLOWED_OFFLINE", valid=False)
    answer(httpserver, {"allowed": "PERHAPS"})

    outcome = authorize_token(uid="0AFF0001")

    assert (outcome.allowed, outcome.source) == ("BLOCKED", "cache")


def test_a_token_we_do_not_hold_is_asked_of_the_emsp_and_cached(httpserver, emsp):
    answer(httpserver, info("ALLOWED", authorization_reference="REF-4"))

    outcome = authorize_token(uid="0AFF0001", country_code="DE", party_id="PRT", location_id="LOC1")

    assert (outcome.allowed, outcome.source, outcome.authorization_reference) == ("ALLOWED", "realtime", "REF-4")
    assert Token.objects.get().partner_id == emsp.pk


def test_a_token_nobody_knows_is_not_allowed(httpserver, emsp):
    answer(httpserver, status=404, code=2004)

    outcome = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (outcome.allowed, outcome.token, outcome.source) == ("NOT_ALLOWED", None, "realtime")
    assert Token.objects.count() == 0
    assert Authorization.objects.get().allowed == "NOT_ALLOWED"


def test_own_tokens_are_decided_locally_with_a_reference(httpserver, emsp):
    own_token("CAFE01")
    token_set_bookkeeping(token=own_token("CAFE02"), changes={"allowed_location_ids": ["HOME"]})

    allowed = authorize_token(uid="CAFE01", location_id="LOC1")
    needs_location = authorize_token(uid="CAFE02")
    elsewhere = authorize_token(uid="CAFE02", location_id="LOC1")

    assert (allowed.allowed, allowed.source) == ("ALLOWED", "own")
    assert allowed.authorization_reference
    assert Authorization.objects.filter(authorization_reference=allowed.authorization_reference).exists()
    assert needs_location.allowed == "NOT_ALLOWED"
    assert elsewhere.allowed == "NOT_ALLOWED"
    assert httpserver.log == []


def test_a_token_of_unknown_owner_is_asked_of_the_emsp_party_the_partner_hosts(httpserver, emsp):
    """Without the token's owner, the request is still addressed to the receiving party when the partner has a
    single eMSP party (REFERENCE §2.10: to = receiving party; open routing, `to` left out, is for hubs)."""
    seen = answer(httpserver, info("ALLOWED", authorization_reference="REF-5"))

    outcome = authorize_token(uid="0AFF0001", location_id="LOC1")

    assert (outcome.allowed, outcome.source) == ("ALLOWED", "realtime")
    request = seen[0]
    assert (request.headers["OCPI-from-country-code"], request.headers["OCPI-from-party-id"]) == ("NL", "OWN")
    assert (request.headers["OCPI-to-country-code"], request.headers["OCPI-to-party-id"]) == ("DE", "PRT")
