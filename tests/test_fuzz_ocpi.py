"""Property-based fuzzing of every /ocpi/ operation from our own OpenAPI document (schemathesis over real HTTP).

The document is the one /api/schema/ serves (generated in-process at collection, so pytest shows one test per
operation), restricted to /ocpi/: an endpoint a later module mounts joins the run without touching this file.
Requests go over HTTP to pytest-django's live server and carry a partner's token; every answer must be a documented
OCPI envelope and never a 5xx.

Network safety: the credentials POST/PUT make the server call the URL in the body. Here OCPI_ALLOW_PRIVATE_URLS is
off and every generated URL (format `uri`) names a loopback, private, link-local, multicast or unspecified IP
literal, a non-http scheme or embedded credentials, so url_check refuses it (3001) before any DNS lookup or
connection; `allow_hosts` (pytest-socket) turns any connection outside loopback into an error, and the outbound
client gets one-second timeouts.
"""

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_socket import SocketConnectBlockedError
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import auth_header, make_partner
from ocpi_core import client as client_module
from ocpi_core.client import UnsafeUrl, url_check
from ocpi_core.constants import MESSAGE_ID_MAX
from ocpi_core.crypto import token_hash
from ocpi_core.envelope import parse_datetime
from ocpi_core.models import Partner, PartnerToken, Party

# Per operation and generation mode (positive, negative). The suite keeps it modest so it stays fast as modules are
# added; a deeper run: OCPI_FUZZ_EXAMPLES=200 scripts/test -k fuzz.
MAX_EXAMPLES = int(os.environ.get("OCPI_FUZZ_EXAMPLES", "15"))
OCPI_METHODS = {"get", "post", "put", "patch", "delete"}

# URLs partners may put in a Credentials object; each one is refused by url_check without touching the network.
_REFUSED_HOSTS = [
    "127.0.0.1",
    "localhost",  # /etc/hosts, no DNS query
    "[::1]",
    "0.0.0.0",  # noqa: S104
    "10.1.2.3",
    "172.16.0.9",
    "192.168.1.20",
    "169.254.169.254",  # cloud metadata, the classic SSRF target
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "[fe80::1]",
    "[::ffff:127.0.0.1]",
    "224.0.0.1",
]
REFUSED_URLS = st.one_of(
    st.builds(
        "{}://{}{}{}".format,
        st.sampled_from(["http", "https"]),
        st.sampled_from(_REFUSED_HOSTS),
        st.sampled_from(["", ":9", ":8000"]),
        st.sampled_from(["", "/", "/ocpi/versions", "/ocpi/2.2.1/credentials"]),
    ),
    st.sampled_from(
        [
            "ftp://127.0.0.1/ocpi/versions",
            "file:///etc/passwd",
            "http://user:secret@127.0.0.1/ocpi/versions",
            "http:///ocpi/versions",
            "gopher://10.0.0.1/_",
        ]
    ),
)
schemathesis.openapi.format("uri", REFUSED_URLS)


class FuzzPartners:
    """The tokens the fuzzer presents, re-created whenever a request made one unusable.

    DELETE credentials with a valid token unregisters the partner (its token dies): the next request then gets a
    freshly registered partner, so every other operation keeps authenticated coverage. POST credentials is only
    meaningful with an invited partner's token A (a registered partner gets 405), so it gets one; it never registers
    because every URL it can offer is refused.
    """

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.created = 0

    def reset(self) -> None:
        self.tokens.clear()

    def token(self, kind: str) -> str:
        token = self.tokens.get(kind)
        if token is None or not self._usable(token, kind):
            token = self._create(kind)
            self.tokens[kind] = token
        return token

    @staticmethod
    def _usable(token: str, kind: str) -> bool:
        status = Partner.Status.REGISTERED if kind == PartnerToken.Kind.CREDENTIALS else Partner.Status.INVITED
        return PartnerToken.objects.filter(token_hash=token_hash(token), kind=kind, partner__status=status).exists()

    def _create(self, kind: str) -> str:
        self.created += 1
        if kind == PartnerToken.Kind.CREDENTIALS:
            _, token = make_partner(name=f"fuzz registered {self.created}")
        else:
            _, token = make_partner(name=f"fuzz invited {self.created}", status=Partner.Status.INVITED, kind=kind)
        return token


PARTNERS = FuzzPartners()
PLACEHOLDER = "Token fuzz-partner-token-of-kind:"


def ocpi_openapi() -> dict[str, Any]:
    """The OpenAPI document exactly as /api/schema/?format=json serves it."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document, renderer_context={}))


OPENAPI = ocpi_openapi()
ocpi_schema = schemathesis.openapi.from_dict(OPENAPI).include(path_regex=r"^/ocpi/")
ocpi_schema.config.update(request_timeout=10)
# The coverage phase (deterministic boundary cases, built at collection) stays positive: its negative half costs
# ~150 cases per request body and grows with every module; the fuzzing phase below still sends negative data, and
# unexpected methods are covered by test_undocumented_methods_get_a_405_envelope.
ocpi_schema.config.phases.coverage.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])


@ocpi_schema.auth(refresh_interval=None)
class PartnerTokenAuth:
    """Schemathesis auth provider: names which kind of partner token a request carries.

    Schemathesis builds some cases at collection (coverage phase), before any database exists, and a token valid
    when a case is drawn may be dead when it is sent (DELETE credentials ran in between); so the provider writes
    a placeholder and `authorize` puts the real token in just before the request is sent.
    """

    def get(self, case: Any, context: Any) -> str:
        if case.method.upper() == "POST" and case.path.rstrip("/").endswith("/credentials"):
            return PartnerToken.Kind.REGISTRATION
        return PartnerToken.Kind.CREDENTIALS

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"{PLACEHOLDER}{data}"


def authorize(case: Any) -> None:
    """Replace the provider's placeholder by a usable token of the kind it names."""
    header = (case.headers or {}).get("Authorization", "")
    if header.startswith(PLACEHOLDER):
        case.headers["Authorization"] = auth_header(PARTNERS.token(header.removeprefix(PLACEHOLDER)))


def ocpi_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every answer is an OCPI envelope (JSON object, int status_code, OCPI timestamp), consistent with its HTTP
    status, and echoes a usable X-Request-ID."""
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"HTTP {response.status_code} answer is not JSON: {response.content[:200]!r}") from exc
    assert isinstance(body, dict), f"the envelope must be a JSON object, got {type(body).__name__}"
    code = body.get("status_code")
    assert type(code) is int, f"status_code must be an integer, got {code!r}"
    assert 1000 <= code < 5000, f"status_code {code} is no OCPI status code"
    try:
        parse_datetime(str(body.get("timestamp")))
    except ValueError as exc:
        raise AssertionError(f"timestamp {body.get('timestamp')!r} is no OCPI DateTime") from exc
    if response.status_code >= 400:
        assert not 1000 <= code < 2000, f"HTTP {response.status_code} with success status_code {code}"
    sent = response.request.headers.get("X-Request-ID")
    if sent and len(sent.strip()) <= MESSAGE_ID_MAX and sent.strip().isascii() and sent.strip().isprintable():
        assert response.headers.get("x-request-id") == [sent.strip()], "X-Request-ID not echoed"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
    ocpi_envelope,
]


@pytest.fixture
def fuzz_server(
    live_server: Any, transactional_db: None, settings: Any, monkeypatch: Any, own_parties: list[Party]
) -> Iterator[str]:
    """The live server's URL, with outbound calls restricted to what a production deployment allows."""
    settings.OCPI_BASE_URL = live_server.url
    settings.OCPI_ALLOW_PRIVATE_URLS = False
    settings.OCPI_CLIENT_TIMEOUT = 1.0
    settings.OCPI_CLIENT_CONNECT_TIMEOUT = 0.5
    monkeypatch.setattr(client_module, "_http_client", None)  # the pooled client is rebuilt with these timeouts
    PARTNERS.reset()
    yield live_server.url
    if client_module._http_client is not None:
        client_module._http_client.close()


@pytest.mark.allow_hosts(["127.0.0.1", "::1"])
@ocpi_schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=list(HealthCheck),
)
def test_ocpi_operation_fuzz(case: Any, fuzz_server: str) -> None:
    authorize(case)
    case.call_and_validate(base_url=fuzz_server, checks=CHECKS)


UNDOCUMENTED = [
    (path, method.upper())
    for path, item in OPENAPI["paths"].items()
    if path.startswith("/ocpi/")
    for method in sorted(OCPI_METHODS - set(item))
]


@pytest.mark.parametrize(("path", "method"), UNDOCUMENTED)
def test_undocumented_methods_get_a_405_envelope(ocpi: Any, registered_partner: Any, path: str, method: str) -> None:
    _, token = registered_partner
    response = ocpi(token).request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000
    assert response.headers["X-Request-ID"]


@hypothesis_settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(url=REFUSED_URLS)
def test_generated_urls_are_refused_without_network(settings: Any, url: str) -> None:
    # what the fuzzer offers as partner URLs is refused before any DNS lookup or connection (UnsafeUrl, not
    # PartnerUnreachable)
    settings.OCPI_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeUrl):
        url_check(url)


@pytest.mark.allow_hosts(["127.0.0.1", "::1"])
def test_fuzz_runs_cannot_leave_loopback() -> None:
    # the safety net of the fuzz run: a connection outside loopback fails at once instead of reaching the network
    with pytest.warns(UserWarning, match="192.0.2.1"), pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 9), timeout=1)  # TEST-NET-1, never routed
