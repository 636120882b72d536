"""Short-lived in-process caches of what every OCPI request reads and almost never changes: the partner behind a
token, a partner's parties and our own parties.

Each entry lives at most OCPI_HOT_CACHE_SECONDS (0 turns the caches off). They are all emptied at once:

- by a change saved or deleted through the ORM in this process (Partner, PartnerToken, Party, PartnerEndpoint);
- on PostgreSQL, by a change committed by any process or machine, by any means (ORM, queryset update, SQL): triggers
  on those four tables `NOTIFY ocpi_hot` (migration ocpi_core 0005), and each process `LISTEN`s on a connection of
  its own (`HotListener`), which every request polls without a round trip (the notifications are already in its
  socket, or not). A rolled-back change sends nothing and changed nothing;
- on SQLite (the embedded default), the same way: triggers on those tables count every change in a one-row table
  (migration ocpi_core 0007), which every poll reads on the request's own connection (`SqliteChangeCounter`).

Tokens are cached only while that listener (on SQLite, the counter) runs (OCPI_TOKEN_CACHE on): a rotated or revoked
token stops working in every process as soon as its notification arrives (on this machine, idle: 8 µs after the
commit returned, p99 0.06 ms; on SQLite at the next request), and never later than the entry's time to live if the
listener connection is lost (it is then dropped with every cached entry, and opened again at a later request). A
token is never cached from inside a transaction, which may hold uncommitted changes. A partner's parties are also
keyed by the partner row's `updated_at`, which every credentials handshake bumps. Bounded: a full cache is emptied,
never grown.
"""

import contextlib
import logging
import os
import sqlite3
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models.signals import post_delete, post_save
from psycopg import pq

from ocpi_core.constants import Role
from ocpi_core.exceptions import NotFound
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party
from ocpi_core.routing import Routing

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 2048
CHANNEL = "ocpi_hot"
# the triggers migration ocpi_core 0005 puts on the tables the caches read: each notifies CHANNEL
TRIGGERS = tuple(
    f"{table}_hot_notify"
    for table in ("ocpi_core_partner", "ocpi_core_partnertoken", "ocpi_core_party", "ocpi_core_partnerendpoint")
)
_RETRY_SECONDS = 5.0  # a listener connection that failed is tried again after this
_MISSING = object()


class HotCache:
    """A dict of (expiry, value) with a time-to-live read from the settings at each call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[Any, tuple[float, Any]] = {}
        self.hits = 0  # since the process started (tests and diagnostics)
        _ALL.append(self)

    @staticmethod
    def ttl() -> float:
        return float(getattr(settings, "OCPI_HOT_CACHE_SECONDS", 0) or 0)

    def get(self, key: Any) -> Any:
        """The cached value, or `MISSING` (also when caching is off or the entry expired)."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        if entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return _MISSING
        self.hits += 1
        return entry[1]

    def set(self, key: Any, value: Any) -> None:
        ttl = self.ttl()
        if ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        self._entries.clear()


MISSING = _MISSING
_ALL: list[HotCache] = []
_lock = threading.Lock()


def hot_caches_clear(**_: Any) -> None:
    """Forget every cached entry (connected to the save/delete signals of the models the caches read)."""
    with _lock:
        for cache in _ALL:
            cache.clear()


for _model in (Partner, PartnerToken, Party, PartnerEndpoint):
    post_save.connect(hot_caches_clear, sender=_model, dispatch_uid=f"ocpi-hot-cache-save-{_model.__name__}")
    post_delete.connect(hot_caches_clear, sender=_model, dispatch_uid=f"ocpi-hot-cache-delete-{_model.__name__}")


class HotListener:
    """This process's `LISTEN ocpi_hot` connection (PostgreSQL), opened at its first poll, reopened after a fork.

    `poll()` empties every cache when a notification has arrived since the last poll and tells whether the listener
    runs: it reads what the socket holds without waiting and sends nothing to the server (a few microseconds). A
    lost connection empties the caches too; a new one is tried at most every few seconds."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._connection: psycopg.Connection[Any] | None = None
        self._target: tuple[Any, ...] = ()
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self.notifications = 0  # received since the process started (tests and diagnostics)
        self.last_payload = ""

    def _connect_params(self) -> dict[str, Any]:
        params = dict(connections[self.alias].get_connection_params())
        for option in ("context", "cursor_factory", "prepare_threshold", "server_side_binding", "pool"):
            params.pop(option, None)
        params["application_name"] = "ocpi-hot-cache"
        params.setdefault("connect_timeout", 5)  # a request waits for this at most once per _RETRY_SECONDS
        return params

    def _open(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            connection = psycopg.connect(**self._connect_params(), autocommit=True)
            triggers = connection.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = ANY(%s) AND tgenabled <> 'D'", [list(TRIGGERS)]
            ).fetchone()
            if triggers != (len(TRIGGERS),):  # not migrated, or disabled: nothing would be heard
                connection.close()
                raise psycopg.OperationalError("the ocpi_hot triggers are missing (run the migrations)")
            connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self._retry_at = time.monotonic() + _RETRY_SECONDS
            logger.warning("hot cache listener unavailable, caches work without it", extra={"error": str(exc)})
            return False
        self._connection = connection
        hot_caches_clear()  # whatever was cached before listening may have changed unnoticed
        return True

    def close(self) -> None:
        """Stop listening (tests, before their database is dropped); the next poll opens the connection again."""
        with self._lock:
            if self._connection is not None and self._target[0] == os.getpid():
                self._drop()
            self._retry_at = 0.0

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        hot_caches_clear()
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()

    def poll(self) -> bool:
        """Apply the notifications received so far; True while the listener runs."""
        if connections[self.alias].vendor != "postgresql":
            return False
        with self._lock:
            target = (os.getpid(), connections[self.alias].settings_dict.get("NAME"))
            if target != self._target:  # another database (tests), or a forked worker
                if self._connection is not None and target[0] == self._target[0]:
                    self._drop()
                elif self._connection is not None:  # the parent's socket: closing it here would end its LISTEN
                    _INHERITED.append(self._connection)
                self._connection, self._target, self._retry_at = None, target, 0.0
            if self._connection is None and not self._open():
                return False
            pgconn = self._connection.pgconn  # type: ignore[union-attr]  # _open() set it
            try:
                pgconn.consume_input()  # never blocks: libpq's socket is non-blocking
                if pgconn.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError(pgconn.get_error_message() or "connection lost")
                arrived = 0
                while (notification := pgconn.notifies()) is not None:
                    arrived += 1
                    self.last_payload = notification.extra.decode(errors="replace")
            except psycopg.Error as exc:
                logger.warning("hot cache listener lost, reconnecting later", extra={"error": str(exc)})
                self._retry_at = time.monotonic() + _RETRY_SECONDS
                self._drop()
                return False
            if arrived:
                self.notifications += arrived
                hot_caches_clear()
            return True


listener = HotListener()
_INHERITED: list[Any] = []  # listener connections of a parent process, kept so that nothing here closes them

# SQLite (the embedded default) has no notifications: triggers on the same four tables count every committed change in
# a one-row table (migration ocpi_core 0007), read by every poll.
SQLITE_COUNTER = "ocpi_hot_changes"
SQLITE_TRIGGERS = tuple(
    f"{table}_hot_{event}"
    for table in ("ocpi_core_partner", "ocpi_core_partnertoken", "ocpi_core_party", "ocpi_core_partnerendpoint")
    for event in ("insert", "update", "delete")
)


class SqliteChangeCounter:
    """The SQLite counterpart of HotListener: `poll()` reads the change counter on the request's own connection (one
    statement in the same process, no server: microseconds) and empties every cache when it moved since the last
    poll. In write-ahead-log mode a statement outside a transaction reads the last commit of any process. The
    triggers are checked once per process and database: without all of them (not migrated) it returns False."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._target: tuple[Any, ...] = ()
        self._counted = False
        self._seen: int | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def poll(self) -> bool:
        connection = connections[self.alias]
        target = (os.getpid(), connection.settings_dict.get("NAME"))
        with self._lock:
            if target != self._target:
                self._target, self._counted, self._seen, self._retry_at = target, False, None, 0.0
            if not self._counted and time.monotonic() < self._retry_at:
                return False
            try:
                connection.ensure_connection()
                sqlite = connection.connection
                if not self._counted:
                    marks = ", ".join("?" * len(SQLITE_TRIGGERS))
                    found = sqlite.execute(
                        f"SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",  # noqa: S608
                        SQLITE_TRIGGERS,
                    ).fetchone()
                    if found != (len(SQLITE_TRIGGERS),):
                        raise DatabaseError("the ocpi_hot triggers are missing (run the migrations)")
                    self._counted = True
                row = sqlite.execute(f'SELECT "changes" FROM "{SQLITE_COUNTER}" WHERE "id" = 1').fetchone()  # noqa: S608
            except (DatabaseError, sqlite3.Error) as exc:
                self._counted, self._seen, self._retry_at = False, None, time.monotonic() + _RETRY_SECONDS
                hot_caches_clear()
                logger.warning(
                    "hot cache change counter unavailable, caches work without it", extra={"error": str(exc)}
                )
                return False
            if row is None or row[0] != self._seen:  # moved, or the first poll: what was cached may have changed
                self._seen = None if row is None else row[0]
                hot_caches_clear()
            return row is not None


sqlite_counter = SqliteChangeCounter()


def hot_caches_poll() -> bool:
    """Apply the cross-process invalidations made so far (HotListener.poll on PostgreSQL, SqliteChangeCounter.poll
    on SQLite); True while they are heard."""
    if HotCache.ttl() <= 0:
        return False
    vendor = connections["default"].vendor
    if vendor == "sqlite":
        return sqlite_counter.poll()
    return listener.poll()


_own_parties = HotCache("own parties")


def own_party_keys(*, routing: Routing, role: str | None) -> list[tuple[str, str]]:
    """(country_code, party_id), lower-cased, of the own parties of `role` (None: any) a request is addressed to:
    the cached form of `selectors.own_parties_for_request` (same rules, the same 404 for a party that is not ours)."""
    to = (routing.to_country_code.lower(), routing.to_party_id.lower()) if routing.has_to else None
    key = (role, to)
    cached = _own_parties.get(key)
    if cached is MISSING:
        from ocpi_core.selectors import own_parties_for_request

        try:
            parties = own_parties_for_request(routing=routing, role=role)
            cached = sorted({(cc.lower(), pid.lower()) for cc, pid in parties.values_list("country_code", "party_id")})
        except NotFound as exc:
            cached = exc
        _own_parties.set(key, cached)
    if isinstance(cached, NotFound):
        raise NotFound(cached.message)
    return list(cached)


def assert_addressed_here(routing: Routing) -> None:
    """A request with `OCPI-to-*` must be addressed to one of our own parties, whatever its role: anything else was
    routed to the wrong platform, and answering it would speak for a party we do not host (404, as the Senders'
    `own_party_keys`, of any role here). Without those headers (a direct link) there is nothing to check."""
    if routing.has_to:
        own_party_keys(routing=routing, role=None)


_partner_parties = HotCache("partner parties")


def partner_owns(*, partner: Partner | None, country_code: str, party_id: str) -> bool:
    """The cached form of `selectors.partner_assert_owns` as a test: may `partner` write under this party? (our own
    platform, `None`, always; a hub relays for others; CiString comparison)."""
    if partner is None:
        return True
    parties = _parties_of(partner)
    if any(role == Role.HUB for _, _, role in parties):
        return True
    wanted = (country_code.upper(), party_id.upper())
    return any((cc, pid) == wanted for cc, pid, _ in parties)


def _parties_of(partner: Partner) -> frozenset[tuple[str, str, str]]:
    """(COUNTRY_CODE, PARTY_ID, role) of each of a partner's parties, cached. Keyed by the partner row's updated_at
    too (read with the token): a credentials handshake in any process saves the partner with its new parties, so no
    process keeps the old ones."""
    key = (partner.pk, partner.updated_at)
    parties = _partner_parties.get(key)
    if parties is MISSING:
        rows = partner.parties.values_list("country_code", "party_id", "role")
        parties = frozenset((cc.upper(), pid.upper(), role) for cc, pid, role in rows)
        _partner_parties.set(key, parties)
    return parties  # type: ignore[no-any-return]


# The interface a functional module's URL serves, by its segments after the version (/ocpi/2.2.1/cpo/tokens/...):
# our roles there, the first of which we hold answering (a Sender of ChargingProfiles is an SCSP or an eMSP, and our
# requests go out from the SCSP party when we have one: chargingprofiles.services._our_sender_party), and the roles of
# the parties that call it (REFERENCE §1.2: who pulls from a Sender, who pushes to a Receiver).
_EMSP_SIDE = frozenset({Role.EMSP, Role.OTHER, Role.HUB})  # OTHER: an eMSP type of role (Broadcast Push)
_CPO_SIDE = frozenset({Role.CPO, Role.HUB})
_INTERFACES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "cpo": ((Role.CPO,), frozenset({Role.EMSP, Role.NSP, Role.NAP, Role.OTHER, Role.SCSP, Role.HUB})),
    "cpo/sessions": ((Role.CPO,), _EMSP_SIDE | {Role.SCSP}),
    "cpo/cdrs": ((Role.CPO,), _EMSP_SIDE),
    "cpo/tokens": ((Role.CPO,), _EMSP_SIDE),
    "cpo/commands": ((Role.CPO,), _EMSP_SIDE),
    "cpo/chargingprofiles": ((Role.CPO,), frozenset({Role.SCSP, Role.EMSP, Role.HUB})),
    "emsp": ((Role.EMSP,), _CPO_SIDE),
    "emsp/chargingprofiles": ((Role.SCSP, Role.EMSP), _CPO_SIDE),
}


def response_routing_headers(request: Any, routing: Routing) -> dict[str, str]:
    """The routing headers of the answer to a functional module's request (REFERENCE §2.10, "Direct response": to the
    requesting party, from the receiving party): the request's own, swapped. Where the request named no `to` (a
    direct link, or open routing), `from` is our own party serving the URL's interface; where it named no `from`,
    `to` is the calling partner's party in a role that calls that interface; each only when there is exactly one
    (several: left out, rather than name the wrong one)."""
    if routing.has_from and routing.has_to:
        return routing.response_headers()
    segments = request.path_info.split("/", 5)  # ['', 'ocpi', '2.2.1', 'cpo', 'tokens', ...]
    side = segments[3] if len(segments) > 3 else ""
    module = segments[4] if len(segments) > 4 else ""
    interface = _INTERFACES.get(f"{side}/{module}") or _INTERFACES.get(side)
    if interface is None:
        return routing.response_headers()
    ours, callers = interface
    answering = asking = None
    if not routing.has_to:
        keys: list[tuple[str, str]] = []
        for role in ours:  # the first of our roles we hold answers
            keys = own_party_keys(routing=routing, role=role)
            if keys:
                break
        if len(keys) == 1:
            answering = (keys[0][0].upper(), keys[0][1].upper())
    partner = getattr(request, "ocpi_partner", None)
    if not routing.has_from and isinstance(partner, Partner):
        candidates = {(cc, pid) for cc, pid, role in _parties_of(partner) if role in callers}
        if len(candidates) == 1:
            asking = next(iter(candidates))
    return routing.response_headers(answering=answering, asking=asking)
