"""The Locations hot paths (ocpi_core.fastpath): the CPO Sender's list and one whole location, as hand-written
statements over the `location_page_sender` index and the cached JSON (`doc`), prepared on PostgreSQL (also served on
SQLite, the embedded default: ocpi_core.db.fast_fetch); and the eMSP Receiver's PATCH of an EVSE (a status change),
straight to `location_patch` as the DRF view calls it.

Same rules as locations.api.views (own_locations and the DRF views, which serve every other case): our own parties
the request is addressed to, `partner IS NULL`, published or with publish_allowed_to; the same window, order,
headers and Link as ocpi_core.pagination.paginate_raw. The SQL mirrors what the ORM writes for those querysets;
tests/test_fast_path.py compares both paths request by request.
"""

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from locations.services import Key, location_patch
from ocpi_core import pagination
from ocpi_core.constants import Role
from ocpi_core.db import fast_fetch, fast_timestamp
from ocpi_core.envelope import OcpiResponse, raw_data_response
from ocpi_core.exceptions import UnknownLocation
from ocpi_core.fastpath import fast_json_body, fast_partner_request, fast_route
from ocpi_core.hot import own_party_keys

_TABLE = '"locations_location"'
_SENDABLE = '"partner_id" IS NULL AND ("publish" OR "publish_allowed_to" IS NOT NULL)'
_ORDER = ' ORDER BY "last_updated" ASC, "id" ASC'
_RAW = ("text", "timestamptz")  # the cached JSON passed on as the bytes read; the stamps: only the last is needed


def _sender_filter(parties: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    """WHERE of own_locations(): the lower-cased party keys (the index prefix), then the index predicate."""
    owners = " OR ".join(['(LOWER("country_code") = %s AND LOWER("party_id") = %s)'] * len(parties))
    params: list[Any] = [value for party in parties for value in party]
    return f"({owners}) AND {_SENDABLE}", params


def _cache_key(kind: str, sql: str, params: list[Any]) -> str:
    return f"ocpi-fast-{kind}:" + hashlib.sha1(f"{sql}|{params!r}".encode(), usedforsecurity=False).hexdigest()


def _count_sql(where: str) -> str:
    return f"SELECT COUNT(*) FROM {_TABLE} WHERE {where}"  # noqa: S608


def _anchors(where: str, params: list[Any]) -> list[tuple[datetime, int]]:
    """The (last_updated, id) keys at positions ANCHOR_EVERY, 2 * ANCHOR_EVERY ... of the filtered list.

    The same scan also gives the count (the last row's number), which is kept with them: at 100,000 locations the
    anchors take 31 ms and a count 11 ms more (refreshed off the request path: pagination.kept)."""
    if not settings.OCPI_COUNT_CACHE_SECONDS:
        return []
    every = pagination.ANCHOR_EVERY
    window = f'WINDOW "w" AS ({_ORDER.strip()})'
    numbered = 'SELECT "last_updated", "id", ROW_NUMBER() OVER "w" AS "rn", LEAD("id") OVER "w" IS NULL AS "last"'
    ranked = f"{numbered} FROM {_TABLE} WHERE {where} {window}"
    wanted = '("rn" %% %s = 1 AND "rn" > 1) OR "last"'
    sql = f'SELECT "last_updated", "id", "rn" FROM ({ranked}) "ranked" WHERE {wanted}{_ORDER}'  # noqa: S608

    def compute() -> list[tuple[datetime, int]]:
        rows = fast_fetch(sql, [*params, every])
        if rows:
            pagination.keep(_cache_key("count", _count_sql(where), params), rows[-1][2])
        return [(stamp, pk) for stamp, pk, number in rows if number % every == 1 and number > 1]

    return pagination.kept(_cache_key("anchors", sql, [*params, every]), compute)  # type: ignore[no-any-return]


def _window(where: str, params: list[Any], page: pagination.PageRequest) -> tuple[str, list[Any]]:
    """The page's statement: one row more than the page (a keyset seek by cursor, else OFFSET over keys only from
    the nearest anchor), as ocpi_core.pagination._window."""
    size = page.limit + 1
    columns = f'SELECT "last_updated", "id", "doc" FROM {_TABLE}'  # noqa: S608
    if page.cursor is not None:
        stamp, pk, _ = page.cursor
        after = '("last_updated" > %s OR ("last_updated" = %s AND "id" > %s)) AND "last_updated" >= %s'
        return f"{columns} WHERE {where} AND {after}{_ORDER} LIMIT %s", [*params, stamp, stamp, pk, stamp, size]
    if not page.offset:
        return f"{columns} WHERE {where}{_ORDER} LIMIT %s", [*params, size]
    every = pagination.ANCHOR_EVERY
    start, start_params, skip = where, list(params), page.offset
    anchors = _anchors(where, params) if page.offset >= every else []
    slot = min(page.offset // every, len(anchors))
    if slot:
        stamp, pk = anchors[slot - 1]
        start += ' AND ("last_updated" > %s OR ("last_updated" = %s AND "id" >= %s)) AND "last_updated" >= %s'
        start_params += [stamp, stamp, pk, stamp]
        skip = page.offset - slot * every
    keys = f'SELECT "id" FROM {_TABLE} WHERE {start}{_ORDER} LIMIT %s OFFSET %s'  # noqa: S608
    return f'{columns} WHERE "id" IN ({keys}){_ORDER}', [*start_params, size, skip]


@fast_route("GET", r"^/ocpi/2\.2\.1/cpo/locations/?$", allow="GET, HEAD")
def sender_list(request: HttpRequest) -> HttpResponse:
    """GET /ocpi/2.2.1/cpo/locations (LocationSenderListView)."""
    _, routing = fast_partner_request(request)
    parties = own_party_keys(routing=routing, role=Role.CPO)
    page = pagination.page_request(request.GET)
    rows: list[tuple[Any, ...]] = []
    where, params = "", list[Any]()
    if parties:
        where, params = _sender_filter(parties)
        if page.date_from is not None:
            where, params = where + ' AND "last_updated" >= %s', [*params, page.date_from]
        if page.date_to is not None:
            where, params = where + ' AND "last_updated" < %s', [*params, page.date_to]
        if page.limit:
            rows = fast_fetch(*_window(where, params, page), raw=_RAW)

    def count() -> int:
        if not parties:
            return 0
        sql = _count_sql(where)
        return int(pagination.kept(_cache_key("count", sql, params), lambda: fast_fetch(sql, params)[0][0]))

    served, has_more = rows[: page.limit], len(rows) > page.limit
    data = b"[" + b",".join(row[2] for row in served) + b"]"
    last = (fast_timestamp(served[-1][0]), served[-1][1]) if served else None
    headers = pagination.page_headers(page, count, request.path, len(served), has_more, last, None)
    return raw_data_response(data, headers=headers)


@fast_route("GET", r"^/ocpi/2\.2\.1/cpo/locations/(?P<location_id>[^/]+)/?$", allow="GET, HEAD")
def sender_object(request: HttpRequest, location_id: str) -> HttpResponse | None:
    """GET /ocpi/2.2.1/cpo/locations/{location_id} (LocationSenderObjectView at the location's depth)."""
    _, routing = fast_partner_request(request)
    parties = own_party_keys(routing=routing, role=Role.CPO)
    rows: list[tuple[Any, ...]] = []
    if parties:
        where, params = _sender_filter(parties)
        sql = f'SELECT "doc" FROM {_TABLE} WHERE {where} AND LOWER("ocpi_id") = %s LIMIT 1'  # noqa: S608
        rows = fast_fetch(sql, [*params, location_id.lower()], raw=_RAW)
    if not rows:
        raise UnknownLocation(f"Unknown location {location_id}")
    if not rows[0][0]:
        return None  # no cached document (yet): the DRF view renders it from the rows
    return raw_data_response(rows[0][0])


@fast_route(
    "PATCH",
    r"^/ocpi/2\.2\.1/emsp/locations/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<location_id>[^/]+)"
    r"/(?P<evse_uid>[^/]+)/?$",
    allow="GET, PUT, PATCH, HEAD",
)
def receiver_evse_patch(
    request: HttpRequest, country_code: str, party_id: str, location_id: str, evse_uid: str
) -> HttpResponse | None:
    """PATCH /ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{location_id}/{evse_uid} (EvseReceiverView)."""
    auth, _ = fast_partner_request(request)
    readable, data = fast_json_body(request)
    if not readable:
        return None
    location_patch(partner=auth.partner, key=Key(country_code, party_id, location_id, evse_uid, None), data=data)
    return OcpiResponse()
