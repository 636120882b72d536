"""Django's PostgreSQL backend, with the per-request health check answered without a round trip when it can be.

With CONN_HEALTH_CHECKS (config.settings.base), Django checks a kept connection at its first use in every request
with `SELECT 1`: one more round trip to PostgreSQL for each request that uses the database, 5 % of a worker's time
on the receiver's EVSE PATCH under load (py-spy, bench/README.md). A connection that PostgreSQL has ended (restart,
`pg_terminate_backend`, idle timeout) has been sent an error and closed by the server, or is known broken to
psycopg already: its socket is readable while no statement runs. So a connection that is open, idle (no
transaction) and has nothing waiting on its socket is taken as healthy without asking; in every other case Django's
own check runs (`SELECT 1`, which also reads whatever the server sent). A connection cut with no word from the
server (a network partition) is found no later than by `SELECT 1`, which would wait for the same TCP timeout.

The check after a request that had errors (`close_if_unusable_or_obsolete`) keeps its `SELECT 1`.
"""

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base


def quietly_idle(connection: psycopg.Connection[Any]) -> bool:
    """True when psycopg holds `connection` open and idle, outside a transaction, with nothing sent by the server
    waiting to be read (a poll of its socket that does not wait)."""
    if connection.closed or connection.broken:
        return False
    if connection.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return False
    poller = select.poll()
    try:
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)  # POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not
    except (OSError, ValueError, psycopg.Error):
        return False


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[misc]  # django-stubs types no backend module
    def close_if_health_check_failed(self) -> None:
        # (health_check_enabled and health_check_done are set by Django's base wrapper; django-stubs omit them)
        if (
            self.connection is not None
            and getattr(self, "health_check_enabled", False)
            and not getattr(self, "health_check_done", True)
            and not self.pool
            and quietly_idle(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
