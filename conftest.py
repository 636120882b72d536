"""Shared fixtures: own parties, partners in each state, an OCPI client speaking real HTTP to a live server, and a
fake partner platform (a local HTTP server) for the calls we make."""

import base64
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ocpi_core.constants import Role
from ocpi_core.crypto import token_encrypt, token_generate, token_hash, token_hint
from ocpi_core.envelope import dumps, now_timestamp
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party

REPO = Path(__file__).resolve().parent
# The spec's official examples live beside the repository (never copied into it); override with OCPI_EXAMPLES_DIR.
EXAMPLES_DIR = Path(os.environ.get("OCPI_EXAMPLES_DIR", REPO.parent / "shared" / "ocpi-2.2.1" / "examples"))


@pytest.fixture(autouse=True)
def _per_process_state_reset() -> Iterator[None]:
    """After each test: close this process's LISTEN connection, which a test that turned the hot caches on opened
    (ocpi_core.hot; the test database can then be dropped at the end), and forget the counts and anchors it kept
    (ocpi_core.pagination), so the next test starts cold."""
    yield
    from ocpi_core import pagination
    from ocpi_core.hot import listener

    listener.close()
    pagination._kept.clear()


def examples_dir() -> Path:
    """The official examples folder, or a skip naming where it was looked for."""
    if not EXAMPLES_DIR.is_dir():
        pytest.skip(f"OCPI examples not found at {EXAMPLES_DIR} (set OCPI_EXAMPLES_DIR)")
    return EXAMPLES_DIR


def pg_session_elsewhere() -> Any:
    """A psycopg connection of its own to the test database, in autocommit: what another process does (PostgreSQL)."""
    import psycopg
    from django.db import connection

    settings_dict = connection.settings_dict
    return psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
    )


def auth_header(token: str, *, raw: bool = False) -> str:
    return f"Token {token}" if raw else "Token " + base64.b64encode(token.encode()).decode()


def envelope_body(data: Any = None, status_code: int = 1000, message: str | None = None) -> bytes:
    body: dict[str, Any] = {"status_code": status_code, "timestamp": now_timestamp()}
    if data is not None:
        body["data"] = data
    if message:
        body["status_message"] = message
    return dumps(body)


@pytest.fixture
def own_parties(db: None) -> list[Party]:
    """Our own CPO and eMSP parties (what ocpi_demo loads)."""
    return [
        Party.objects.create(country_code="NL", party_id="OWN", role=Role.CPO, name="Own CPO"),
        Party.objects.create(country_code="NL", party_id="OWE", role=Role.EMSP, name="Own eMSP"),
    ]


def make_partner(
    *,
    name: str = "partner",
    status: str = Partner.Status.REGISTERED,
    kind: str = PartnerToken.Kind.CREDENTIALS,
    base_url: str = "http://127.0.0.1:9/ocpi",
    roles: tuple[tuple[str, str, str], ...] = (("DE", "PRT", Role.EMSP),),
) -> tuple[Partner, str]:
    """A partner in the given state with one token of the given kind; returns (partner, clear token)."""
    token_out = token_generate()
    partner = Partner.objects.create(
        name=name,
        status=status,
        versions_url=f"{base_url}/versions",
        version="2.2.1" if status == Partner.Status.REGISTERED else "",
        token_out_encrypted=token_encrypt(token_out) if status == Partner.Status.REGISTERED else "",
        token_out_hint=token_hint(token_out),
    )
    token = token_generate()
    PartnerToken.objects.create(partner=partner, token_hash=token_hash(token), kind=kind, hint=token_hint(token))
    if status == Partner.Status.REGISTERED:
        PartnerEndpoint.objects.create(
            partner=partner, identifier="credentials", role="SENDER", url=f"{base_url}/2.2.1/credentials"
        )
        for country_code, party_id, role in roles:
            Party.objects.create(
                partner=partner, country_code=country_code, party_id=party_id, role=role, name=f"{name} {role}"
            )
    return partner, token


STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(own_parties: list[Party]) -> Client:
    """A Django test client carrying a staff user's JWT, obtained from /api/token/ (the platform API's callers)."""
    get_user_model().objects.create_user("operator", password=STAFF_PASSWORD, is_staff=True)
    client = Client()
    tokens = client.post(
        "/api/token/", {"username": "operator", "password": STAFF_PASSWORD}, content_type="application/json"
    )
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    return client


@pytest.fixture
def registered_partner(own_parties: list[Party]) -> tuple[Partner, str]:
    """A registered partner and the credentials token it presents to us."""
    return make_partner()


@pytest.fixture
def invited_partner(own_parties: list[Party]) -> tuple[Partner, str]:
    """An invited partner and its token A."""
    return make_partner(name="invited", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)


@pytest.fixture
def ocpi(live_server: Any, transactional_db: None) -> Iterator[Callable[..., httpx.Client]]:
    """Factory of httpx clients talking real HTTP to the live server: `ocpi(token)`; `ocpi()` sends no auth."""
    clients: list[httpx.Client] = []

    def make(token: str | None = None, *, raw: bool = False) -> httpx.Client:
        headers = {"Authorization": auth_header(token, raw=raw)} if token else {}
        client = httpx.Client(base_url=live_server.url, headers=headers, timeout=20)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def ocpi_base_url(live_server: Any, settings: Any) -> str:
    """Point OCPI_BASE_URL at the live server, so the URLs we publish are the ones tests can call."""
    settings.OCPI_BASE_URL = live_server.url
    return live_server.url


@dataclass
class FakePartner:
    """A partner platform served by pytest-httpserver: versions, version details, credentials.

    `accepted_tokens` are the tokens it accepts from us; `credentials_token` is what it returns as token C;
    `received` records every request (method, path, headers, body) it got.
    """

    server: HTTPServer
    accepted_tokens: set[str] = field(default_factory=set)
    credentials_token: str = field(default_factory=token_generate)
    roles: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"role": "CPO", "business_details": {"name": "Fake CPO"}, "party_id": "FKC", "country_code": "DE"}
        ]
    )
    extra_endpoints: list[dict[str, str]] = field(default_factory=list)
    versions: list[str] = field(default_factory=lambda: ["2.1.1", "2.2.1"])
    received: list[dict[str, Any]] = field(default_factory=list)
    credentials_status: int = 1000

    @property
    def versions_url(self) -> str:
        return self.server.url_for("/ocpi/versions")

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Token "):
            return False
        value = header[6:]
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except ValueError:
            decoded = ""
        return decoded in self.accepted_tokens

    def _handle(self, request: Request) -> Response:
        self.received.append(
            {"method": request.method, "path": request.path, "headers": dict(request.headers), "body": request.data}
        )
        if not self._authorized(request):
            return Response(envelope_body(status_code=2000, message="Unauthorized"), 401, mimetype="application/json")
        path = request.path.rstrip("/")
        if path == "/ocpi/versions":
            data = [{"version": v, "url": self.server.url_for(f"/ocpi/{v}")} for v in self.versions]
            return Response(envelope_body(data), mimetype="application/json")
        if path == "/ocpi/2.2.1":
            endpoints = [
                {"identifier": "credentials", "role": "SENDER", "url": self.server.url_for("/ocpi/2.2.1/credentials")},
                *self.extra_endpoints,
            ]
            return Response(envelope_body({"version": "2.2.1", "endpoints": endpoints}), mimetype="application/json")
        if path == "/ocpi/2.2.1/credentials":
            if self.credentials_status != 1000:
                return Response(envelope_body(status_code=self.credentials_status), mimetype="application/json")
            if request.method in ("POST", "PUT"):
                creds = {"token": self.credentials_token, "url": self.versions_url, "roles": self.roles}
                return Response(envelope_body(creds), mimetype="application/json")
            if request.method == "DELETE":
                return Response(envelope_body(), mimetype="application/json")
        return Response(envelope_body(status_code=2000, message="Not found"), 404, mimetype="application/json")

    def start(self) -> "FakePartner":
        self.server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)
        return self


@pytest.fixture
def fake_partner(httpserver: HTTPServer) -> FakePartner:
    """A fake partner platform on a local port."""
    return FakePartner(server=httpserver).start()
