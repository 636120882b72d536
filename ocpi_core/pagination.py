"""Pagination of every Sender list (REFERENCE §2.7): offset/limit, date_from (inclusive) / date_to (exclusive),
a stable order (last_updated, then pk), X-Total-Count, X-Limit, and a Link to the next page that keeps every filter.

The Link also carries `cursor`, the (last_updated, pk) of the last object served: following it, the next page is a
keyset seek instead of an OFFSET scan, so deep pages cost the same as the first (PERFORMANCE.md §4). `offset` keeps
its meaning: a client that builds its own URLs without `cursor` gets plain offset paging, and the cursor names the
offset it was written for, so a Link whose `offset` a client changed (the spec's advice when X-Total-Count shrinks:
"redo the previous GET with the offset lowered by 1", transport_and_format, Paginated Response) is served from that
offset, not from the cursor.
"""

import base64
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connections
from django.db.models import Count, F, Model, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import QueryDict

from ocpi_core.envelope import parse_datetime
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.registry import absolute_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The validated pagination parameters of one request."""

    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None
    cursor: tuple[datetime, int, int | None] | None
    raw_date_from: str | None
    raw_date_to: str | None


def _int_param(query: QueryDict, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:  # no signs, underscores, spaces or other digits
        raise InvalidParameters(f"{name} must be a non-negative integer")
    return int(raw)


def _date_param(query: QueryDict, name: str) -> tuple[datetime | None, str | None]:
    raw = query.get(name)
    if raw is None or raw == "":
        return None, None
    try:
        return parse_datetime(raw), raw
    except ValueError as exc:
        raise InvalidParameters(f"{name} must be an OCPI DateTime in UTC, e.g. 2019-01-01T00:00:00Z") from exc


def encode_cursor(last_updated: datetime, pk: int, total: int, offset: int) -> str:
    # Full microseconds: format_datetime keeps milliseconds only, and a rounded-down stamp would serve again every
    # object of the same millisecond that sorts after it (timezone.now() stamps differ in microseconds).
    # isoformat, not strftime: `%Y` drops the leading zeros of a year before 1000, and such a cursor did not parse
    # back (the next page fell back to offset paging)
    stamp = last_updated.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return base64.urlsafe_b64encode(f"{stamp}|{pk}|{total}|{offset}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str, offset: int) -> tuple[datetime, int, int | None] | None:
    """A cursor we wrote for this `offset`: the last object served and the count of the first page (None for
    anything else: a damaged cursor, or one written for another offset, falls back to offset paging)."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        parts = text.split("|")
        if len(parts) == 2:  # cursors written before the count was carried
            return parse_datetime(parts[0]), int(parts[1]), None
        if len(parts) == 4:  # the offset the cursor continues from: a request asking for another one gets that one
            if int(parts[3]) != offset:
                return None
            parts = parts[:3]
        stamp, pk, total = parts
        return parse_datetime(stamp), int(pk), max(0, int(total))
    except (ValueError, UnicodeDecodeError):
        return None


def _query_key(queryset: QuerySet[Any]) -> str:
    """A cache key naming a list query (its SQL), compiled once per queryset object: the count and the offset anchors
    of one request share it."""
    key = getattr(queryset, "_ocpi_query_key", None)
    if key is None:
        key = hashlib.sha1(str(queryset.query).encode(), usedforsecurity=False).hexdigest()
        queryset._ocpi_query_key = key  # type: ignore[attr-defined]
    return str(key)


def _count_key(queryset: QuerySet[Any]) -> str:
    """The cache key of a list query's count (written by `_count`, and by `_anchors` from the same scan)."""
    return "ocpi-count:" + _query_key(queryset)


# --- counts and offset anchors, kept OCPI_COUNT_CACHE_SECONDS and refreshed off the request path ---

_KEPT_MAX = 64  # queries whose last value a process keeps (a full table is emptied, never grown)
_kept: dict[str, tuple[float, Any]] = {}  # key -> (when this process computed it, value)
_refreshing: set[str] = set()
_refresh_lock = threading.Lock()
_refresher: tuple[int, ThreadPoolExecutor] | None = None


def keep(key: str, value: Any) -> Any:
    """Remember a count or anchor list for OCPI_COUNT_CACHE_SECONDS (Django's cache) and, when it was read outside a
    transaction (from committed rows only), as this process's last value."""
    cache.set(key, value, settings.OCPI_COUNT_CACHE_SECONDS)
    if not connections["default"].in_atomic_block:
        if len(_kept) >= _KEPT_MAX:
            _kept.clear()
        _kept[key] = (time.monotonic(), value)
    return value


def kept(key: str, compute: Callable[[], Any]) -> Any:
    """A count or anchor list of a list query (`key` names both), computed at most every OCPI_COUNT_CACHE_SECONDS
    (0: every time).

    Once it expires, the value this process computed last is served for up to as long again while a background
    thread of the process computes the new one: a refresh scans the list's keys (31 ms at 100,000 locations), and
    every request queued on a sync worker would wait for it (the p99 of random-offset paging). Inside a transaction
    (whose rows another thread cannot see) and on first use it is computed in the request.

    A value this process computed is read from its own memory while fresh (an anchor list has 1,000 keys at 100,000
    locations: unpickling it from the cache on every page would cost more than the rows it saves); one another process
    computed comes from Django's cache when that is shared."""
    ttl = settings.OCPI_COUNT_CACHE_SECONDS
    if not ttl:  # 0: computed every time
        return compute()
    last = _kept.get(key)
    age = time.monotonic() - last[0] if last is not None else math.inf
    if last is not None and age < ttl:
        return last[1]
    value = cache.get(key)
    if value is not None:
        return value
    if last is not None and age < 2 * ttl and not connections["default"].in_atomic_block:
        _refresh_later(key, compute)
        return last[1]
    return keep(key, compute())


def _refresh_later(key: str, compute: Callable[[], Any]) -> None:
    global _refresher
    with _refresh_lock:
        if key in _refreshing:
            return
        _refreshing.add(key)
        if _refresher is None or _refresher[0] != os.getpid():  # none yet, or the parent's (a forked worker)
            _refresher = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpi-count-refresh"))
        executor = _refresher[1]

    def refresh() -> None:
        try:
            close_old_connections()
            keep(key, compute())
        except Exception:  # the next request after the stale period computes it itself
            logger.exception("Could not refresh a list's count or anchors", extra={"key": key})
        finally:
            connections.close_all()  # this thread's connection: nothing keeps a database open between refreshes
            with _refresh_lock:
                _refreshing.discard(key)

    executor.submit(refresh)


def _count(queryset: QuerySet[Any]) -> int:
    """COUNT(*) of a list query, kept OCPI_COUNT_CACHE_SECONDS per query so random-offset paging does not count on
    every page (0 = always count)."""
    return int(kept(_count_key(queryset), queryset.count))


def page_request(query: QueryDict) -> PageRequest:
    """Parse and validate offset, limit, date_from, date_to (2001 on bad values) and the optional cursor."""
    cap = settings.OCPI_MAX_PAGE_LIMIT
    offset = _int_param(query, "offset", 0)
    limit = min(_int_param(query, "limit", cap), cap)
    date_from, raw_from = _date_param(query, "date_from")
    date_to, raw_to = _date_param(query, "date_to")
    raw_cursor = query.get("cursor")
    cursor = _decode_cursor(raw_cursor, offset) if isinstance(raw_cursor, str) and raw_cursor else None
    return PageRequest(offset, limit, date_from, date_to, cursor, raw_from, raw_to)


@dataclass
class Page:
    """One page of objects plus the headers the response must carry."""

    objects: list[Any]
    headers: dict[str, str]


@dataclass
class RawPage:
    """One page of precomputed JSON documents, joined into a JSON array (`data`), plus the response headers."""

    data: bytes
    headers: dict[str, str]


def _window(queryset: QuerySet[Any], request: PageRequest, date_field: str) -> tuple[QuerySet[Any], QuerySet[Any]]:
    """(the filtered, ordered list; the page window: one row more than the page, as one query)."""
    filtered = queryset
    if request.date_from is not None:
        filtered = filtered.filter(**{f"{date_field}__gte": request.date_from})
    if request.date_to is not None:
        filtered = filtered.filter(**{f"{date_field}__lt": request.date_to})
    filtered = filtered.order_by(date_field, "pk")
    size = request.limit + 1
    if request.cursor is not None:
        # `date >= stamp` is the index range start (a row comparison written as an OR is only a filter, and the scan
        # then starts at the first row: the deeper the page, the slower); the OR keeps the exact keyset.
        stamp, pk, _ = request.cursor
        after = Q(**{f"{date_field}__gt": stamp}) | Q(**{date_field: stamp, "pk__gt": pk})
        return filtered, filtered.filter(after, **{f"{date_field}__gte": stamp})[:size]
    if not request.offset:
        return filtered, filtered[:size]
    # OFFSET: skip rows in a subquery that reads keys only (an index-only scan with the right index), then fetch the
    # page's rows by primary key in the same statement (PERFORMANCE.md §4: never compute or read wide columns for
    # the skipped rows). Deep offsets start from the nearest anchor: a keyset seek, then fewer than
    # ANCHOR_EVERY keys skipped instead of `offset`.
    start, skip = filtered, request.offset
    anchors = _anchors(filtered, date_field) if request.offset >= ANCHOR_EVERY else []
    slot = min(request.offset // ANCHOR_EVERY, len(anchors))
    if slot:
        stamp, pk = anchors[slot - 1]  # the key at position slot * ANCHOR_EVERY
        at_or_after = Q(**{f"{date_field}__gt": stamp}) | Q(**{date_field: stamp, "pk__gte": pk})
        start = filtered.filter(at_or_after, **{f"{date_field}__gte": stamp})
        skip = request.offset - slot * ANCHOR_EVERY
    keys = start.values("pk")[skip : skip + size]
    return filtered, filtered.filter(pk__in=keys)


ANCHOR_EVERY = 100  # an offset page skips at most this many keys from the anchor before it


def _anchors(filtered: QuerySet[Any], date_field: str) -> list[tuple[datetime, int]]:
    """The (date, pk) keys at positions ANCHOR_EVERY, 2 * ANCHOR_EVERY ... of a list, kept like its count
    (OCPI_COUNT_CACHE_SECONDS, 0 = none: plain OFFSET). One scan of the list's keys per period instead of one per
    page; an offset page is then exact for the list as it was when they were computed, as X-Total-Count is."""
    if not settings.OCPI_COUNT_CACHE_SECONDS:
        return []

    def compute() -> list[tuple[datetime, int]]:
        ranked = filtered.order_by().annotate(
            _ocpi_rn=Window(RowNumber(), order_by=[F(date_field).asc(), F("pk").asc()]),
            _ocpi_total=Window(Count("pk")),  # the count from the same scan (a refresh is one scan, not two)
        )
        rows = list(
            ranked.annotate(_ocpi_slot=F("_ocpi_rn") % ANCHOR_EVERY)
            .filter(_ocpi_slot=1, _ocpi_rn__gt=1)
            .order_by()
            .values_list(date_field, "pk", "_ocpi_total")
        )
        if rows:
            keep(_count_key(filtered), rows[0][2])
        return sorted((stamp, pk) for stamp, pk, _ in rows)

    return list(kept("ocpi-anchors:" + _query_key(filtered), compute))


def page_headers(
    request: PageRequest,
    count: Callable[[], int],
    path: str,
    served: int,
    has_more: bool,
    last_key: tuple[datetime, int] | None,
    total: int | None,
) -> dict[str, str]:
    """X-Total-Count, X-Limit and the Link of one page. `count` counts the whole filtered list; it is called only
    when the request carries no count (a first page, an offset page) and the list does not end on this page.

    A page that was read and holds the end of the list (nothing after it, and objects on it or no offset) knows
    the total exactly: its offset plus what it serves. No count is run for it, and a count kept from up to
    OCPI_COUNT_CACHE_SECONDS ago never contradicts the objects the page shows (a list of one page is always
    exact)."""
    next_offset = request.offset + served
    if total is None:
        carried = request.cursor[2] if request.cursor is not None else None
        seen = next_offset + (1 if has_more else 0)
        if request.limit and not has_more and (served or not request.offset):
            total = next_offset
        else:
            total = max(carried, seen) if carried is not None else max(count(), seen if served else 0)
    headers = {"X-Total-Count": str(total), "X-Limit": str(settings.OCPI_MAX_PAGE_LIMIT)}
    if served and has_more and last_key is not None:
        params: dict[str, Any] = {"offset": next_offset, "limit": request.limit}
        if request.raw_date_from is not None:
            params["date_from"] = request.raw_date_from
        if request.raw_date_to is not None:
            params["date_to"] = request.raw_date_to
        params["cursor"] = encode_cursor(last_key[0], last_key[1], total, next_offset)
        headers["Link"] = f'<{absolute_url(path)}?{urlencode(params)}>; rel="next"'
    return headers


def paginate(
    queryset: QuerySet[Any],
    query: QueryDict,
    path: str,
    *,
    date_field: str = "last_updated",
    total: int | None = None,
) -> Page:
    """Apply the request's window to `queryset` (already scoped to what the caller may see) and build the headers.

    One row more than the page is read, so whether another page exists never depends on a count. X-Total-Count is
    counted on a page reached by offset (kept for OCPI_COUNT_CACHE_SECONDS per query), and carried along in the Link
    of the pages that follow, raised when more objects turn up: a walk through N pages counts once, not N times.
    `total` may be passed by callers that keep a count elsewhere. The page is one query: a keyset index range scan
    when the request carries our cursor, else OFFSET over keys only.
    """
    request = page_request(query)
    filtered, window = _window(queryset, request, date_field)
    rows: list[Model] = []
    if request.limit:
        rows = list(window)
    objects, has_more = rows[: request.limit], len(rows) > request.limit
    last = (getattr(objects[-1], date_field), objects[-1].pk) if objects else None
    headers = page_headers(request, lambda: _count(filtered), path, len(objects), has_more, last, total)
    return Page(objects=objects, headers=headers)


def paginate_raw(
    queryset: QuerySet[Any],
    query: QueryDict,
    path: str,
    *,
    doc_field: str = "doc",
    date_field: str = "last_updated",
    total: int | None = None,
) -> RawPage:
    """`paginate` for lists served from a precomputed JSON text column: the page's documents come back already
    joined as a JSON array (no model instances, never re-encoded). Same window, order, headers and Link."""
    request = page_request(query)
    filtered, window = _window(queryset, request, date_field)
    rows: list[tuple[Any, int, str]] = []
    if request.limit:
        rows = list(window.values_list(date_field, "pk", doc_field))
    page, has_more = rows[: request.limit], len(rows) > request.limit
    data = b"[" + ",".join(row[2] for row in page).encode() + b"]"
    last = (page[-1][0], page[-1][1]) if page else None
    headers = page_headers(request, lambda: _count(filtered), path, len(page), has_more, last, total)
    return RawPage(data=data, headers=headers)
