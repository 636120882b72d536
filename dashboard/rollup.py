"""The daily availability rollup (dashboard.models.EvseStatusDay), kept incrementally.

A status holds from its change's `since` until the EVSE's next change (ordered by since, then pk). Each closed
interval is split at UTC midnights and its microseconds are added to (EVSE, day, status) rows with one portable upsert
(INSERT ... ON CONFLICT DO UPDATE: PostgreSQL and SQLite). A change saved through the ORM (post_save, in its
transaction) closes or splits the interval it falls into, so changes arriving out of order are exact:

- between `prev` and `next`: prev's status loses [since, next) and the new status gains it;
- after the last change: prev's status gains [prev.since, since) (the new change is the open interval);
- before the first change: the new status gains [since, next).

Writers of one EVSE are serialised by the location lock (locations.services), so prev/next are stable. Bulk loads
that bypass the ORM (bulk_create, COPY) and deletions of history rows call rollup_rebuild() for the EVSEs concerned.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, Subquery
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from dashboard.models import EvseStatusChange, EvseStatusDay
from ocpi_core.db import pg_fetch

_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)
_BATCH = 5000


def day_spans(start: datetime, end: datetime) -> Iterator[tuple[date, int]]:
    """[start, end) split at UTC midnights: (day, microseconds) for each day it touches (nothing when empty)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    while start < end:
        cut = min(end, datetime.combine(start.date() + _DAY, time.min, tzinfo=UTC))
        yield start.date(), (cut - start) // _MICROSECOND
        start = cut


RollupRow = tuple[int, date, str, int]  # (evse_id, day, status, microseconds to add)


def _merged(rows: Iterable[RollupRow]) -> list[RollupRow]:
    """One row per key (ON CONFLICT cannot touch a row twice in one statement), amounts summed, zeros dropped."""
    merged: dict[tuple[int, date, str], int] = defaultdict(int)
    for evse_id, day, status, us in rows:
        merged[(evse_id, day, status)] += us
    return [(*key, us) for key, us in merged.items() if us]


def rollup_upsert_sql(rows: Iterable[RollupRow]) -> tuple[str, list[Any]] | None:
    """The INSERT ... ON CONFLICT DO UPDATE adding `rows` to the rollup (None when they add nothing): for a caller
    that sends it as part of its own statement (locations.services writes it with the EVSE). Keep it to a few hundred
    rows (`rollup_write` cuts larger sets)."""
    merged = _merged(rows)
    return _upsert_sql(merged) if merged else None


def _upsert_sql(rows: list[RollupRow]) -> tuple[str, list[Any]]:
    """The upsert of merged rows."""
    table = EvseStatusDay._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    sql = (
        f"INSERT INTO {table} (evse_id, day, status, microseconds) VALUES "  # noqa: S608 (our table name)
        + ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        + " ON CONFLICT (evse_id, day, status) DO UPDATE"
        + f" SET microseconds = {table}.microseconds + excluded.microseconds"
    )
    return sql, [value for evse_id, day, status, us in rows for value in (evse_id, adapt(day), status, us)]


def rollup_write(rows: Iterable[RollupRow]) -> None:
    """Add microseconds to (evse, day, status) rows, creating them as needed (negative amounts subtract)."""
    merged = _merged(rows)
    if not merged:
        return
    with connection.cursor() as cursor:
        for offset in range(0, len(merged), 500):
            cursor.execute(*_upsert_sql(merged[offset : offset + 500]))


def _interval(evse_id: int, status: str, start: datetime, end: datetime, sign: int = 1) -> list[RollupRow]:
    return [(evse_id, day, status, sign * us) for day, us in day_spans(start, end)]


def rollup_change(change: EvseStatusChange) -> None:
    """Account for a new status change (see the module's docstring)."""
    changes = EvseStatusChange.objects.filter(evse_id=change.evse_id).exclude(pk=change.pk)
    since = change.since
    before = changes.filter(Q(since__lt=since) | Q(since=since, pk__lt=change.pk)).order_by("-since", "-pk")
    later = changes.filter(Q(since__gt=since) | Q(since=since, pk__gt=change.pk)).order_by("since", "pk")
    # the neighbours in one statement (this runs in the transaction of every EVSE status change)
    prev_since, prev_status, after = (
        EvseStatusChange.objects.filter(pk=change.pk)
        .values_list(
            Subquery(before.values("since")[:1]),
            Subquery(before.values("status")[:1]),
            Subquery(later.values("since")[:1]),
        )
        .get()
    )
    _rollup_add(change.evse_id, change.status, since, None if prev_since is None else (prev_since, prev_status), after)


def _rollup_add(
    evse_id: int,
    status: str,
    since: datetime,
    prev: tuple[datetime, str] | None,
    after: datetime | None,
    pending: list[RollupRow] | None = None,
) -> None:
    """The rollup rows a change at `since` moves, given the changes around it (`prev`: since and status): written,
    or added to `pending` for the caller to write in its transaction."""
    rows: list[RollupRow] = []
    if after is not None:
        if prev is not None:
            rows += _interval(evse_id, prev[1], since, after, -1)
        rows += _interval(evse_id, status, since, after)
    elif prev is not None:
        rows += _interval(evse_id, prev[1], prev[0], since)
    if pending is not None:
        pending.extend(rows)
    else:
        rollup_write(rows)


def _insert_with_neighbours_sql() -> str:
    table = EvseStatusChange._meta.db_table
    prev = (
        f'SELECT "since", "status" FROM "{table}" WHERE "evse_id" = %s AND "since" <= %s'  # noqa: S608
        ' ORDER BY "since" DESC, "id" DESC LIMIT 1'
    )
    after = f'SELECT "since" FROM "{table}" WHERE "evse_id" = %s AND "since" > %s ORDER BY "since", "id" LIMIT 1'  # noqa: S608
    return (
        f'WITH "new" AS (INSERT INTO "{table}" ("evse_id", "status", "since") VALUES (%s, %s, %s) RETURNING "id") '  # noqa: S608
        f'SELECT "prev"."since", "prev"."status", ({after}) FROM "new" LEFT JOIN LATERAL ({prev}) "prev" ON TRUE'
    )


def status_change_add(evse_id: int, status: str, since: datetime, *, pending: list[RollupRow] | None = None) -> None:
    """Record that an EVSE has `status` from `since`, and account for it in the rollup.

    On PostgreSQL the row is inserted and its neighbours read in one prepared statement (this runs in the transaction
    of every EVSE status change: the receiver's hot path). The statement does not see the row it inserts, and that
    row's id is the highest: the earlier changes are those with `since <= since`, the later ones `since > since`,
    the same order (since, then id) as `rollup_change`. Elsewhere: the ORM's create, and `rollup_change` from its
    post_save signal.

    `since` is kept within [now - OCPI_STATUS_HISTORY_DAYS, now]; the EVSE itself keeps the stamp it was sent,
    only its history is bounded. A change stamped in the future is recorded at now (the time it reached us): a
    status cannot have started later than we learnt of it, and the interval up to a far-future stamp would otherwise
    be written out day by day (a PATCH with `last_updated` 9999-12-31: some three million rollup rows in one
    transaction). Likewise a stamp in the distant past: an EVSE PUT with last_updated 0001-01-01, then PATCHed,
    wrote 758,912 rows in 23 s. Before the horizon the EVSE is taken to have had that status already (what its
    stamp says).

    On SQLite the neighbours are read by one hand-written statement and the row inserted by another
    (`_sqlite_insert_with_neighbours`).

    With `pending` (PostgreSQL, SQLite), the rollup rows are added to it instead of written: the caller writes them
    in its transaction (`rollup_upsert_sql`, `rollup_write`), which spares the hot path a round trip.
    """
    now = timezone.now()
    since = min(max(since, now - settings.OCPI_STATUS_HISTORY_DAYS * _DAY), now)
    if connection.vendor == "sqlite":
        prev, after = _sqlite_insert_with_neighbours(evse_id, status, since)
        _rollup_add(evse_id, status, since, prev, after, pending)
        return
    if connection.vendor != "postgresql":
        EvseStatusChange.objects.create(evse_id=evse_id, status=status, since=since)
        return
    global _INSERT_WITH_NEIGHBOURS
    if _INSERT_WITH_NEIGHBOURS is None:
        _INSERT_WITH_NEIGHBOURS = _insert_with_neighbours_sql()
    params = [evse_id, status, since, evse_id, since, evse_id, since]
    prev_since, prev_status, after = pg_fetch(_INSERT_WITH_NEIGHBOURS, params)[0]
    prev = None if prev_since is None else (prev_since, prev_status)
    _rollup_add(evse_id, status, since, prev, after, pending)


_INSERT_WITH_NEIGHBOURS: str | None = None


def _sqlite_insert_with_neighbours(
    evse_id: int, status: str, since: datetime
) -> tuple[tuple[datetime, str] | None, datetime | None]:
    """SQLite's form of the PostgreSQL statement above (SQLite has no INSERT inside a WITH): the neighbours read in
    one statement, then the row inserted, both in the caller's transaction, which holds the database's write lock from
    its start (IMMEDIATE), so nothing moves in between. Hand-written like the PostgreSQL one: the ORM's create and
    the neighbour query of `rollup_change` cost the embedded default's hot path milliseconds of query building."""
    table = EvseStatusChange._meta.db_table
    earlier = f'FROM "{table}" WHERE "evse_id" = %s AND "since" <= %s ORDER BY "since" DESC, "id" DESC LIMIT 1'
    later = f'SELECT "since" FROM "{table}" WHERE "evse_id" = %s AND "since" > %s ORDER BY "since", "id" LIMIT 1'  # noqa: S608
    stamp = connection.ops.adapt_datetimefield_value(since)
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT (SELECT "since" {earlier}), (SELECT "status" {earlier}), ({later})',
            [evse_id, stamp, evse_id, stamp, evse_id, stamp],
        )
        prev_since, prev_status, after = cursor.fetchone()
        cursor.execute(
            f'INSERT INTO "{table}" ("evse_id", "status", "since") VALUES (%s, %s, %s)',  # noqa: S608
            [evse_id, status, stamp],
        )
    # a subquery's column has no declared type, so sqlite3 hands the text: converted as the ORM converts the field
    convert = connection.ops.convert_datetimefield_value  # type: ignore[attr-defined]  # SQLite's operations
    prev = None if prev_since is None else (convert(prev_since, None, connection), prev_status)
    return prev, None if after is None else convert(after, None, connection)


@receiver(post_save, sender=EvseStatusChange, dispatch_uid="dashboard_rollup_change")
def _on_change(sender: Any, instance: EvseStatusChange, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        rollup_change(instance)


def rollup_rebuild(evse_ids: Iterable[int] | None = None, *, models: tuple[Any, Any] | None = None) -> int:
    """Recompute the rollup from the history (all EVSEs, or these), streaming it in order; returns the rows written.
    `models`: the (EvseStatusChange, EvseStatusDay) of a migration's state."""
    change_model, day_model = models or (EvseStatusChange, EvseStatusDay)
    changes = change_model.objects.all()
    days = day_model.objects.all()
    if evse_ids is not None:
        evse_ids = list(evse_ids)
        changes, days = changes.filter(evse_id__in=evse_ids), days.filter(evse_id__in=evse_ids)
    days.delete()
    written = 0
    pending: dict[tuple[int, date, str], int] = defaultdict(int)
    previous: tuple[int, datetime, str] | None = None

    def flush() -> None:
        nonlocal written
        created = day_model.objects.bulk_create(
            day_model(evse_id=evse_id, day=day, status=status, microseconds=us)
            for (evse_id, day, status), us in pending.items()
            if us
        )
        written += len(created)
        pending.clear()

    rows = changes.order_by("evse_id", "since", "pk").values_list("evse_id", "since", "status")
    for evse_id, since, status in rows.iterator(chunk_size=_BATCH):
        if previous is not None and previous[0] == evse_id:
            for day, us in day_spans(previous[1], since):
                pending[(evse_id, day, previous[2])] += us
        elif len(pending) >= _BATCH:  # flushed between EVSEs only: one EVSE's keys are never split
            flush()
        previous = (evse_id, since, status)
    flush()
    return written
