"""The partner behind a token kept per process (ocpi_core.hot, ocpi_core.authentication): over real HTTP to a live
server, with changes committed by another database connection, as another process or machine makes them (no
Django signal reaches this process: only PostgreSQL's notification does)."""

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connection
from django.test import Client

from conftest import auth_header, make_partner
from ocpi_core import hot
from ocpi_core.authentication import _tokens
from ocpi_core.constants import Role
from ocpi_core.crypto import token_generate, token_hash
from ocpi_core.models import Partner, Party

LIST = "/ocpi/2.2.1/cpo/locations"

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the listener is PostgreSQL's (NOTIFY)")


@pytest.fixture
def hot_on(settings: Any) -> Iterator[None]:
    settings.OCPI_HOT_CACHE_SECONDS = 60.0
    settings.OCPI_TRAFFIC_LOG_ENABLED = False
    hot.hot_caches_clear()
    yield
    hot.hot_caches_clear()


class Elsewhere:
    """SQL on a connection of its own, committed at once: what another process or machine does."""

    def __init__(self) -> None:
        params = {**hot.listener._connect_params(), "application_name": "ocpi-test-elsewhere"}
        self.connection = psycopg.connect(**params, autocommit=True)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.connection.execute(sql, params)  # type: ignore[arg-type]  # the tests' own literal statements

    def heard(self) -> None:
        """Wait until this process has received every notification committed so far (delivery is asynchronous, in
        commit order: a marker sent now arrives after them)."""
        marker = f"test-{uuid.uuid4()}"
        self.run("SELECT pg_notify(%s, %s)", (hot.CHANNEL, marker))
        deadline = time.monotonic() + 10
        while hot.listener.last_payload != marker:
            assert time.monotonic() < deadline, "the notification did not arrive"
            assert hot.hot_caches_poll(), "the listener is not running"
            time.sleep(0.002)


@pytest.fixture
def elsewhere(transactional_db: None) -> Iterator[Elsewhere]:
    other = Elsewhere()
    yield other
    other.connection.close()


@pytest.fixture
def partner(own_parties: list[Party], transactional_db: None) -> tuple[Partner, str]:
    return make_partner(roles=(("DE", "PRT", Role.EMSP),))


def test_a_token_is_looked_up_once_then_kept(
    hot_on: None, partner: tuple[Partner, str], ocpi: Callable[..., httpx.Client], elsewhere: Elsewhere
) -> None:
    _, token = partner
    client = ocpi(token)
    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits  # looked up
    elsewhere.heard()  # the first contact wrote the partner's last_contact_at, which empties the caches
    assert client.get(LIST).status_code == 200
    hits = _tokens.hits  # looked up again
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 2  # then kept
    assert ocpi(token + "x").get(LIST).status_code == 401  # unknown tokens are looked up, never kept
    assert ocpi(token + "x").get(LIST).status_code == 401
    assert _tokens.hits == hits + 2


def test_a_change_committed_elsewhere_reaches_a_kept_token_in_this_process(
    hot_on: None, partner: tuple[Partner, str], ocpi: Callable[..., httpx.Client], elsewhere: Any
) -> None:
    partner_row, token = partner
    client = ocpi(token)
    assert client.get(LIST).status_code == 200
    elsewhere.heard()  # the first contact's write
    assert client.get(LIST).status_code == 200
    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 1  # kept

    elsewhere.run("UPDATE ocpi_core_partner SET status = %s WHERE id = %s", (Partner.Status.SUSPENDED, partner_row.pk))
    elsewhere.heard()
    assert client.get(LIST).status_code == 401

    elsewhere.run("UPDATE ocpi_core_partner SET status = %s WHERE id = %s", (Partner.Status.REGISTERED, partner_row.pk))
    elsewhere.heard()
    assert client.get(LIST).status_code == 200
    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 1  # kept again

    new = token_generate()  # a rotation by another process: the new token in, the old one out, one transaction
    elsewhere.run(
        "WITH gone AS (DELETE FROM ocpi_core_partnertoken WHERE partner_id = %s) INSERT INTO ocpi_core_partnertoken "
        "(partner_id, token_hash, kind, hint, created_at) VALUES (%s, %s, 'CREDENTIALS', 'x', now())",
        (partner_row.pk, partner_row.pk, token_hash(new)),
    )
    elsewhere.heard()
    assert client.get(LIST).status_code == 401
    assert ocpi(new).get(LIST).status_code == 200


def test_without_the_listener_no_token_is_kept_and_it_comes_back(
    hot_on: None, partner: tuple[Partner, str], ocpi: Callable[..., httpx.Client], elsewhere: Any, monkeypatch: Any
) -> None:
    partner_row, token = partner
    client = ocpi(token)
    assert client.get(LIST).status_code == 200
    elsewhere.heard()  # the first contact's write
    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 1  # kept
    monkeypatch.setattr(hot, "_RETRY_SECONDS", 3600.0)
    elsewhere.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'ocpi-hot-cache' AND datname = current_database()"
    )
    deadline = time.monotonic() + 10
    while hot.hot_caches_poll():  # the lost connection is noticed by a poll (here: of the next request)
        assert time.monotonic() < deadline, "the listener did not notice its connection ended"
        time.sleep(0.005)

    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits  # read every time
    # a change now counts at the next request, with nothing to hear it
    elsewhere.run("UPDATE ocpi_core_partner SET status = %s WHERE id = %s", (Partner.Status.SUSPENDED, partner_row.pk))
    assert client.get(LIST).status_code == 401
    elsewhere.run("UPDATE ocpi_core_partner SET status = %s WHERE id = %s", (Partner.Status.REGISTERED, partner_row.pk))

    hot.listener._retry_at = 0.0  # the retry is due: the next request listens again
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 1


def test_no_token_is_kept_from_inside_a_transaction(
    hot_on: None, own_parties: list[Party], django_assert_num_queries: Any
) -> None:
    """Here each test runs in a transaction (rolled back at its end, which notifies nobody): what a request reads
    there may be uncommitted, so it is never kept."""
    _, token = make_partner(roles=(("DE", "PRT", Role.EMSP),))
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    hits = _tokens.hits
    assert client.get(LIST).status_code == 200
    with django_assert_num_queries(2):  # the token, read again, and the page
        assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits


def test_no_token_is_kept_while_a_trigger_is_missing(
    hot_on: None, partner: tuple[Partner, str], ocpi: Callable[..., httpx.Client], elsewhere: Elsewhere
) -> None:
    """A database whose triggers are missing or disabled (not migrated, restored without them) would never notify:
    the listener does not start there, and tokens are read on every request."""
    _, token = partner
    client = ocpi(token)
    elsewhere.run("ALTER TABLE ocpi_core_partnertoken DISABLE TRIGGER ocpi_core_partnertoken_hot_notify")
    try:
        hot.listener.close()
        hits = _tokens.hits
        for _ in range(3):
            assert client.get(LIST).status_code == 200
        assert _tokens.hits == hits
        assert not hot.hot_caches_poll()
    finally:
        elsewhere.run("ALTER TABLE ocpi_core_partnertoken ENABLE TRIGGER ocpi_core_partnertoken_hot_notify")
    hot.listener._retry_at = 0.0
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert _tokens.hits == hits + 1
