"""The PostgreSQL backend's per-request health check (ocpi_core.db_backends.postgresql): a kept connection that is
quiet is taken as healthy without a round trip; one the database has ended is found and opened again before the
request uses it. Requests go through Django's WSGI handler as gunicorn calls it, with the signals that start and end
a request (the test client turns their connection handling off)."""

import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, connection
from django.test import RequestFactory

from conftest import auth_header, make_partner, pg_session_elsewhere
from ocpi_core.constants import Role
from ocpi_core.models import Party

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's health check")

TARIFFS = "/ocpi/2.2.1/cpo/tariffs"  # a DRF view: its first statement goes through Django's cursor


def _last_statement(pid: int) -> str:
    """What the backend `pid` ran last, as PostgreSQL reports it to another session."""
    with pg_session_elsewhere() as other:
        row = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, f"backend {pid} is gone"
    return str(row[0])


def _serve(path: str, token: str) -> int:
    """One GET through Django's WSGI handler, as a gunicorn worker serves it; its HTTP status."""
    environ = RequestFactory().get(path, HTTP_AUTHORIZATION=auth_header(token)).environ
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        statuses.append(status)
        return lambda _: None

    result = WSGIHandler()(environ, start_response)
    try:
        b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]  # request_finished: the connection is kept or closed here
    return int(statuses[0].split()[0])


@pytest.fixture
def kept(transactional_db: None) -> Iterator[str]:
    """Connections kept across requests with health checks on, as config.settings.base sets them for PostgreSQL;
    a registered partner's token."""
    Party.objects.create(country_code="NL", party_id="OWN", role=Role.CPO, name="Own CPO")
    _, token = make_partner()
    saved = {key: connection.settings_dict[key] for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    connection.close()
    connection.settings_dict.update(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)  # read when the connection opens
    try:
        yield token
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def test_a_quiet_kept_connection_is_checked_without_a_round_trip(kept: str) -> None:
    assert _serve(TARIFFS, kept) == 200
    pid = connection.connection.info.backend_pid
    connection.connection.execute("SELECT 'the last statement'")
    close_old_connections()  # what the next request's start does: the connection is kept, its check due again
    assert connection.connection is not None
    assert not connection.health_check_done  # type: ignore[attr-defined]
    connection.close_if_health_check_failed()
    assert connection.health_check_done  # type: ignore[attr-defined]
    assert _last_statement(pid) == "SELECT 'the last statement'"  # Django's own check would have run SELECT 1
    assert connection.connection.info.backend_pid == pid


def test_a_connection_with_something_waiting_on_it_gets_the_full_check(kept: str) -> None:
    """Something sent by the server unasked (here a notification) makes the socket readable: the check then asks
    the server, which also reads what was waiting, and the connection is kept when it answers."""
    assert _serve(TARIFFS, kept) == 200
    pid = connection.connection.info.backend_pid
    connection.connection.execute("LISTEN ocpi_backend_test")
    with pg_session_elsewhere() as other:
        other.execute("NOTIFY ocpi_backend_test")
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    assert poller.poll(5000), "the notification did not arrive"
    close_old_connections()
    connection.close_if_health_check_failed()
    assert _last_statement(pid) == "SELECT 1"
    assert connection.connection is not None
    assert connection.connection.info.backend_pid == pid
    assert _serve(TARIFFS, kept) == 200


def test_a_connection_the_database_ended_is_opened_again_before_the_request_uses_it(kept: str) -> None:
    assert _serve(TARIFFS, kept) == 200
    pid = connection.connection.info.backend_pid
    with pg_session_elsewhere() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])  # as a restart of the database would
        deadline = time.monotonic() + 10
        while other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.02)
    assert connection.connection is not None  # still held by this process: nothing has told it yet
    assert _serve(TARIFFS, kept) == 200
    assert connection.connection.info.backend_pid != pid
