"""The daily session rollup (dashboard.session_rollup, dashboard.models.SessionDay): its rows follow every write of a
session (the eMSP receiver's PUT and PATCH over HTTP, a pull, our own sessions through the platform API, the ORM: update
fields, deletes, instances not loaded from the database), a write costs one rollup statement (two when the session
leaves a row), concurrent writers to one row both count, the rebuild equals the incremental rollup, and the dashboard's
figures from the rollup equal those of the raw queries over the Session table (the code before the rollup) on a
random data set, for every filter."""

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.db.models.signals import post_save, pre_save
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_httpserver import HTTPServer

from conftest import REPO, auth_header, envelope_body, make_partner
from dashboard import services, session_rollup
from dashboard.models import SessionDay
from dashboard.services import Filters, dashboard_figures
from dashboard.session_rollup import session_rollup_rebuild
from locations.tests.factories import own_location
from ocpi_core.constants import Role
from ocpi_core.models import PartnerEndpoint, Party
from ocpi_core.sync import sync_run
from sessions_app.models import Session, SessionStatus
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location, session_data

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
HOUR = 3600 * 10**6  # microseconds
SESSION_FIGURES = ("totals", "per_day", "energy_by_location", "energy_by_partner", "energy_mix")

Row = tuple[str, date, int, str, str, str, str, str]


def rollup() -> dict[Row, tuple[int, Decimal, int, int]]:
    """The rollup's rows: key -> (sessions, kWh, ended, duration in microseconds, a whole number)."""
    return {
        row[:8]: (*row[8:11], int(row[11]))
        for row in SessionDay.objects.values_list(
            "grain",
            "day",
            "partner_pk",
            "country_code",
            "party_id",
            "location_id",
            "token_country_code",
            "token_party_id",
            "sessions",
            "kwh",
            "ended",
            "duration_us",
        )
    }


def rows3(
    day: date,
    partner_pk: int,
    cpo: tuple[str, str, str],
    token: tuple[str, str],
    amounts: tuple[int, str, int, int],
) -> dict[Row, tuple[int, Decimal, int, int]]:
    """The three rows (FULL, LOCATION, PARTY) of sessions with the same day, location and token party."""
    value = (amounts[0], Decimal(amounts[1]), amounts[2], amounts[3])
    return {
        ("F", day, partner_pk, *cpo, *token): value,
        ("L", day, partner_pk, *cpo, "", ""): value,
        ("P", day, partner_pk, "", "", "", *token): value,
    }


# SQLite (the embedded default) stores a decimal column as a binary float where it holds more than an integer
# (NUMERIC affinity) and adds them as floats: its sums agree with the exact ones to about 15 significant digits, not
# always to the last kWh digit, nor to the microsecond past 2**53. Django rounds what it writes there half to even;
# PostgreSQL rounds half away from zero. Exact sums are checked on PostgreSQL;
# test_rollup_on_the_embedded_sqlite_default checks the rollup on SQLite.
EXACT_SUMS = pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite sums decimals as binary floats")


def assert_rebuild_equals_incremental() -> dict[Row, tuple[int, Decimal, int, int]]:
    incremental = rollup()
    written = session_rollup_rebuild()
    assert rollup() == incremental
    assert written == len(incremental)
    return incremental


def send(client: Client, method: str, path: str, data: Any) -> Any:
    response = getattr(client, method)(path, orjson.dumps(data), "application/json")
    assert response.status_code in (200, 201), response.content
    return response


def test_rollup_follows_partner_sessions_put_and_patched_over_http(staff: Client) -> None:
    """The eMSP receiver: a PUT creates, a PATCH changes kWh and ends it, a PUT moves a session to another day and
    location, a PATCH to INVALID takes it out; the dashboard API reads the result."""
    cpo, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    base = "/ocpi/2.2.1/emsp/sessions/DE/CPO"
    where = ("DE", "CPO", "LOC1")
    s1 = session_data("S1", start_date_time="2024-01-01T10:00:00Z", last_updated="2024-01-01T10:00:00Z")
    send(client, "put", f"{base}/S1", s1)
    assert rollup() == rows3(D1, cpo.pk, where, ("", ""), (1, "1.25", 0, 0))

    end = {"end_date_time": "2024-01-01T11:30:00Z", "status": "COMPLETED"}
    send(client, "patch", f"{base}/S1", {"kwh": 5.5, **end, "last_updated": "2024-01-01T11:30:00Z"})
    assert rollup() == rows3(D1, cpo.pk, where, ("", ""), (1, "5.5", 1, 90 * 60 * 10**6))

    s2 = session_data("S2", start_date_time="2024-01-01T20:00:00Z", kwh=2, last_updated="2024-01-01T20:00:00Z")
    send(client, "put", f"{base}/S2", s2)
    assert rollup() == rows3(D1, cpo.pk, where, ("", ""), (2, "7.5", 1, 90 * 60 * 10**6))

    moved = {
        **s1,
        "start_date_time": "2024-01-02T23:00:00Z",  # ends after midnight: counts on the day it started
        "end_date_time": "2024-01-03T01:00:00Z",
        "location_id": "LOC2",
        "kwh": 3,
        "status": "COMPLETED",
        "last_updated": "2024-01-03T01:00:00Z",
    }
    send(client, "put", f"{base}/S1", moved)
    assert rollup() == {
        **rows3(D1, cpo.pk, where, ("", ""), (1, "2", 0, 0)),
        **rows3(D2, cpo.pk, ("DE", "CPO", "LOC2"), ("", ""), (1, "3", 1, 2 * HOUR)),
    }
    assert_rebuild_equals_incremental()

    send(client, "patch", f"{base}/S2", {"status": "INVALID", "last_updated": "2024-01-03T02:00:00Z"})
    assert rollup() == rows3(D2, cpo.pk, ("DE", "CPO", "LOC2"), ("", ""), (1, "3", 1, 2 * HOUR))
    assert_rebuild_equals_incremental()

    body = staff.get("/api/dashboard/", {"from": "2024-01-01", "to": "2024-01-03"}).json()
    assert body["totals"] == {"sessions": 1, "kwh": 3.0, "avg_kwh": 3.0, "avg_duration_minutes": 120.0}
    assert [day["sessions"] for day in body["per_day"]] == [0, 1, 0]
    assert [(s["key"], s["days"]) for s in body["energy_by_partner"]] == [(f"cpo:{cpo.pk}", [0.0, 3.0, 0.0])]
    assert body["energy_by_location"] == []  # a partner's location is not one of ours


@EXACT_SUMS
def test_sessions_spanning_the_whole_datetime_range_do_not_overflow_the_duration(own_parties: list[Party]) -> None:
    """Sessions from 0001-01-01 to 9999-12-31 (valid OCPI DateTimes; 0001-01-01 is what a charger with an unset .NET
    clock sends) last some 3.2e17 microseconds each: thirty of them on one day and location summed past a bigint and
    the thirtieth PUT answered 500. The rollup adds them exactly and the rebuild agrees."""
    cpo, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    first, last = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"
    count = 32
    for n in range(count):
        data = session_data(f"S{n}", start_date_time=first, end_date_time=last, status="COMPLETED", last_updated=last)
        data["charging_periods"][0]["start_date_time"] = first
        send(client, "put", f"/ocpi/2.2.1/emsp/sessions/DE/CPO/S{n}", data)
    each = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - datetime(1, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    assert count * each > 2**63 - 1  # what a bigint cannot hold
    amounts = (count, str(Decimal("1.25") * count), count, count * each)
    assert rollup() == rows3(date(1, 1, 1), cpo.pk, ("DE", "CPO", "LOC1"), ("", ""), amounts)
    assert_rebuild_equals_incremental()


def test_rollup_follows_a_pull_of_a_partners_sessions(own_parties: list[Party], httpserver: HTTPServer) -> None:
    cpo, _ = make_partner(name="cpo", base_url=httpserver.url_for("/ocpi"), roles=(("DE", "CPO", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=cpo, identifier="sessions", role="SENDER", url=httpserver.url_for("/ocpi/2.2.1/sessions")
    )
    listed = [
        session_data("S1", start_date_time="2024-01-01T10:00:00Z", kwh=2.5),
        session_data("S2", start_date_time="2024-01-01T12:00:00Z", kwh=1.5, status="INVALID"),
    ]
    httpserver.expect_request("/ocpi/2.2.1/sessions", method="GET").respond_with_data(
        envelope_body(listed), headers={"X-Total-Count": "2", "X-Limit": "100"}
    )
    assert sync_run(partner=cpo, module="sessions").received == 2
    assert rollup() == rows3(D1, cpo.pk, ("DE", "CPO", "LOC1"), ("", ""), (1, "2.5", 0, 0))
    assert_rebuild_equals_incremental()


def test_rollup_follows_own_sessions_through_the_platform_api(staff: Client) -> None:
    """Our own sessions: start, kWh, stop; a PENDING session started later moves to that day; INVALID leaves."""
    own_charging_location("LOC1")
    make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    where, token = ("NL", "OWN", "LOC1"), ("DE", "PRT")
    start = {
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "cdr_token": cdr_token(),
        "auth_method": "AUTH_REQUEST",
        "session_id": "P1",
        "start": "2024-01-01T10:00:00Z",
    }
    send(staff, "post", "/api/sessions/", start)
    assert rollup() == rows3(D1, 0, where, token, (1, "0", 0, 0))
    send(staff, "patch", "/api/sessions/NL/OWN/P1", {"kwh": "7.5", "at": "2024-01-01T11:00:00Z"})
    assert rollup() == rows3(D1, 0, where, token, (1, "7.5", 0, 0))
    send(staff, "post", "/api/sessions/NL/OWN/P1/stop", {"at": "2024-01-01T12:00:00Z"})
    assert rollup() == rows3(D1, 0, where, token, (1, "7.5", 1, 2 * HOUR))

    pending = {**start, "session_id": "P2", "status": "PENDING", "start": "2024-01-01T08:00:00Z"}
    send(staff, "post", "/api/sessions/", pending)
    assert rollup() == rows3(D1, 0, where, token, (2, "7.5", 1, 2 * HOUR))
    send(staff, "patch", "/api/sessions/NL/OWN/P2", {"status": "ACTIVE", "at": "2024-01-03T09:00:00Z"})
    day1 = rows3(D1, 0, where, token, (1, "7.5", 1, 2 * HOUR))
    assert rollup() == {**day1, **rows3(D3, 0, where, token, (1, "0", 0, 0))}  # started on day 3
    assert_rebuild_equals_incremental()
    send(staff, "post", "/api/sessions/NL/OWN/P2/stop", {"status": "INVALID", "at": "2024-01-03T10:00:00Z"})
    assert rollup() == day1
    assert_rebuild_equals_incremental()

    body = staff.get("/api/dashboard/", {"from": "2024-01-01", "to": "2024-01-03"}).json()
    assert body["totals"] == {"sessions": 1, "kwh": 7.5, "avg_kwh": 7.5, "avg_duration_minutes": 120.0}
    assert [(s["key"], s["days"]) for s in body["energy_by_location"]] == [("LOC1", [7.5, 0.0, 0.0])]
    assert [(s["key"], s["days"]) for s in body["energy_by_partner"]] == [("emsp:DE*PRT", [7.5, 0.0, 0.0])]


def make_session(
    ocpi_id: str,
    start: datetime,
    kwh: str,
    *,
    minutes: float | None = 60,
    location: str = "LOC1",
    token: tuple[str, str] = ("DE", "PRT"),
    party: tuple[str, str] = ("NL", "OWN"),
    partner: Any = None,
    status: str = SessionStatus.COMPLETED,
) -> Session:
    return Session.objects.create(
        partner=partner,
        country_code=party[0],
        party_id=party[1],
        ocpi_id=ocpi_id,
        start_date_time=start,
        end_date_time=start + timedelta(minutes=minutes) if minutes is not None else None,
        kwh=Decimal(kwh),
        cdr_token={"country_code": token[0], "party_id": token[1], "uid": "U1", "type": "RFID", "contract_id": "C1"},
        token_country_code=token[0],
        token_party_id=token[1],
        token_uid="U1",
        auth_method="WHITELIST",
        location_id=location,
        evse_uid="E1",
        connector_id="1",
        currency="EUR",
        status=status,
        last_updated=start,
    )


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def test_rollup_follows_orm_writes_update_fields_deletes_and_instances_not_loaded(own_parties: list[Party]) -> None:
    where, token = ("NL", "OWN", "LOC1"), ("DE", "PRT")
    one = make_session("S1", at(D1, 10), "10")
    make_session("S2", at(D1, 12), "5", minutes=None)
    assert rollup() == rows3(D1, 0, where, token, (2, "15", 1, HOUR))

    one.kwh = Decimal("12")
    one.location_id = "LOC2"  # not written: update_fields names kwh only
    one.save(update_fields=["kwh"])
    assert rollup() == rows3(D1, 0, where, token, (2, "17", 1, HOUR))
    one.refresh_from_db()
    assert one.location_id == "LOC1"

    one.save(update_fields=["charging_preferences_result"])  # nothing the rollup counts: no statement
    partial = Session.objects.only("pk", "kwh").get(ocpi_id="S2")  # loaded without the rollup's fields
    partial.kwh = Decimal("6")
    partial.save(update_fields=["kwh"])
    assert rollup() == rows3(D1, 0, where, token, (2, "18", 1, HOUR))

    by_hand = Session.objects.get(ocpi_id="S2")
    by_hand.__dict__.pop("_loaded_values")  # as if built by hand with the primary key of a stored session
    by_hand.start_date_time = at(D2, 1)
    by_hand.save()
    assert rollup() == {
        **rows3(D1, 0, where, token, (1, "12", 1, HOUR)),
        **rows3(D2, 0, where, token, (1, "6", 0, 0)),
    }
    kept = rows3(D2, 0, where, token, (1, "6", 0, 0))
    Session.objects.filter(ocpi_id="S1").delete()
    assert rollup() == kept
    make_session("S3", at(D2, 2), "1.0000005")  # more decimals than the column keeps: rounded as the database does
    rounded = "1.000000" if connection.vendor == "sqlite" else "1.000001"  # (see EXACT_SUMS)
    assert Session.objects.get(ocpi_id="S3").kwh == Decimal(rounded)
    assert rollup() == rows3(D2, 0, where, token, (2, str(6 + Decimal(rounded)), 1, HOUR))
    assert_rebuild_equals_incremental()
    Session.objects.get(ocpi_id="S3").delete()
    Session.objects.get(ocpi_id="S2").delete()
    assert rollup() == {}


def rollup_statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries if SessionDay._meta.db_table in q["sql"]]


def test_a_session_write_costs_one_rollup_statement(own_parties: list[Party]) -> None:
    """One upsert per write (none when nothing the rollup counts changed); a delete of the rows left empty only when
    the session leaves a row. The state a write replaces is the row the service loaded: no extra read."""
    own_charging_location("LOC1")
    start: dict[str, Any] = {"location_id": "LOC1", "evse_uid": "EVSE1", "connector_id": "1", "cdr_token": cdr_token()}
    with CaptureQueriesContext(connection) as queries:
        session = session_start(**start, auth_method="WHITELIST", status=SessionStatus.PENDING, start=at(D1, 1))
    assert rollup_statements(queries) == ["INSERT"]
    with CaptureQueriesContext(connection) as queries:
        session_update(session=session, kwh=Decimal("3.5"), at=at(D1, 2))
    assert rollup_statements(queries) == ["INSERT"]
    with CaptureQueriesContext(connection) as queries:
        session_update(session=session, total_cost={"excl_vat": Decimal("1.1")}, at=at(D1, 3))
    assert rollup_statements(queries) == []
    with CaptureQueriesContext(connection) as queries:
        session_update(session=session, status=SessionStatus.ACTIVE, at=at(D2, 4))  # starts now: another day
    assert rollup_statements(queries) == ["INSERT", "DELETE"]
    with CaptureQueriesContext(connection) as queries:
        session_stop(session=session, at=at(D2, 5))
    assert rollup_statements(queries) == ["INSERT"]
    other = session_start(**start, auth_method="WHITELIST", start=at(D2, 6))
    with CaptureQueriesContext(connection) as queries:
        session_stop(session=other, at=at(D2, 7), status=SessionStatus.INVALID)
    assert rollup_statements(queries) == ["INSERT", "DELETE"]
    assert rollup() == rows3(D2, 0, ("NL", "OWN", "LOC1"), ("DE", "PRT"), (1, "3.5", 1, HOUR))

    # all in all: the same write costs exactly one statement more than without the rollup's receivers
    third = session_start(**start, auth_method="WHITELIST", start=at(D3, 1))
    with CaptureQueriesContext(connection) as with_rollup:
        session_update(session=third, kwh=Decimal("1"), at=at(D3, 2))
    assert pre_save.disconnect(sender=Session, dispatch_uid="dashboard_session_rollup_before")
    assert post_save.disconnect(sender=Session, dispatch_uid="dashboard_session_rollup")
    try:
        with CaptureQueriesContext(connection) as without:
            session_update(session=third, kwh=Decimal("2"), at=at(D3, 3))
    finally:
        pre_save.connect(session_rollup._before_save, sender=Session, dispatch_uid="dashboard_session_rollup_before")
        post_save.connect(session_rollup._after_save, sender=Session, dispatch_uid="dashboard_session_rollup")
    assert len(with_rollup.captured_queries) == len(without.captured_queries) + 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_row_both_count() -> None:
    """A second transaction writes a session of the same day, location and party while the first one is still open:
    it waits for the first one's row and adds to it (a recount from the Session table would miss the first one's
    session, not yet committed when it counted, and overwrite the row)."""
    first_written = threading.Event()
    errors: list[BaseException] = []
    waited: list[float] = []

    def first() -> None:
        try:
            with transaction.atomic():
                make_session("S1", at(D1, 10), "10")
                first_written.set()
                time.sleep(1)  # the second writer now waits for this transaction's row
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            assert first_written.wait(10)
            started = time.monotonic()
            with transaction.atomic():
                make_session("S2", at(D1, 11), "5")
            waited.append(time.monotonic() - started)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert waited[0] > 0.3  # it did write while the first transaction was open, and waited for its row
    assert rollup() == rows3(D1, 0, ("NL", "OWN", "LOC1"), ("DE", "PRT"), (2, "15", 2, 2 * HOUR))


# --- the figures from the rollup equal those of the raw queries (the dashboard's code before the rollup) ---


def raw_sessions(filters: Filters) -> QuerySet[Session]:
    queryset = Session.objects.filter(start_date_time__gte=filters.lower, start_date_time__lt=filters.upper).exclude(
        status=SessionStatus.INVALID
    )
    if filters.location:
        queryset = queryset.filter(location_id=filters.location)
    if filters.partner is not None:
        scope = Q(partner_id=filters.partner)
        for country_code, party_id in Party.objects.filter(partner_id=filters.partner).values_list(
            "country_code", "party_id"
        ):
            scope |= Q(partner__isnull=True, token_country_code=country_code, token_party_id=party_id)
        queryset = queryset.filter(scope)
    return queryset


def raw_figures(filters: Filters) -> dict[str, Any]:
    """The session figures as the dashboard computed them from the Session table before the rollup."""
    sessions = raw_sessions(filters)
    duration = ExpressionWrapper(F("end_date_time") - F("start_date_time"), output_field=DurationField())
    by_day = sessions.annotate(day=TruncDate("start_date_time"))
    rows: dict[date, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in by_day.values("day")
        .annotate(sessions=Count("id"), energy=Sum("kwh"), avg_kwh=Avg("kwh"), avg_duration=Avg(duration))
        .order_by("day")
    }
    per_day = []
    for day in filters.days:
        row = rows.get(day, {})
        average = row.get("avg_duration")
        per_day.append(
            {
                "date": day.isoformat(),
                "sessions": row.get("sessions", 0),
                "kwh": services._num(row.get("energy")),
                "avg_kwh": services._num(row.get("avg_kwh")),
                "avg_duration_minutes": round(average.total_seconds() / 60, 1) if average is not None else None,
            }
        )
    durations = sessions.filter(end_date_time__isnull=False).aggregate(avg=Avg(duration))["avg"]
    totals = sessions.aggregate(energy=Sum("kwh"), avg_kwh=Avg("kwh"))
    own, theirs = by_day.filter(partner__isnull=True), by_day.filter(partner__isnull=False)
    by_location = own.values_list("location_id", "day").annotate(Sum("kwh"), Count("id")).order_by()
    by_token = own.values_list("token_country_code", "token_party_id", "day").annotate(Sum("kwh"), Count("id"))
    by_cpo = theirs.values_list("partner_id", "day").annotate(Sum("kwh"), Count("id")).order_by()
    partner_rows: Iterable[tuple[int, str, str, date, Decimal | None, int]] = [
        *((0, cc, pid, day, kwh, n) for cc, pid, day, kwh, n in by_token.order_by()),
        *((partner_id, "", "", day, kwh, n) for partner_id, day, kwh, n in by_cpo),
    ]
    per_location = sessions.values_list("country_code", "party_id", "location_id").annotate(Sum("kwh")).order_by()
    return {
        "totals": {
            "sessions": sum(d["sessions"] for d in per_day),
            "kwh": services._num(totals["energy"]),
            "avg_kwh": services._num(totals["avg_kwh"]),
            "avg_duration_minutes": round(durations.total_seconds() / 60, 1) if durations is not None else None,
        },
        "per_day": per_day,
        "energy_by_location": services.series_json(services.location_series(by_location), filters.days),
        "energy_by_partner": services.series_json(services.partner_series(partner_rows), filters.days),
        "energy_mix": services.mix_of(per_location),
    }


@EXACT_SUMS
def test_figures_from_the_rollup_equal_the_raw_queries_on_random_sessions(own_parties: list[Party]) -> None:
    """Random sessions (ours and partners', ended or not, across midnights, INVALID ones, odd kWh), then random
    changes through the ORM (kWh, moves to other days, locations and tokens, INVALID and back, deletes): the rollup
    equals its rebuild (also with the migration's models), and every filter gives the raw queries' figures."""
    rng = random.Random(6)  # noqa: S311 (test data)
    Party.objects.create(country_code="NL", party_id="OW2", role=Role.CPO, name="Second own CPO")
    emsp_a, _ = make_partner(name="emsp a", roles=(("DE", "PRT", Role.EMSP), ("DE", "PRU", Role.EMSP)))
    emsp_b, _ = make_partner(name="emsp b", roles=(("BE", "BEE", Role.EMSP),))
    cpo_c, _ = make_partner(name="cpo c", roles=(("DE", "CPO", Role.CPO),))
    cpo_d, _ = make_partner(name="cpo d", roles=(("FR", "CPF", Role.CPO), ("FR", "EMF", Role.EMSP)))
    nobody, _ = make_partner(name="no parties", roles=())
    green = {"is_green_energy": True, "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 50}]}
    grey = {
        "is_green_energy": False,
        "energy_sources": [{"source": "COAL", "percentage": 80}, {"source": "WIND", "percentage": 20}],
    }
    own_location("LOC1", energy_mix=green)
    own_location("LOC2", energy_mix=grey)
    tokens = [("DE", "PRT"), ("DE", "PRU"), ("BE", "BEE"), ("NL", "XYZ"), ("NL", "OWE"), ("FR", "EMF")]
    start = datetime(2024, 3, 1, tzinfo=UTC)

    def random_fields() -> dict[str, Any]:
        theirs = rng.random() < 0.3
        when = start + timedelta(days=rng.randrange(10), microseconds=rng.randrange(86400 * 10**6))
        if rng.random() < 0.05:
            when = when.replace(hour=0, minute=0, second=0, microsecond=0)  # exactly midnight
        ended = rng.random() < 0.8
        token = rng.choice(tokens)
        return {
            "partner": rng.choice([cpo_c, cpo_d]) if theirs else None,
            "country_code": "DE" if theirs else "NL",
            "party_id": "CPO" if theirs else rng.choice(["OWN", "OWN", "OW2"]),
            "location_id": rng.choice(["PLOC1", "LOC1"] if theirs else ["LOC1", "LOC2", "LOC3", "loc1"]),
            "start_date_time": when,
            "end_date_time": when + timedelta(microseconds=rng.randrange(30 * HOUR)) if ended else None,
            "kwh": Decimal(rng.randrange(0, 80_000_000)) / 10 ** rng.choice([0, 3, 6, 7]),
            "token_country_code": token[0],
            "token_party_id": token[1],
            "status": rng.choice(["ACTIVE", "COMPLETED", "COMPLETED", "COMPLETED", "INVALID", "PENDING"]),
        }

    ids = []
    for number in range(300):
        fields = random_fields()
        session = make_session(f"R{number}", fields.pop("start_date_time"), "0")
        for name, value in fields.items():
            setattr(session, name, value)
        session.save()
        ids.append(session.pk)
    for _ in range(150):
        session = Session.objects.get(pk=rng.choice(ids))
        action = rng.randrange(6)
        if action == 0:
            ids.remove(session.pk)
            session.delete()
            continue
        if action == 1:
            session.kwh = Decimal(rng.randrange(0, 10**9)) / 10**6
            session.save(update_fields=["kwh"])
            continue
        changed = random_fields()
        for name in rng.sample(sorted(changed), k=rng.randrange(1, 5)):
            setattr(session, name, changed[name])
        if session.end_date_time is not None and session.end_date_time < session.start_date_time:
            session.end_date_time = None
        session.save()
    incremental = assert_rebuild_equals_incremental()
    assert len({row[0] for row in incremental}) == 3

    state = MigrationExecutor(connection).loader.project_state(("dashboard", "0003_session_day")).apps
    session_rollup_rebuild(
        models=(state.get_model("sessions_app", "Session"), state.get_model("dashboard", "SessionDay"))
    )
    assert rollup() == incremental

    periods = [
        (start.date() - timedelta(days=1), start.date() + timedelta(days=11)),
        (start.date() + timedelta(days=2), start.date() + timedelta(days=5)),
        (start.date() + timedelta(days=4), start.date() + timedelta(days=4)),
    ]
    scopes: list[tuple[str | None, int | None]] = [(None, None), ("LOC1", None), ("loc1", None), ("PLOC1", None)]
    scopes += [("NOPE", None), ("LOC2", emsp_a.pk), ("LOC1", cpo_c.pk), ("PLOC1", cpo_d.pk)]
    scopes += [(None, p.pk) for p in (emsp_a, emsp_b, cpo_c, cpo_d, nobody)] + [(None, 0), (None, 10**9)]

    def compare() -> int:
        compared = 0
        for first, last in periods:
            for location, partner in scopes:
                filters = Filters(first, last, location, partner)
                figures = dashboard_figures(filters)
                assert {name: figures[name] for name in SESSION_FIGURES} == raw_figures(filters), filters
                compared += figures["totals"]["sessions"]
        return compared

    assert compare() > 500  # the comparisons were not of empty figures
    assert dashboard_figures(Filters(*periods[0]))["energy_mix"]["renewable_share"] is not None
    # our second CPO party used the same location ids (a location's days add up two rows); now only one uses them
    for session in Session.objects.filter(party_id="OW2"):
        session.party_id = "OWN"
        session.save()
    assert not SessionDay.objects.filter(party_id="OW2").exists()
    assert compare() > 500
    assert_rebuild_equals_incremental()


_SQLITE = r"""
import json
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.contrib.auth import get_user_model
from dashboard.models import SessionDay
from dashboard.session_rollup import session_rollup_rebuild
from sessions_app.models import Session

call_command("migrate", "--noinput", "-v", "0")
call_command("ocpi_demo", stdout=open("/dev/null", "w"))  # sessions through the services: the incremental rollup
rows = lambda: {r[:8]: (r[8], round(float(r[9]), 6), r[10], r[11]) for r in SessionDay.objects.values_list(
    "grain", "day", "partner_pk", "country_code", "party_id", "location_id", "token_country_code", "token_party_id",
    "sessions", "kwh", "ended", "duration_us")}
incremental = rows()
written = session_rollup_rebuild()
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.create_user("rollup-check", is_staff=True, is_superuser=True))
totals = client.get("/admin/dashboard/", {"format": "csv"})
print(json.dumps({
    "same": incremental == rows(), "written": written, "rows": len(incremental),
    "sessions": Session.objects.exclude(status="INVALID").count(),
    "rollup_sessions": sum(v[0] for k, v in incremental.items() if k[0] == "P"),
    "csv": totals.status_code,
}))
"""


def test_rollup_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    """SQLite (`scripts/run`'s default): the upsert and the rebuild's SQL work, and agree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_", "CELERY_", "OCPI_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="",
        CELERY_EMBEDDED_BROKER_DIR=str(tmp_path / "broker"),
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [sys.executable, "-c", _SQLITE], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["same"] is True
    assert out["written"] == out["rows"] > 0
    assert out["rollup_sessions"] == out["sessions"] > 0
    assert out["csv"] == 200
