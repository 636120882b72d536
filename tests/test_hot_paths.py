"""The hot paths of issue #3 (bench/README.md): queries per request with the in-process caches on, their
invalidation, the batched traffic log, offset anchors and the in-place PATCH of the cached JSON."""

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import QueryDict
from django.test import Client, override_settings
from psycopg import pq

from conftest import auth_header, make_partner
from dashboard.models import EvseStatusChange, EvseStatusDay
from locations.models import Evse, Location
from locations.services import Key, location_put, location_render_rows
from locations.tests.factories import location_data, own_location
from ocpi_core import pagination
from ocpi_core.constants import Role
from ocpi_core.crypto import token_generate, token_hash
from ocpi_core.envelope import format_datetime
from ocpi_core.models import Partner, PartnerToken, Party, TrafficLog
from ocpi_core.traffic import body_for_log, traffic_log_flush

LIST = "/ocpi/2.2.1/cpo/locations"
HOT = override_settings(OCPI_HOT_CACHE_SECONDS=60.0, OCPI_TRAFFIC_LOG_ENABLED=False)  # the log: its own test
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def partner(own_parties: list[Party]) -> tuple[Partner, Client]:
    """A registered partner and its client. Its first request notes its contact (last_contact_at), a change of a
    partner row: PostgreSQL tells the processes at commit (NOTIFY), which a test's transaction never reaches; on
    SQLite the change counter's move is seen by the same connection at once, so the next request empties the
    in-process caches once more: the tests warm them with two requests."""
    partner, token = make_partner(roles=(("DE", "PRT", Role.EMSP), ("DE", "PRC", Role.CPO)))
    return partner, Client(HTTP_AUTHORIZATION=auth_header(token))


@pytest.fixture(autouse=True)
def _cold_caches() -> Any:
    from ocpi_core.hot import hot_caches_clear

    hot_caches_clear()
    yield
    hot_caches_clear()


def locations(count: int) -> list[Location]:
    return [own_location(f"LOC{i:03d}", last_updated=T0 + timedelta(minutes=i)) for i in range(count)]


@HOT
def test_sender_get_and_pages_cost_one_query_each_with_warm_caches(
    partner: tuple[Partner, Client], django_assert_num_queries: Any
) -> None:
    _, client = partner
    locations(5)
    assert client.get(f"{LIST}/LOC001").status_code == 200  # warms the token, the parties, last_contact_at
    assert client.get(f"{LIST}/LOC001").status_code == 200  # on SQLite the parties once more (see `partner`)
    with django_assert_num_queries(2):  # the token (never kept inside a transaction, as here) and the document
        response = client.get(f"{LIST}/LOC001")
    assert response.status_code == 200
    assert orjson.loads(response.content)["data"] == location_render_rows(Location.objects.get(ocpi_id="LOC001").pk)
    with django_assert_num_queries(3):  # the token, the page and its count
        first = client.get(f"{LIST}?limit=2")
    link = first.headers["Link"].split(">")[0].lstrip("<").replace("http://testserver", "")
    with django_assert_num_queries(2):  # the token; a Link page: one keyset range, the count carried in the cursor
        second = client.get(link)
    assert [item["id"] for item in orjson.loads(second.content)["data"]] == ["LOC002", "LOC003"]
    with django_assert_num_queries(3):  # the token; an offset page: keys and docs in one statement; the count
        third = client.get(f"{LIST}?offset=1&limit=2")
    assert [item["id"] for item in orjson.loads(third.content)["data"]] == ["LOC001", "LOC002"]
    with django_assert_num_queries(2):  # the token and the page: it holds the end of the list, so it knows the total
        last = client.get(f"{LIST}?offset=4&limit=2")
    assert [item["id"] for item in orjson.loads(last.content)["data"]] == ["LOC004"]
    assert last.headers["X-Total-Count"] == "5"


@HOT
def test_a_rotated_or_removed_token_stops_working_at_once_in_every_process(partner: tuple[Partner, Client]) -> None:
    """Inside a transaction (as here) a token is never kept: a change that sends no signal to this process (here:
    SQL) counts on the very next request. Kept tokens and changes committed by other processes:
    tests/test_token_cache.py; across gunicorn workers: the two-platform tests."""
    partner_row, client = partner
    assert client.get(LIST).status_code == 200
    new = token_generate()
    PartnerToken.objects.create(partner=partner_row, token_hash=token_hash(new), kind="CREDENTIALS", hint="x")
    PartnerToken.objects.filter(partner=partner_row).exclude(token_hash=token_hash(new))._raw_delete("default")
    assert client.get(LIST).status_code == 401
    assert Client(HTTP_AUTHORIZATION=auth_header(new)).get(LIST).status_code == 200
    Partner.objects.filter(pk=partner_row.pk).update(status=Partner.Status.SUSPENDED)  # no signal either
    assert Client(HTTP_AUTHORIZATION=auth_header(new)).get(LIST).status_code == 401


@override_settings(OCPI_TRAFFIC_LOG_FLUSH_SECONDS=3600.0)
def test_batched_traffic_log_records_every_request(partner: tuple[Partner, Client]) -> None:
    partner_row, client = partner
    locations(2)
    before = TrafficLog.objects.count()
    ids = [f"req-{i}" for i in range(5)]
    started = datetime.now(UTC)
    for request_id in ids:
        assert client.get(f"{LIST}/LOC001", HTTP_X_REQUEST_ID=request_id).status_code == 200
    assert TrafficLog.objects.count() == before  # still in the buffer: written off the request path
    assert traffic_log_flush() == 5
    rows = list(TrafficLog.objects.filter(request_id__in=ids).order_by("pk"))
    assert [row.request_id for row in rows] == ids
    assert all(row.partner_id == partner_row.pk and row.http_status == 200 for row in rows)
    assert {row.module for row in rows} == {"locations"}
    assert all(started <= row.created_at <= datetime.now(UTC) for row in rows)  # the time of the request
    assert all(row.ocpi_status_code == 1000 and row.method == "GET" and row.url == f"{LIST}/LOC001" for row in rows)
    assert all(orjson.loads(row.response_body)["data"]["id"] == "LOC001" and row.request_body == "" for row in rows)
    assert all(row.duration_ms is not None and row.duration_ms > 0 and row.error == "" for row in rows)


@override_settings(OCPI_TRAFFIC_LOG_FLUSH_SECONDS=3600.0)
def test_batched_traffic_log_keeps_a_body_with_a_nul_byte_and_the_rows_around_it(
    partner: tuple[Partner, Client],
) -> None:
    """PostgreSQL text cannot hold NUL: such a body is stored with U+FFFD instead, and the batch it is in (written
    with one COPY) is not lost."""
    _, client = partner
    locations(1)
    url = "/ocpi/2.2.1/emsp/locations/DE/PRC/PLOC9/EVSE1"
    assert client.get(f"{LIST}/LOC000", HTTP_X_REQUEST_ID="nul-0").status_code == 200
    answer = client.patch(url, data=b'{"status": "\x00"}', content_type="application/json", HTTP_X_REQUEST_ID="nul-1")
    assert answer.status_code == 400
    assert answer.json()["status_code"] == 2001
    assert client.get(f"{LIST}/LOC000", HTTP_X_REQUEST_ID="nul-2").status_code == 200
    assert traffic_log_flush() == 3
    rows = {row.request_id: row for row in TrafficLog.objects.filter(request_id__startswith="nul-")}
    assert sorted(rows) == ["nul-0", "nul-1", "nul-2"]
    assert rows["nul-1"].request_body == '{"status": "\ufffd"}'
    assert rows["nul-1"].http_status == 400
    assert rows["nul-1"].ocpi_status_code == 2001


@override_settings(OCPI_COUNT_CACHE_SECONDS=60)
def test_offset_pages_from_anchors_equal_plain_offset_pages(own_parties: list[Party], monkeypatch: Any) -> None:
    stamps = [T0 + timedelta(minutes=i // 2) for i in range(23)]  # pairs share a last_updated: pk breaks the tie
    parties = Party.objects.bulk_create(
        Party(country_code="ZZ", party_id=f"{i:03d}", role=Role.CPO, name="probe") for i in range(len(stamps))
    )
    for party, when in zip(parties, stamps, strict=True):
        party.updated_at = when
    Party.objects.bulk_update(parties, ["updated_at"])
    queryset = Party.objects.filter(country_code="ZZ")
    expected = [p.pk for p in sorted(parties, key=lambda p: (p.updated_at, p.pk))]
    monkeypatch.setattr(pagination, "ANCHOR_EVERY", 4)
    for offset in range(0, 25):
        cache.clear()  # a deep offset first: the count then comes from the anchors' scan
        pagination._kept.clear()  # and what this process kept of them
        page = pagination.paginate(queryset, QueryDict(f"offset={offset}&limit=3"), "/x", date_field="updated_at")
        assert [p.pk for p in page.objects] == expected[offset : offset + 3], offset
        assert page.headers["X-Total-Count"] == str(len(stamps)), offset


@pytest.mark.parametrize("fields", [{"status": "CHARGING"}, {"status": "OUTOFORDER", "floor_level": "-1"}])
def test_patch_of_an_evse_rewrites_the_cached_json_in_place(
    partner: tuple[Partner, Client], django_assert_max_num_queries: Any, fields: dict[str, Any]
) -> None:
    partner_row, client = partner
    key = Key("DE", "PRC", "PLOC1")
    location_put(partner=partner_row, key=key, data=location_data("PLOC1", country_code="DE", party_id="PRC", evses=2))
    evse = Evse.objects.filter(location__ocpi_id="PLOC1").order_by("position").last()
    assert evse is not None
    stamp = format_datetime(datetime.now(UTC))
    with HOT:
        from ocpi_core.hot import partner_owns

        client.get(LIST)  # warm the token
        client.get(LIST)  # on SQLite the parties once more (see `partner`)
        assert partner_owns(partner=partner_row, country_code="DE", party_id="PRC")  # and the partner's parties
        # token, location + EVSE (one statement), UPDATEs EVSE + location, the status history INSERT and its daily
        # rollup (previous and next change in one statement, one upsert per 500 days since the previous change:
        # here the EVSE last changed in 2024), two savepoints
        with django_assert_max_num_queries(11):
            response = client.patch(
                f"/ocpi/2.2.1/emsp/locations/DE/PRC/PLOC1/{evse.uid}",
                orjson.dumps({**fields, "last_updated": stamp}),
                content_type="application/json",
            )
    assert response.status_code == 200, response.content
    location = Location.objects.get(ocpi_id="PLOC1")
    assert location.doc == orjson.dumps(location_render_rows(location.pk)).decode()
    assert format_datetime(location.last_updated) == stamp


def test_cached_json_columns_are_stored_lz4_compressed(own_parties: list[Party]) -> None:
    """Reading a page is mostly decompressing its documents: lz4 reads about twice as fast as pglz (bench/README)."""

    if connection.vendor != "postgresql":
        pytest.skip("column compression is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        if cursor.fetchone() != (True,):
            pytest.skip("this PostgreSQL has no lz4 (the migration keeps the default there)")
        cursor.execute(
            "SELECT attrelid::regclass::text, attcompression FROM pg_attribute "
            "WHERE (attname = 'doc' AND attrelid IN ('locations_location'::regclass, 'tariffs_tariff'::regclass)) "
            "OR (attname LIKE '%_body' AND attrelid = 'ocpi_core_trafficlog'::regclass)"
        )
        assert sorted(cursor.fetchall()) == [
            ("locations_location", "l"),
            ("ocpi_core_trafficlog", "l"),
            ("ocpi_core_trafficlog", "l"),
            ("tariffs_tariff", "l"),
        ]
    big = own_location("BIG", evses=8)  # a few KB of JSON: compressed out of line
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(doc) FROM locations_location WHERE id = %s", [big.pk])
        assert cursor.fetchone() == ("lz4",)


@override_settings(OCPI_TRAFFIC_LOG_BODY_LIMIT=100)
def test_logged_bodies_are_cut_and_a_token_at_the_cut_is_still_redacted() -> None:
    secret = "S" * 64
    filler = '{"items": ["' + "x" * 80 + '"], '
    straddling = (filler + f'"token": "{secret}"}}').encode()  # the token starts before the cut and ends after it
    logged = body_for_log(straddling)
    assert secret[:5] not in logged
    assert len(logged) == 101
    assert logged.endswith("…")
    broken = straddling[:-1]  # not JSON any more: the fallback pattern redacts it
    assert secret[:5] not in body_for_log(broken)
    far = (filler + '"more": "' + "y" * 5000 + f'", "token": "{secret}"}}').encode()  # never kept: not looked at
    assert body_for_log(far) == far[:100].decode() + "…"
    assert body_for_log(b'{"token": "abc"}') == '{"token":"***"}'


def test_statements_are_prepared_on_postgresql(partner: tuple[Partner, Client]) -> None:
    """Django turns psycopg's prepared statements off unless `prepare_threshold` is set (postgres_options): the hot
    paths' statements are prepared at their first run, the ORM's after 5 runs on a connection."""
    if connection.vendor != "postgresql" or not settings.OCPI_DB_PREPARE:
        pytest.skip("prepared statements are PostgreSQL's, and on unless OCPI_DB_PREPARE=false")
    _, client = partner
    locations(1)
    assert client.get(f"{LIST}/LOC000").status_code == 200
    for _ in range(6):
        assert Location.objects.filter(ocpi_id="LOC000").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('"token_hash" IN' in statement for statement in prepared)  # the token (ocpi_core.authentication)
    assert any('SELECT "doc" FROM "locations_location"' in statement for statement in prepared)  # locations.fast
    assert any(
        '"locations_location"."ocpi_id" = $2 LIMIT 1' in statement for statement in prepared
    )  # the ORM's, 6 runs


def _round_trips(call: Any) -> tuple[int, list[str]]:
    """How many times the client waited for PostgreSQL during `call()` (libpq's protocol trace: each turn from
    messages sent, F, to messages received, B, is one round trip), and the frontend messages sent (name and the
    start of their arguments)."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            call()
        finally:
            pgconn.untrace()
        trace.seek(0)
        directions = [line.split("\t", 1)[0] for line in trace.read().splitlines() if line[:2] in ("F\t", "B\t")]
        trace.seek(0)
        sent = [" ".join(line.split("\t")[2:])[:150] for line in trace.read().splitlines() if line.startswith("F\t")]
    turns = sum(1 for before, after in itertools.pairwise(directions) if (before, after) == ("F", "B"))
    return turns, sent


@HOT
def test_an_evse_status_patch_takes_five_round_trips(transactional_db: None, partner: tuple[Partner, Client]) -> None:
    """The receiver's hot write: BEGIN; the locking read of EVSE and location; the status history's row and its
    neighbours; EVSE, location, cached JSON and the history's rollup in one statement; COMMIT. The token is kept by
    the process (ocpi_core.hot): six round trips when it is read, seven when the rollup had its own statement.
    (Committed for real: in a test's transaction, savepoints.)"""
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement write is PostgreSQL's")
    partner_row, client = partner
    data = location_data("PLOC1", country_code="DE", party_id="PRC", evses=1, last_updated="2024-03-01T00:00:00Z")
    location_put(partner=partner_row, key=Key("DE", "PRC", "PLOC1"), data=data)
    evse = Evse.objects.get(location__ocpi_id="PLOC1")
    url = f"/ocpi/2.2.1/emsp/locations/DE/PRC/PLOC1/{evse.uid}"

    def patch(status: str, minute: int) -> Any:
        body = orjson.dumps({"status": status, "last_updated": f"2024-03-02T00:{minute:02d}:00Z"})
        response = client.patch(url, body, content_type="application/json")
        assert response.status_code == 200, response.content
        return response

    for minute, status in enumerate(["CHARGING", "AVAILABLE", "BLOCKED"] * 3):  # warm: every statement prepared
        patch(status, minute)
    turns, sent = _round_trips(lambda: patch("CHARGING", 10))
    assert turns == 5, "\n".join(sent)
    assert sent[-1].split() == ["Query", '"COMMIT"'], sent
    with override_settings(OCPI_TOKEN_CACHE=False):
        turns, sent = _round_trips(lambda: patch("AVAILABLE", 11))
    assert turns == 6, "\n".join(sent)
    assert sent[0].startswith("Bind"), sent  # the token's read, before BEGIN
    assert 'Query  "BEGIN"' in sent, sent
    patch("CHARGING", 12)
    evse.refresh_from_db()
    assert evse.status == "CHARGING"
    history = list(EvseStatusChange.objects.filter(evse=evse).order_by("since").values_list("status", flat=True))
    assert history[-1] == "CHARGING"
    assert EvseStatusDay.objects.filter(evse=evse, status="BLOCKED").exists()  # the rollup, written with the EVSE


@override_settings(OCPI_COUNT_CACHE_SECONDS=60)
def test_a_page_holding_the_end_of_the_list_knows_its_total_exactly(partner: tuple[Partner, Client]) -> None:
    """A count kept from earlier never contradicts the objects a page shows: a list of one page, or the last page
    of an offset walk, counts what it serves. Pages before the end use the kept count."""
    _, client = partner
    locations(3)
    assert client.get(f"{LIST}?limit=2").headers["X-Total-Count"] == "3"  # counted, and kept for 60 s
    own_location("LOC100", last_updated=T0 + timedelta(days=1))
    assert client.get(f"{LIST}?limit=2").headers["X-Total-Count"] == "3"  # not the end: the kept count
    assert client.get(f"{LIST}?limit=10").headers["X-Total-Count"] == "4"  # one page: what it serves
    last = client.get(f"{LIST}?offset=2&limit=2")
    assert [item["id"] for item in orjson.loads(last.content)["data"]] == ["LOC002", "LOC100"]
    assert last.headers["X-Total-Count"] == "4"
    assert "Link" not in last.headers
