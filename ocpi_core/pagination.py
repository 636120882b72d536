"""Pagination of every Sender list (REFERENCE §2.7): offset/limit, date_from (inclusive) / date_to (exclusive),
a stable order (last_updated, then pk), X-Total-Count, X-Limit, and a Link to the next page that keeps every filter.

The Link also carries `cursor`, the (last_updated, pk) of the last object served: following it, the next page is a
keyset seek instead of an OFFSET scan, so deep pages cost the same as the first (PERFORMANCE.md §4). `offset` keeps
its meaning; a client that builds its own URLs without `cursor` gets plain offset paging.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db.models import Model, Q, QuerySet
from django.http import QueryDict

from ocpi_core.envelope import parse_datetime
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.registry import absolute_url


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


def _encode_cursor(last_updated: datetime, pk: int, total: int) -> str:
    # Full microseconds: format_datetime keeps milliseconds only, and a rounded-down stamp would serve again every
    # object of the same millisecond that sorts after it (timezone.now() stamps differ in microseconds).
    stamp = last_updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return base64.urlsafe_b64encode(f"{stamp}|{pk}|{total}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> tuple[datetime, int, int | None] | None:
    """A cursor we wrote: the last object served and the count of the first page (None for anything else: a damaged
    cursor falls back to offset paging)."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        parts = text.split("|")
        if len(parts) == 2:  # cursors written before the count was carried
            return parse_datetime(parts[0]), int(parts[1]), None
        stamp, pk, total = parts
        return parse_datetime(stamp), int(pk), max(0, int(total))
    except (ValueError, UnicodeDecodeError):
        return None


def _count(queryset: QuerySet[Any]) -> int:
    """COUNT(*) of a list query, kept OCPI_COUNT_CACHE_SECONDS per query so random-offset paging does not count on
    every page (0 = always count)."""
    ttl = settings.OCPI_COUNT_CACHE_SECONDS
    if not ttl:
        return queryset.count()
    key = "ocpi-count:" + hashlib.sha1(str(queryset.query).encode(), usedforsecurity=False).hexdigest()
    cached = cache.get(key)
    if cached is None:
        cached = queryset.count()
        cache.set(key, cached, ttl)
    return int(cached)


def page_request(query: QueryDict) -> PageRequest:
    """Parse and validate offset, limit, date_from, date_to (2001 on bad values) and the optional cursor."""
    cap = settings.OCPI_MAX_PAGE_LIMIT
    offset = _int_param(query, "offset", 0)
    limit = min(_int_param(query, "limit", cap), cap)
    date_from, raw_from = _date_param(query, "date_from")
    date_to, raw_to = _date_param(query, "date_to")
    raw_cursor = query.get("cursor")
    cursor = _decode_cursor(raw_cursor) if isinstance(raw_cursor, str) and raw_cursor else None
    return PageRequest(offset, limit, date_from, date_to, cursor, raw_from, raw_to)


@dataclass
class Page:
    """One page of objects plus the headers the response must carry."""

    objects: list[Any]
    headers: dict[str, str]


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
    `total` may be passed by callers that keep a count elsewhere.
    """
    request = page_request(query)
    filtered = queryset
    if request.date_from is not None:
        filtered = filtered.filter(**{f"{date_field}__gte": request.date_from})
    if request.date_to is not None:
        filtered = filtered.filter(**{f"{date_field}__lt": request.date_to})
    filtered = filtered.order_by(date_field, "pk")
    rows: list[Model] = []
    if request.limit:
        if request.cursor is not None:
            stamp, pk, _ = request.cursor
            after = Q(**{f"{date_field}__gt": stamp}) | Q(**{date_field: stamp, "pk__gt": pk})
            window = filtered.filter(after)[: request.limit + 1]
        else:
            window = filtered[request.offset : request.offset + request.limit + 1]
        # Keys first, then the rows: the OFFSET scan and the sort carry two narrow columns, not the documents
        # (PERFORMANCE.md §4); the second query fetches the page by primary key.
        keys = list(window.values_list("pk", flat=True))
        by_pk = {row.pk: row for row in filtered.order_by().filter(pk__in=keys)} if keys else {}
        rows = [by_pk[key] for key in keys if key in by_pk]
    objects, has_more = rows[: request.limit], len(rows) > request.limit
    next_offset = request.offset + len(objects)
    if total is None:
        carried = request.cursor[2] if request.cursor is not None else None
        seen = next_offset + (1 if has_more else 0)
        total = max(carried, seen) if carried is not None else max(_count(filtered), seen if objects else 0)
    headers = {"X-Total-Count": str(total), "X-Limit": str(settings.OCPI_MAX_PAGE_LIMIT)}
    if objects and has_more:
        params: dict[str, Any] = {"offset": next_offset, "limit": request.limit}
        if request.raw_date_from is not None:
            params["date_from"] = request.raw_date_from
        if request.raw_date_to is not None:
            params["date_to"] = request.raw_date_to
        last = objects[-1]
        params["cursor"] = _encode_cursor(getattr(last, date_field), last.pk, total)
        headers["Link"] = f'<{absolute_url(path)}?{urlencode(params)}>; rel="next"'
    return Page(objects=objects, headers=headers)
