"""The OCPI transport rules (REFERENCE §2-3, §17) proven through real HTTP against the live server: every failure
under /ocpi/ is an envelope with the right HTTP status, tokens in both header forms, request/correlation ids,
routing headers only on functional modules, and nothing stored when a credentials request is refused."""

import base64
import uuid
from typing import Any

import httpx
import pytest

from conftest import auth_header, make_partner
from ocpi_core.constants import MESSAGE_ID_MAX
from ocpi_core.envelope import parse_datetime
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party, TrafficLog
from tests.probe.urls import PROBE_ERROR_MESSAGE

PROBE = "/ocpi/2.2.1/probe"
CREDENTIALS = "/ocpi/2.2.1/credentials"
probe_urls = pytest.mark.urls("tests.probe.urls")


def assert_envelope(response: httpx.Response, http_status: int, status_code: int | None = None) -> dict[str, Any]:
    """The response is an OCPI envelope (never HTML, never a traceback) with the given HTTP and OCPI status."""
    assert response.status_code == http_status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.text
    assert "<html" not in text.lower()
    assert "Traceback" not in text
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body["status_code"], int)
    assert not isinstance(body["status_code"], bool)
    parse_datetime(body["timestamp"])  # a valid OCPI DateTime
    if status_code is not None:
        assert body["status_code"] == status_code
    return body


def stored_state() -> tuple[list[Any], ...]:
    """What a refused credentials request must leave untouched (the traffic log and contact time aside)."""
    return (
        list(Partner.objects.order_by("pk").values_list("status", "versions_url", "version", "token_out_encrypted")),
        list(PartnerToken.objects.order_by("pk").values_list("partner_id", "token_hash", "kind")),
        list(PartnerEndpoint.objects.order_by("pk").values_list("partner_id", "identifier", "role", "url")),
        list(Party.objects.order_by("pk").values_list("partner_id", "country_code", "party_id", "role")),
    )


def valid_credentials_body() -> dict[str, Any]:
    return {
        "token": "token-b-0123456789",
        "url": "http://127.0.0.1:9/ocpi/versions",
        "roles": [{"role": "CPO", "business_details": {"name": "X"}, "party_id": "XXX", "country_code": "NL"}],
    }


# --- authentication -------------------------------------------------------------------------------------------------


@probe_urls
@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1", CREDENTIALS, PROBE])
def test_missing_authorization_is_401_envelope(ocpi, registered_partner, path):
    response = ocpi().get(path)

    assert_envelope(response, 401, 2000)
    assert response.headers["WWW-Authenticate"] == "Token"


@probe_urls
@pytest.mark.parametrize(
    "header",
    [
        "Bearer x",
        "Token",
        "Token !!!notbase64",
        "Basic dXNlcjpwYXNz",
        "Token " + base64.b64encode(b"an-unknown-token").decode(),
        "Token an-unknown-token",
    ],
)
@pytest.mark.parametrize("path", ["/ocpi/versions", CREDENTIALS, PROBE])
def test_garbled_or_unknown_authorization_is_401_envelope(ocpi, registered_partner, header, path):
    response = ocpi().get(path, headers={"Authorization": header})

    assert_envelope(response, 401, 2000)


@probe_urls
def test_token_a_is_refused_on_functional_module_but_accepted_on_configuration(ocpi, invited_partner):
    _, token_a = invited_partner
    client = ocpi(token_a)

    assert_envelope(client.get(PROBE), 401, 2000)
    assert_envelope(client.get("/ocpi/versions"), 200, 1000)
    assert_envelope(client.get("/ocpi/2.2.1"), 200, 1000)


@probe_urls
@pytest.mark.parametrize("status", [Partner.Status.REGISTERING, Partner.Status.REGISTERED])
def test_pending_token_is_refused_on_functional_module(ocpi, own_parties, status):
    _, pending = make_partner(name="pending", status=status, kind=PartnerToken.Kind.PENDING)

    assert_envelope(ocpi(pending).get(PROBE), 401, 2000)
    assert_envelope(ocpi(pending).get("/ocpi/versions"), 200, 1000)  # our versions stay readable during a handshake


@probe_urls
def test_suspended_partner_is_refused_on_functional_module(ocpi, own_parties):
    _, token = make_partner(name="suspended", status=Partner.Status.SUSPENDED)

    assert_envelope(ocpi(token).get(PROBE), 401, 2000)


@probe_urls
def test_credentials_token_of_registered_partner_reaches_functional_module(ocpi, registered_partner):
    _, token = registered_partner

    body = assert_envelope(ocpi(token).get(PROBE), 200, 1000)

    assert body["data"] == []


# --- token forms ------------------------------------------------------------------------------------------------------


def test_base64_token_is_accepted_and_remembered(ocpi, registered_partner):
    partner, token = registered_partner
    assert partner.last_contact_at is None

    assert_envelope(ocpi(token).get("/ocpi/versions"), 200, 1000)

    partner.refresh_from_db()
    assert partner.token_encoding_seen == Partner.TokenEncoding.BASE64
    assert partner.last_contact_at is not None


def test_raw_token_is_accepted_and_remembered(ocpi, registered_partner):
    partner, token = registered_partner

    assert_envelope(ocpi(token, raw=True).get("/ocpi/versions"), 200, 1000)

    partner.refresh_from_db()
    assert partner.token_encoding_seen == Partner.TokenEncoding.RAW
    assert partner.last_contact_at is not None


def test_base64_with_trailing_newline_is_accepted(ocpi, registered_partner):
    """The spec's own sample headers encode `token\\n` (REFERENCE §2.1)."""
    partner, token = registered_partner
    header = "Token " + base64.b64encode(f"{token}\n".encode()).decode()

    response = ocpi().get(CREDENTIALS, headers={"Authorization": header})

    body = assert_envelope(response, 200, 1000)
    assert body["data"]["token"] == token
    partner.refresh_from_db()
    assert partner.token_encoding_seen == Partner.TokenEncoding.BASE64


def test_switching_header_form_is_remembered(ocpi, registered_partner):
    partner, token = registered_partner

    ocpi(token, raw=True).get("/ocpi/versions")
    ocpi(token).get("/ocpi/versions")

    partner.refresh_from_db()
    assert partner.token_encoding_seen == Partner.TokenEncoding.BASE64


# --- error paths ------------------------------------------------------------------------------------------------------


def test_wrong_method_is_405_envelope(ocpi, registered_partner):
    _, token = registered_partner
    before = stored_state()

    assert_envelope(ocpi(token).patch(CREDENTIALS, json=valid_credentials_body()), 405, 2000)
    assert_envelope(ocpi(token).post("/ocpi/versions", json={}), 405, 2000)
    assert_envelope(ocpi(token).delete("/ocpi/2.2.1"), 405, 2000)
    assert_envelope(ocpi(token).options(CREDENTIALS), 405, 2000)
    assert_envelope(ocpi(token).request("TRACE", "/ocpi/versions"), 405, 2000)
    assert stored_state() == before


def test_invalid_json_is_400_2001_and_nothing_stored(ocpi, invited_partner):
    _, token_a = invited_partner
    before = stored_state()

    response = ocpi(token_a).post(
        CREDENTIALS, content=b'{"token": "abc", "url": ', headers={"Content-Type": "application/json"}
    )

    body = assert_envelope(response, 400, 2001)
    assert "JSON" in body["status_message"]
    assert stored_state() == before


def test_wrong_content_type_is_415_envelope_and_nothing_stored(ocpi, invited_partner):
    _, token_a = invited_partner
    before = stored_state()

    response = ocpi(token_a).post(CREDENTIALS, content=b"token=abc", headers={"Content-Type": "text/plain"})

    assert_envelope(response, 415)
    assert stored_state() == before


def test_oversized_body_is_413_envelope_and_nothing_stored(ocpi, invited_partner, settings):
    _, token_a = invited_partner
    settings.OCPI_MAX_BODY_SIZE = 512
    body = valid_credentials_body()
    body["roles"][0]["business_details"]["name"] = "x" * 100
    body["padding"] = "p" * 1000
    before = stored_state()

    response = ocpi(token_a).post(CREDENTIALS, json=body)

    message = assert_envelope(response, 413, 2000)["status_message"]
    assert "512" in message
    assert stored_state() == before
    row = TrafficLog.objects.get(method="POST", url=CREDENTIALS)
    assert (row.http_status, row.ocpi_status_code) == (413, 2000)


def test_body_at_the_limit_is_accepted(ocpi, invited_partner, settings):
    _, token_a = invited_partner
    settings.OCPI_MAX_BODY_SIZE = 4096

    # The body is read and validated (2001 for the missing roles), not refused for its size.
    response = ocpi(token_a).post(CREDENTIALS, json={"token": "t" * 10, "url": "http://127.0.0.1:9/ocpi/versions"})

    assert_envelope(response, 200, 2001)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/ocpi/nope", "/ocpi/2.2.1/nope", "/ocpi/2.2.1/locations/NL/ABC/1", "/ocpi/"])
def test_unknown_url_under_ocpi_is_404_envelope(ocpi, registered_partner, method, path):
    _, token = registered_partner

    for client in (ocpi(token), ocpi()):
        response = client.request(method, path, json={"a": 1} if method in ("POST", "PUT", "PATCH") else None)
        assert_envelope(response, 404, 2000)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_ocpi_without_slash_is_404_envelope(ocpi, method):
    response = ocpi().request(method, "/ocpi")

    assert_envelope(response, 404, 2000)
    assert "Location" not in response.headers  # not a redirect


@probe_urls
@pytest.mark.parametrize("path", ["/ocpi/2.2.1/probe-error", "/ocpi/2.2.1/probe-plain-error"])
def test_unexpected_exception_is_500_3000_without_details(ocpi, registered_partner, path):
    _, token = registered_partner

    response = ocpi(token).get(path)

    body = assert_envelope(response, 500, 3000)
    assert PROBE_ERROR_MESSAGE not in response.text
    assert "RuntimeError" not in response.text
    assert "data" not in body
    row = TrafficLog.objects.get(url=path)
    assert (row.http_status, row.ocpi_status_code) == (500, 3000)


def test_versions_and_details_answer_envelopes(ocpi, ocpi_base_url, registered_partner):
    _, token = registered_partner

    versions = assert_envelope(ocpi(token).get("/ocpi/versions"), 200, 1000)["data"]
    details = assert_envelope(ocpi(token).get("/ocpi/2.2.1"), 200, 1000)["data"]

    assert versions == [{"version": "2.2.1", "url": f"{ocpi_base_url}/ocpi/2.2.1"}]
    assert details["version"] == "2.2.1"
    assert {"identifier": "credentials", "role": "SENDER", "url": f"{ocpi_base_url}{CREDENTIALS}"} in details[
        "endpoints"
    ]
    # both URL forms are served (REFERENCE §2.9)
    assert_envelope(ocpi(token).get("/ocpi/versions/"), 200, 1000)
    assert_envelope(ocpi(token).get("/ocpi/2.2.1/"), 200, 1000)


# --- request and correlation ids ----------------------------------------------------------------------------------


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@probe_urls
@pytest.mark.parametrize(
    ("path", "auth", "status"),
    [
        ("/ocpi/versions", True, 200),
        ("/ocpi/versions", False, 401),
        ("/ocpi/unknown", True, 404),
        ("/ocpi/2.2.1/probe-error", True, 500),
        (PROBE, True, 200),
        ("/api/", False, 401),
        ("/healthz", False, 200),
    ],
)
def test_request_and_correlation_ids_are_echoed(ocpi, registered_partner, path, auth, status):
    _, token = registered_partner
    client = ocpi(token) if auth else ocpi()
    ids = {"X-Request-ID": "req-" + uuid.uuid4().hex, "X-Correlation-ID": "corr-" + uuid.uuid4().hex}

    response = client.get(path, headers=ids)

    assert response.status_code == status
    assert response.headers["X-Request-ID"] == ids["X-Request-ID"]
    assert response.headers["X-Correlation-ID"] == ids["X-Correlation-ID"]


@probe_urls
@pytest.mark.parametrize(
    ("path", "auth", "status"),
    [
        ("/ocpi/versions", True, 200),
        ("/ocpi/versions", False, 401),
        ("/ocpi/unknown", False, 404),
        ("/ocpi/2.2.1/probe-error", True, 500),
        ("/api/", False, 401),
        ("/healthz", False, 200),
    ],
)
def test_missing_ids_are_generated(ocpi, registered_partner, path, auth, status):
    _, token = registered_partner
    client = ocpi(token) if auth else ocpi()

    first, second = client.get(path), client.get(path)

    assert first.status_code == status
    for response in (first, second):
        assert _is_uuid(response.headers["X-Request-ID"])
        assert _is_uuid(response.headers["X-Correlation-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_ids_reach_the_traffic_log(ocpi, registered_partner):
    partner, token = registered_partner

    ocpi(token).get("/ocpi/versions", headers={"X-Request-ID": "r-1", "X-Correlation-ID": "c-1"})

    row = TrafficLog.objects.get(direction=TrafficLog.Direction.IN, url="/ocpi/versions")
    assert (row.request_id, row.correlation_id, row.partner_id, row.module) == ("r-1", "c-1", partner.pk, "versions")


def test_unusable_incoming_id_is_replaced(ocpi):
    too_long = "x" * (MESSAGE_ID_MAX + 1)

    response = ocpi().get("/ocpi/versions", headers={"X-Request-ID": too_long, "X-Correlation-ID": "ok-id"})

    assert _is_uuid(response.headers["X-Request-ID"])
    assert response.headers["X-Correlation-ID"] == "ok-id"


def test_long_ids_are_echoed_and_logged_whole(ocpi, registered_partner):
    """The spec sets no length: a response "SHALL contain the same ID" (transport_and_format, unique message IDs)."""
    _, token = registered_partner
    ids = {"X-Request-ID": "r" * MESSAGE_ID_MAX, "X-Correlation-ID": "c-" + "9" * 200}

    response = ocpi(token).get("/ocpi/versions", headers=ids)

    assert (response.headers["X-Request-ID"], response.headers["X-Correlation-ID"]) == tuple(ids.values())
    row = TrafficLog.objects.get(direction=TrafficLog.Direction.IN, url="/ocpi/versions")
    assert (row.request_id, row.correlation_id) == tuple(ids.values())


# --- routing headers -----------------------------------------------------------------------------------------------

ROUTING = {
    "OCPI-from-country-code": "DE",
    "OCPI-from-party-id": "PRT",
    "OCPI-to-country-code": "NL",
    "OCPI-to-party-id": "OWN",
}


@probe_urls
def test_routing_headers_come_back_swapped_on_functional_module(ocpi, registered_partner):
    _, token = registered_partner

    response = ocpi(token).get(PROBE, headers=ROUTING)

    assert_envelope(response, 200, 1000)
    assert response.headers["OCPI-to-country-code"] == "DE"
    assert response.headers["OCPI-to-party-id"] == "PRT"
    assert response.headers["OCPI-from-country-code"] == "NL"
    assert response.headers["OCPI-from-party-id"] == "OWN"


@probe_urls
@pytest.mark.parametrize(("to", "status"), [(("FR", "QQQ"), 404), (("nl", "owe"), 200), (("NL", "OWN"), 200)])
def test_a_request_addressed_to_a_party_we_do_not_host_is_404(ocpi, registered_partner, to, status):
    """Routed to the wrong platform: answering would speak for a party we do not host (the answer's `OCPI-from-*`
    names the `to` party). Any of our own parties, in any case, is addressed here."""
    _, token = registered_partner
    headers = {**ROUTING, "OCPI-to-country-code": to[0], "OCPI-to-party-id": to[1]}

    response = ocpi(token).post(PROBE, json={"hello": "world"}, headers=headers)

    body = assert_envelope(response, status, 1000 if status == 200 else 2000)
    if status == 404:
        assert "FR*QQQ is not a party on this platform" in body["status_message"]
        assert "data" not in body


@probe_urls
def test_open_routing_request_gets_only_the_to_pair_back(ocpi, registered_partner):
    """Open routing omits `to` (REFERENCE §2.10). The probe's URL serves neither the cpo/ nor the emsp/ interface, so
    no own party can be named as the one answering: the answer addresses the requesting party only (for those
    interfaces, see test_routing_answers)."""
    _, token = registered_partner
    headers = {"OCPI-from-country-code": "DE", "OCPI-from-party-id": "PRT"}

    response = ocpi(token).get(PROBE, headers=headers)

    assert_envelope(response, 200, 1000)
    assert (response.headers["OCPI-to-country-code"], response.headers["OCPI-to-party-id"]) == ("DE", "PRT")
    assert "OCPI-from-country-code" not in response.headers


@probe_urls
@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1", CREDENTIALS])
def test_no_routing_headers_on_configuration_modules(ocpi, registered_partner, path):
    _, token = registered_partner

    response = ocpi(token).get(path, headers=ROUTING)

    assert_envelope(response, 200, 1000)
    assert not [name for name in response.headers if name.lower().startswith("ocpi-")]


@probe_urls
@pytest.mark.parametrize(
    "headers",
    [
        {"OCPI-from-country-code": "DE"},
        {"OCPI-from-party-id": "PRT"},
        {"OCPI-to-country-code": "NL", "OCPI-from-country-code": "DE", "OCPI-from-party-id": "PRT"},
        {**ROUTING, "OCPI-to-party-id": ""},
        {**ROUTING, "OCPI-from-country-code": "DEU"},
        {**ROUTING, "OCPI-to-party-id": "OWNER"},
        {**ROUTING, "OCPI-from-country-code": "D1"},
        {**ROUTING, "OCPI-to-party-id": "O-N"},
    ],
)
def test_incomplete_or_malformed_routing_pair_is_2001(ocpi, registered_partner, headers):
    _, token = registered_partner

    response = ocpi(token).get(PROBE, headers=headers)

    body = assert_envelope(response, 200, 2001)
    assert "OCPI-" in body["status_message"]


@probe_urls
def test_functional_post_reads_json_body(ocpi, registered_partner):
    _, token = registered_partner

    response = ocpi(token).post(PROBE, json={"hello": "world"})

    assert assert_envelope(response, 200, 1000)["data"] == {"hello": "world"}


@probe_urls
def test_functional_post_without_content_type_is_read_as_json(client, registered_partner):
    """Older peers omit Content-Type; the body is still read as JSON (OcpiContentNegotiation).

    Django's test client rather than the live server: wsgiref (under live_server) fills a missing Content-Type in as
    text/plain, gunicorn (what we deploy) leaves it out, as the peer sent it.
    """
    _, token = registered_partner

    response = client.generic("POST", PROBE, data=b'{"a": 1}', content_type="", HTTP_AUTHORIZATION=auth_header(token))

    assert response.status_code == 200
    assert response.json()["data"] == {"a": 1}


def test_generated_tokens_never_start_with_a_dash_and_stay_distinct() -> None:
    """Tokens are pasted into command lines (`ocpi_register --token ...`): a leading "-" would read as an option."""
    from ocpi_core.crypto import token_generate

    tokens = [token_generate() for _ in range(3000)]  # a leading "-" is 1 in 64 per draw without the guard
    assert not [token for token in tokens if token.startswith("-")]
    assert len(set(tokens)) == len(tokens)
    assert {len(token) for token in tokens} == {43}
