"""The outbound client against real local HTTP servers (pytest-httpserver): envelope parsing and error mapping,
headers we send, page iteration that survives broken Link headers, the SSRF guard and the outbound traffic log."""

import base64
import json
import socket
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import envelope_body, make_partner
from ocpi_core.client import (
    OcpiClient,
    PartnerBadResponse,
    PartnerCallError,
    PartnerRefused,
    PartnerUnreachable,
    UnsafeUrl,
    url_check,
)
from ocpi_core.logging import correlation_id_var
from ocpi_core.models import Partner, TrafficLog
from ocpi_core.routing import Routing

pytestmark = pytest.mark.django_db

TOKEN = "client-test-token-0123456789"


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers=headers, mimetype="application/json")


def client(**kwargs: Any) -> OcpiClient:
    return OcpiClient(token=kwargs.pop("token", TOKEN), **kwargs)


def received(httpserver: HTTPServer) -> list[Request]:
    return [request for request, _ in httpserver.log]


# --- envelope parsing and error mapping ------------------------------------------------------------------------------


def test_success_envelope_is_parsed(httpserver):
    body = {"data": [{"id": 1}], "status_code": 1000, "status_message": "OK", "timestamp": "2024-01-01T00:00:00Z"}
    httpserver.expect_request("/ocpi/x").respond_with_response(json_response(orjson.dumps(body), 200, {"X-A": "b"}))

    result = client().get(httpserver.url_for("/ocpi/x"))

    assert (result.http_status, result.status_code, result.status_message) == (200, 1000, "OK")
    assert result.data == [{"id": 1}]
    assert result.headers["X-A"] == "b"


def test_envelope_without_data_is_accepted(httpserver):
    httpserver.expect_request("/ocpi/x", method="PUT").respond_with_response(json_response(envelope_body(), 201))

    result = client().put(httpserver.url_for("/ocpi/x"), json={"a": 1})

    assert (result.http_status, result.status_code, result.data) == (201, 1000, None)


@pytest.mark.parametrize(
    ("http_status", "status_code"),
    [(200, 2001), (200, 3000), (200, 4001), (404, 2000), (500, 3000), (401, 2000), (400, 1000)],
)
def test_error_status_is_partner_refused(httpserver, http_status, status_code):
    httpserver.expect_request("/ocpi/x").respond_with_response(
        json_response(envelope_body(status_code=status_code, message="nope"), http_status)
    )

    with pytest.raises(PartnerRefused) as raised:
        client().get(httpserver.url_for("/ocpi/x"))

    assert (raised.value.http_status, raised.value.ocpi_status_code) == (http_status, status_code)
    assert "nope" in raised.value.message


@pytest.mark.parametrize(
    ("body", "content_type", "http_status"),
    [
        (b"<html><body>Bad Gateway</body></html>", "text/html", 502),
        (b"<html>ok</html>", "text/html", 200),
        (b"", "application/json", 200),
        (b"[1, 2]", "application/json", 200),
        (b'{"data": []}', "application/json", 200),
        (b'{"status_code": "1000", "timestamp": "2024-01-01T00:00:00Z"}', "application/json", 200),
        (b'{"status_code": 1000', "application/json", 200),
    ],
)
def test_non_envelope_is_partner_bad_response(httpserver, body, content_type, http_status):
    httpserver.expect_request("/ocpi/x").respond_with_data(body, status=http_status, content_type=content_type)

    with pytest.raises(PartnerBadResponse) as raised:
        client().get(httpserver.url_for("/ocpi/x"))

    assert raised.value.http_status == http_status


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_partner_unreachable_and_logged():
    url = f"http://127.0.0.1:{_closed_port()}/ocpi/versions"

    with pytest.raises(PartnerUnreachable):
        client().get(url)

    row = TrafficLog.objects.get(direction=TrafficLog.Direction.OUT)
    assert (row.url, row.http_status, row.module) == (url, None, "versions")
    assert "cannot reach" in row.error


def test_redirects_are_not_followed(httpserver):
    httpserver.expect_request("/ocpi/x").respond_with_data("", status=302, headers={"Location": "/ocpi/elsewhere"})
    httpserver.expect_request("/ocpi/elsewhere").respond_with_response(json_response(envelope_body([1])))

    with pytest.raises(PartnerBadResponse) as raised:
        client().get(httpserver.url_for("/ocpi/x"))

    assert raised.value.http_status == 302
    assert [r.path for r in received(httpserver)] == ["/ocpi/x"]


# --- what we send -------------------------------------------------------------------------------------------------


@pytest.fixture
def echo(httpserver: HTTPServer) -> Callable[[], Request]:
    """A partner answering every request with an empty success envelope; returns the last request it got."""
    httpserver.expect_request("/ocpi/echo").respond_with_response(json_response(envelope_body()))
    return lambda: received(httpserver)[-1]


def test_authorization_header_is_base64_by_default(httpserver, echo):
    client().get(httpserver.url_for("/ocpi/echo"))

    assert echo().headers["Authorization"] == "Token " + base64.b64encode(TOKEN.encode()).decode()
    assert base64.b64decode(echo().headers["Authorization"][6:]) == TOKEN.encode()  # no trailing newline


def test_authorization_header_is_raw_for_raw_partners(httpserver, echo):
    client(encoding=Partner.TokenEncoding.RAW).get(httpserver.url_for("/ocpi/echo"))

    assert echo().headers["Authorization"] == f"Token {TOKEN}"


def test_for_partner_uses_the_stored_token_and_encoding(httpserver, echo):
    partner, _ = make_partner(name="raw-peer")
    Partner.objects.filter(pk=partner.pk).update(token_encoding=Partner.TokenEncoding.RAW)
    partner.refresh_from_db()

    OcpiClient.for_partner(partner).get(httpserver.url_for("/ocpi/echo"))

    assert echo().headers["Authorization"] == f"Token {partner.token_out()}"


def test_request_and_correlation_ids_are_sent(httpserver, echo):
    url = httpserver.url_for("/ocpi/echo")

    client().get(url)
    first = echo()
    client().get(url)
    second = echo()

    for request in (first, second):
        uuid.UUID(request.headers["X-Request-ID"])
        uuid.UUID(request.headers["X-Correlation-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_correlation_id_of_the_current_exchange_is_kept(httpserver, echo):
    token = correlation_id_var.set("corr-from-inbound-request")
    try:
        client().get(httpserver.url_for("/ocpi/echo"))
    finally:
        correlation_id_var.reset(token)

    assert echo().headers["X-Correlation-ID"] == "corr-from-inbound-request"
    row = TrafficLog.objects.get(direction=TrafficLog.Direction.OUT)
    assert (row.correlation_id, row.request_id) == ("corr-from-inbound-request", echo().headers["X-Request-ID"])


def test_content_type_only_with_a_body(httpserver, echo):
    url = httpserver.url_for("/ocpi/echo")

    client().get(url)
    assert "Content-Type" not in echo().headers
    client().post(url, json={"a": 1})
    assert echo().headers["Content-Type"] == "application/json"
    assert json.loads(echo().data) == {"a": 1}


def test_routing_headers_sent_when_given(httpserver, echo):
    url = httpserver.url_for("/ocpi/echo")
    routing = Routing(from_country_code="NL", from_party_id="OWN", to_country_code="DE", to_party_id="PRT")

    client(routing=routing).get(url)
    with_client_routing = dict(echo().headers)
    client().get(url, routing=Routing(from_country_code="NL", from_party_id="OWE"))
    open_routing = dict(echo().headers)
    client().get(url)
    without = dict(echo().headers)

    assert {k: v for k, v in with_client_routing.items() if k.lower().startswith("ocpi-")} == {
        "Ocpi-From-Country-Code": "NL",
        "Ocpi-From-Party-Id": "OWN",
        "Ocpi-To-Country-Code": "DE",
        "Ocpi-To-Party-Id": "PRT",
    }
    assert {k for k in open_routing if k.lower().startswith("ocpi-")} == {
        "Ocpi-From-Country-Code",
        "Ocpi-From-Party-Id",
    }
    assert not [k for k in without if k.lower().startswith("ocpi-")]


def test_query_parameters_are_merged_into_the_url(httpserver, echo):
    client().get(httpserver.url_for("/ocpi/echo") + "?type=RFID", params={"date_from": "2024-01-01T00:00:00Z"})

    assert echo().args.to_dict() == {"type": "RFID", "date_from": "2024-01-01T00:00:00Z"}


# --- iter_pages ----------------------------------------------------------------------------------------------------


LinkMaker = Callable[[HTTPServer, int, int], str | None]


def serve_list(
    httpserver: HTTPServer,
    items: list[int],
    *,
    page_size: int = 3,
    link: LinkMaker | None = None,
    total: bool = True,
    path: str = "/ocpi/list",
) -> None:
    """A Sender list honouring offset/limit; `link(server, next_offset, limit)` builds the Link header (None: none)."""

    def handler(request: Request) -> Response:
        offset = int(request.args.get("offset", 0))
        limit = min(int(request.args.get("limit", page_size)), page_size)
        page = items[offset : offset + limit]
        headers = {"X-Limit": str(page_size)}
        if total:
            headers["X-Total-Count"] = str(len(items))
        if offset + len(page) < len(items):
            header = (link or good_link)(httpserver, offset + len(page), limit)
            if header is not None:
                headers["Link"] = header
        return json_response(envelope_body(page), headers=headers)

    httpserver.expect_request(path).respond_with_handler(handler)


def good_link(server: HTTPServer, offset: int, limit: int) -> str:
    return f'<{server.url_for("/ocpi/list")}?offset={offset}&limit={limit}>; rel="next"'


def pull(httpserver: HTTPServer, **kwargs: Any) -> list[int]:
    return [item for page in client().iter_pages(httpserver.url_for("/ocpi/list"), **kwargs) for item in page.data]


def offsets_requested(httpserver: HTTPServer) -> list[int]:
    return [int(r.args.get("offset", 0)) for r in received(httpserver) if r.path == "/ocpi/list"]


def test_iter_pages_follows_links_across_three_pages(httpserver):
    serve_list(httpserver, list(range(8)))

    pages = list(client().iter_pages(httpserver.url_for("/ocpi/list")))

    assert [page.data for page in pages] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert offsets_requested(httpserver) == [0, 3, 6]


def test_iter_pages_passes_limit_and_filters_and_follows_relative_links(httpserver):
    serve_list(
        httpserver,
        list(range(5)),
        link=lambda server, offset, limit: f'</ocpi/list?offset={offset}&limit={limit}&date_from=x>; rel="next"',
    )

    items = pull(httpserver, limit=2, params={"date_from": "x"})

    assert items == [0, 1, 2, 3, 4]
    first = received(httpserver)[0]
    assert (first.args["limit"], first.args["date_from"], first.args["offset"]) == ("2", "x", "0")


@pytest.mark.parametrize(
    "link",
    [
        pytest.param(lambda server, offset, limit: "garbage", id="garbage"),
        pytest.param(lambda server, offset, limit: "%%%;;;<<", id="garbage-brackets"),
        pytest.param(lambda server, offset, limit: 'rel="next"', id="rel-without-url"),
        pytest.param(lambda server, offset, limit: '<>; rel="next"', id="empty-url"),
        pytest.param(lambda server, offset, limit: '<http://[::1>; rel="next"', id="unparseable-url"),
        pytest.param(lambda server, offset, limit: '<ftp://example.com/list>; rel="next"', id="unsafe-scheme"),
        pytest.param(
            lambda server, offset, limit: f'<{server.url_for("/ocpi/missing")}?offset={offset}>; rel="next"',
            id="link-to-404",
        ),
        pytest.param(
            lambda server, offset, limit: f'<{server.url_for("/ocpi/list")}?offset=0>; rel="next"',
            id="link-to-first-page",
        ),
        pytest.param(
            lambda server, offset, limit: f'<http://127.0.0.1:{_closed_port()}/ocpi/list?offset={offset}>; rel="next"',
            id="link-to-dead-host",
        ),
    ],
)
def test_iter_pages_survives_a_broken_link(httpserver, link):
    serve_list(httpserver, list(range(8)), link=link)

    items = pull(httpserver)

    assert items == list(range(8))


def test_iter_pages_link_back_to_an_earlier_page_continues_by_offset(httpserver):
    """Page 3's Link points back to page 2 (already fetched): offset arithmetic from X-Total-Count takes over."""

    def link(server: HTTPServer, offset: int, limit: int) -> str:
        target = offset if offset < 6 else offset - 3
        return f'<{server.url_for("/ocpi/list")}?offset={target}&limit={limit}>; rel="next"'

    serve_list(httpserver, list(range(11)), link=link)

    assert pull(httpserver) == list(range(11))
    assert offsets_requested(httpserver) == [0, 3, 6, 9]


def test_iter_pages_without_link_stops_even_if_total_says_more(httpserver):
    """Absence of Link signals the last page (REFERENCE §2.7)."""
    serve_list(httpserver, list(range(8)), link=lambda server, offset, limit: None)

    assert pull(httpserver) == [0, 1, 2]


def test_iter_pages_stops_on_a_partner_that_loops(httpserver):
    """Always the same page, always a Link to itself, no X-Total-Count: a few requests, not 100 000."""

    def handler(request: Request) -> Response:
        headers = {"Link": f'<{httpserver.url_for("/ocpi/list")}?offset=0>; rel="next"'}
        return json_response(envelope_body([1, 2, 3]), headers=headers)

    httpserver.expect_request("/ocpi/list").respond_with_handler(handler)

    items = pull(httpserver)

    assert items[:3] == [1, 2, 3]
    assert len(received(httpserver)) <= 3


def test_iter_pages_stops_on_a_partner_ignoring_offset(httpserver):
    """A partner that answers the first page whatever the offset, with well-formed Links and a large total."""

    def handler(request: Request) -> Response:
        offset = int(request.args.get("offset", 0))
        headers = {
            "X-Total-Count": "1000",
            "Link": f'<{httpserver.url_for("/ocpi/list")}?offset={offset + 3}>; rel="next"',
        }
        return json_response(envelope_body([1, 2, 3]), headers=headers)

    httpserver.expect_request("/ocpi/list").respond_with_handler(handler)

    pages = list(client().iter_pages(httpserver.url_for("/ocpi/list")))

    assert pages[0].data == [1, 2, 3]
    assert len(received(httpserver)) <= 3


def test_iter_pages_first_page_failure_raises(httpserver):
    httpserver.expect_request("/ocpi/list").respond_with_response(json_response(envelope_body(status_code=2001), 400))

    with pytest.raises(PartnerRefused):
        pull(httpserver)


def test_iter_pages_refuses_a_non_list_page(httpserver):
    httpserver.expect_request("/ocpi/list").respond_with_response(json_response(envelope_body({"id": 1})))

    with pytest.raises(PartnerBadResponse):
        pull(httpserver)


# --- SSRF guard --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/ocpi/versions",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/ocpi/versions",
        "http:///ocpi/versions",
        "https://user:pass@example.com/ocpi/versions",
        "https://user@example.com/ocpi/versions",
        "http://[::1/ocpi",
        "http://example.com:99999/",
        "https://example.com/" + "x" * 2100,
    ],
)
def test_url_check_refuses_unusable_urls_even_when_private_urls_are_allowed(url, settings):
    settings.OCPI_ALLOW_PRIVATE_URLS = True

    with pytest.raises(UnsafeUrl):
        url_check(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/ocpi",
        "http://127.8.9.10:8000/ocpi",
        "http://10.1.2.3/ocpi",
        "http://172.16.5.4/ocpi",
        "http://192.168.0.1/ocpi",
        "http://169.254.169.254/latest/meta-data",
        "http://100.100.100.200/latest/meta-data",  # shared address space (RFC 6598): a cloud metadata service
        "http://0.0.0.0/ocpi",
        "http://224.0.0.1/ocpi",
        "http://[::1]/ocpi",
        "http://[fd00::1]/ocpi",
        "http://[fe80::1]/ocpi",
        "http://[::ffff:127.0.0.1]/ocpi",
        "http://localhost/ocpi",
        "http://localhost:8000/ocpi",
        "http://2130706433/ocpi",  # 127.0.0.1 as one decimal number
    ],
)
def test_url_check_refuses_private_targets(url, settings):
    settings.OCPI_ALLOW_PRIVATE_URLS = False

    with pytest.raises(UnsafeUrl):
        url_check(url)


@pytest.mark.parametrize("url", ["https://93.184.215.14/ocpi/versions", "http://[2606:4700:4700::1111]:8080/ocpi"])
def test_url_check_accepts_public_addresses(url, settings):
    settings.OCPI_ALLOW_PRIVATE_URLS = False

    url_check(url)  # no exception


def test_url_check_allows_loopback_when_configured(settings):
    settings.OCPI_ALLOW_PRIVATE_URLS = True

    url_check("http://127.0.0.1:8000/ocpi/versions")
    url_check("http://localhost/ocpi/versions")


def test_unsafe_url_is_never_called(httpserver, settings):
    settings.OCPI_ALLOW_PRIVATE_URLS = False
    httpserver.expect_request("/ocpi/x").respond_with_response(json_response(envelope_body()))

    with pytest.raises(PartnerCallError):
        client().get(httpserver.url_for("/ocpi/x"))

    assert received(httpserver) == []


def test_iter_pages_does_not_follow_a_link_carrying_credentials(httpserver):
    """Every Link is checked before being followed: one with user:password falls back to offset paging."""

    def link(server: HTTPServer, offset: int, limit: int) -> str:
        return f'<http://user:secret@{server.host}:{server.port}/ocpi/list?offset={offset}>; rel="next"'

    serve_list(httpserver, list(range(5)), link=link)

    assert pull(httpserver) == [0, 1, 2, 3, 4]
    assert offsets_requested(httpserver) == [0, 3]
    assert all(r.headers["Authorization"].startswith("Token ") for r in received(httpserver))


# --- traffic log ---------------------------------------------------------------------------------------------------


def test_outbound_traffic_is_logged_with_tokens_redacted(httpserver):
    partner, _ = make_partner(name="logged")
    their_token = "their-new-token-C-0123456789"
    our_token = "our-offered-token-B-0123456789"
    creds = {"token": their_token, "url": "https://x.example/ocpi/versions", "roles": []}
    httpserver.expect_request("/ocpi/2.2.1/credentials", method="POST").respond_with_response(
        json_response(envelope_body(creds))
    )

    OcpiClient(token=TOKEN, partner=partner).post(
        httpserver.url_for("/ocpi/2.2.1/credentials"), json={"token": our_token, "url": "https://us.example/v"}
    )

    row = TrafficLog.objects.get(direction=TrafficLog.Direction.OUT)
    assert (row.partner_id, row.method, row.module, row.http_status, row.ocpi_status_code) == (
        partner.pk,
        "POST",
        "credentials",
        200,
        1000,
    )
    assert json.loads(row.request_body)["token"] == "***"
    assert json.loads(row.response_body)["data"]["token"] == "***"
    assert row.request_id == received(httpserver)[-1].headers["X-Request-ID"]
    assert_no_secret_in_traffic_log(TOKEN, our_token, their_token)


def test_failed_calls_are_logged_too(httpserver):
    httpserver.expect_request("/ocpi/2.2.1/locations").respond_with_response(
        json_response(envelope_body(status_code=2001, message="bad"), 400)
    )

    with pytest.raises(PartnerRefused):
        client().get(httpserver.url_for("/ocpi/2.2.1/locations"))

    row = TrafficLog.objects.get(direction=TrafficLog.Direction.OUT)
    assert (row.module, row.http_status, row.ocpi_status_code) == ("locations", 400, 2001)
    assert "bad" in row.error
    assert_no_secret_in_traffic_log(TOKEN)


def test_a_request_with_query_parameters_is_logged_under_its_module(httpserver):
    """A pull's pages carry offset, limit and date_from: the module is still read from the path (the traffic log's
    module filter finds them)."""
    httpserver.expect_request("/ocpi/cpo/2.2.1/tariffs").respond_with_response(json_response(envelope_body([])))

    client().get(
        httpserver.url_for("/ocpi/cpo/2.2.1/tariffs"), params={"offset": 0, "date_from": "2024-01-01T00:00:00Z"}
    )

    row = TrafficLog.objects.get(direction=TrafficLog.Direction.OUT)
    assert "?" in row.url
    assert row.module == "tariffs"


def assert_no_secret_in_traffic_log(*tokens: str) -> None:
    """No token, in any form, and no Authorization header in any column of any traffic log row."""
    forms = {form for token in tokens for form in (token, base64.b64encode(token.encode()).decode())}
    rows = list(TrafficLog.objects.values())
    assert rows
    for row in rows:
        text = " ".join(str(value) for value in row.values())
        assert "Authorization" not in text
        assert "Token " not in text
        for form in forms:
            assert form not in text
