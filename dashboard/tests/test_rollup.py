"""The daily availability rollup (dashboard.rollup): intervals across midnight and several days, changes arriving out
of order, the rebuild, the PATCH path, and availability() from the rollup equal to the raw history's computation."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.test import Client, override_settings
from django.utils import timezone

from conftest import auth_header, make_partner
from dashboard import services
from dashboard.models import EvseStatusChange, EvseStatusDay
from dashboard.rollup import day_spans, rollup_rebuild, status_change_add
from dashboard.services import Filters, availability
from locations.models import Evse
from locations.services import Key, location_put
from locations.tests.factories import location_data, own_location
from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.models import Party

DAY1 = date(2025, 3, 1)
HISTORY_DAYS = 400  # the shipped OCPI_STATUS_HISTORY_DAYS (the test settings widen it: tests record 2025 stamps)
HOUR = 3600 * 10**6  # microseconds


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def rollup(evse: Evse) -> dict[tuple[date, str], int]:
    return {
        (day, status): us
        for day, status, us in EvseStatusDay.objects.filter(evse=evse, microseconds__gt=0).values_list(
            "day", "status", "microseconds"
        )
    }


@pytest.fixture
def evse(own_parties: list[Party]) -> Evse:
    own_location("LOC9")
    evse = Evse.objects.get(location__ocpi_id="LOC9")
    EvseStatusChange.objects.filter(evse=evse).delete()
    rollup_rebuild([evse.pk])
    return evse


def test_day_spans_cut_at_each_utc_midnight() -> None:
    assert list(day_spans(at(DAY1, 22), at(DAY1, 22))) == []
    assert list(day_spans(at(DAY1, 22), at(DAY1, 50))) == [
        (DAY1, 2 * HOUR),
        (DAY1 + timedelta(days=1), 24 * HOUR),
        (DAY1 + timedelta(days=2), 2 * HOUR),
    ]


HISTORY = [
    ("AVAILABLE", at(DAY1, 6)),
    ("CHARGING", at(DAY1, 22)),  # crosses midnight
    ("OUTOFORDER", at(DAY1, 26)),  # 02:00 on day 2, holds for two days and a half
    ("AVAILABLE", at(DAY1, 84)),  # 12:00 on day 4: the open interval, not in the rollup
]
EXPECTED = {
    (DAY1, "AVAILABLE"): 16 * HOUR,
    (DAY1, "CHARGING"): 2 * HOUR,
    (DAY1 + timedelta(days=1), "CHARGING"): 2 * HOUR,
    (DAY1 + timedelta(days=1), "OUTOFORDER"): 22 * HOUR,
    (DAY1 + timedelta(days=2), "OUTOFORDER"): 24 * HOUR,
    (DAY1 + timedelta(days=3), "OUTOFORDER"): 12 * HOUR,
}


def orm_create(evse: Evse, status: str, since: datetime) -> None:
    EvseStatusChange.objects.create(evse=evse, status=status, since=since)  # the rollup from its post_save signal


def service_add(evse: Evse, status: str, since: datetime) -> None:
    status_change_add(evse.pk, status, since)  # what the services call (PostgreSQL: insert and neighbours at once)


WRITERS = pytest.mark.parametrize("add", [orm_create, service_add], ids=["orm", "service"])


@WRITERS
def test_changes_in_order_across_midnight_and_several_days(evse: Evse, add: Any) -> None:
    for status, since in HISTORY:
        add(evse, status, since)
    assert rollup(evse) == EXPECTED
    assert rollup_rebuild([evse.pk]) == len(EXPECTED)
    assert rollup(evse) == EXPECTED


@WRITERS
@pytest.mark.parametrize("order", [(3, 2, 1, 0), (0, 3, 1, 2), (2, 0, 3, 1), (1, 3, 0, 2)])
def test_changes_out_of_order(evse: Evse, order: tuple[int, ...], add: Any) -> None:
    for index in order:
        status, since = HISTORY[index]
        add(evse, status, since)
    assert rollup(evse) == EXPECTED


@WRITERS
def test_two_changes_at_the_same_instant_follow_pk_order(evse: Evse, add: Any) -> None:
    add(evse, "AVAILABLE", at(DAY1, 0))
    add(evse, "BLOCKED", at(DAY1, 10))
    add(evse, "CHARGING", at(DAY1, 10))  # BLOCKED lasts 0 s
    add(evse, "AVAILABLE", at(DAY1, 12))
    add(evse, "OUTOFORDER", at(DAY1, 10))  # at the same instant again, later: after CHARGING, before 12:00
    assert rollup(evse) == {(DAY1, "AVAILABLE"): 10 * HOUR, (DAY1, "OUTOFORDER"): 2 * HOUR}
    rollup_rebuild([evse.pk])
    assert rollup(evse) == {(DAY1, "AVAILABLE"): 10 * HOUR, (DAY1, "OUTOFORDER"): 2 * HOUR}


def test_a_receiver_patch_keeps_the_rollup(own_parties: list[Party]) -> None:
    partner, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    data = location_data("PLOC1", country_code="DE", party_id="CPO", evses=1)
    data["evses"][0]["last_updated"] = data["last_updated"] = "2025-03-01T00:00:00Z"
    location_put(partner=partner, key=Key("DE", "CPO", "PLOC1"), data=data)
    evse = Evse.objects.get(location__ocpi_id="PLOC1")
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    url = f"/ocpi/2.2.1/emsp/locations/DE/CPO/PLOC1/{evse.uid}"
    for status, stamp in [("CHARGING", "2025-03-01T10:00:00Z"), ("AVAILABLE", "2025-03-02T01:00:00Z")]:
        response = client.patch(url, orjson.dumps({"status": status, "last_updated": stamp}), "application/json")
        assert response.status_code == 200, response.content
    assert rollup(evse) == {
        (DAY1, "AVAILABLE"): 10 * HOUR,
        (DAY1, "CHARGING"): 14 * HOUR,
        (DAY1 + timedelta(days=1), "CHARGING"): 1 * HOUR,
    }


def test_a_change_stamped_in_the_future_is_recorded_at_now(own_parties: list[Party]) -> None:
    """A PATCH with a far-future last_updated is stored on the EVSE as sent, but its history starts when it reached
    us: the rollup holds only the real interval before it (not ~2.9 million day rows up to 9999-12-31)."""
    partner, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    put_at = timezone.now() - timedelta(hours=1)
    data = location_data("PLOC1", country_code="DE", party_id="CPO", evses=1)
    data["evses"][0]["last_updated"] = data["last_updated"] = format_datetime(put_at)
    location_put(partner=partner, key=Key("DE", "CPO", "PLOC1"), data=data)
    evse = Evse.objects.get(location__ocpi_id="PLOC1")
    first = evse.status
    before = timezone.now()
    response = Client(HTTP_AUTHORIZATION=auth_header(token)).patch(
        f"/ocpi/2.2.1/emsp/locations/DE/CPO/PLOC1/{evse.uid}",
        orjson.dumps({"status": "OUTOFORDER", "last_updated": "9999-12-31T23:59:59Z"}),
        "application/json",
    )
    after = timezone.now()
    assert response.status_code == 200, response.content
    evse.refresh_from_db()
    assert (evse.status, evse.last_updated.year) == ("OUTOFORDER", 9999)
    change = EvseStatusChange.objects.filter(evse=evse).latest("since")
    assert change.status == "OUTOFORDER"
    assert before <= change.since <= after
    days = rollup(evse)
    assert 1 <= len(days) <= 2
    assert {status for _, status in days} == {first}
    assert sum(days.values()) == (change.since - parse_datetime(data["last_updated"])) // timedelta(microseconds=1)


@override_settings(OCPI_STATUS_HISTORY_DAYS=HISTORY_DAYS)
def test_a_change_stamped_in_the_distant_past_is_recorded_at_the_history_horizon(own_parties: list[Party]) -> None:
    """An EVSE stamped 0001-01-01 (a charger's unset clock), then PATCHed: its first status holds from the history's
    horizon, not from year 1 (758,912 rollup rows and 23 s in one request before)."""
    partner, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    data = location_data("PLOC1", country_code="DE", party_id="CPO", evses=1)
    data["evses"][0]["last_updated"] = data["last_updated"] = "0001-01-01T00:00:00Z"
    location_put(partner=partner, key=Key("DE", "CPO", "PLOC1"), data=data)
    evse = Evse.objects.get(location__ocpi_id="PLOC1")
    horizon = timezone.now() - timedelta(days=HISTORY_DAYS)
    response = Client(HTTP_AUTHORIZATION=auth_header(token)).patch(
        f"/ocpi/2.2.1/emsp/locations/DE/CPO/PLOC1/{evse.uid}",
        orjson.dumps({"status": "OUTOFORDER", "last_updated": format_datetime(timezone.now())}),
        "application/json",
    )
    assert response.status_code == 200, response.content
    first, second = EvseStatusChange.objects.filter(evse=evse).order_by("since")
    assert horizon - timedelta(seconds=5) <= first.since <= horizon + timedelta(seconds=5)
    assert second.status == "OUTOFORDER"
    days = rollup(evse)
    assert HISTORY_DAYS <= len(days) <= HISTORY_DAYS + 1
    assert sum(days.values()) == (second.since - first.since) // timedelta(microseconds=1)


def history_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """availability() computed from the raw history alone (the code before the rollup)."""

    def from_history(filters: Filters, split: datetime, per_day: list[dict[str, float]]) -> None:
        services._history_seconds(filters, filters.lower, split, per_day, set())

    monkeypatch.setattr(services, "_rollup_seconds", from_history)


def test_availability_from_the_rollup_equals_the_raw_history(
    own_parties: list[Party], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random histories of several EVSEs, saved in random order (some in the future, REMOVED ones included): every
    period and `now` give the same figures from the rollup as from the raw history."""
    rng = random.Random(6)  # noqa: S311 (test data)
    for i in range(3):
        own_location(f"LOC{i}")
    evses = list(Evse.objects.all())
    EvseStatusChange.objects.all().delete()
    rollup_rebuild()
    start = at(DAY1, 0) - timedelta(days=3)
    rows: list[tuple[Evse, str, datetime]] = []
    for evse in evses:
        when = start + timedelta(seconds=rng.randrange(86400 * 2))
        while when < start + timedelta(days=14):
            rows.append((evse, rng.choice(["AVAILABLE", "CHARGING", "OUTOFORDER", "REMOVED"]), when))
            when += timedelta(seconds=rng.randrange(600, 86400 * 2))
    rng.shuffle(rows)
    for evse, status, since in rows:
        EvseStatusChange.objects.create(evse=evse, status=status, since=since)
    incremental = {
        row[:3]: row[3] for row in EvseStatusDay.objects.values_list("evse", "day", "status", "microseconds")
    }
    rollup_rebuild()
    rebuilt = {row[:3]: row[3] for row in EvseStatusDay.objects.values_list("evse", "day", "status", "microseconds")}
    assert {k: v for k, v in incremental.items() if v} == rebuilt

    location = evses[0].location.ocpi_id
    cases: list[tuple[Filters, datetime]] = [
        (Filters(DAY1, DAY1 + timedelta(days=6)), at(DAY1, 24 * 20)),  # all closed days
        (Filters(DAY1, DAY1 + timedelta(days=6)), at(DAY1, 24 * 4 + 7.5)),  # today inside the period
        (Filters(DAY1, DAY1 + timedelta(days=6)), at(DAY1, 5)),  # today is the first day
        (Filters(DAY1 - timedelta(days=5), DAY1), at(DAY1, 24 * 30)),  # before the first change
        (Filters(DAY1 + timedelta(days=8), DAY1 + timedelta(days=12)), at(DAY1, 24 * 10 + 1)),  # future changes
        (Filters(DAY1, DAY1 + timedelta(days=9), location=location), at(DAY1, 24 * 6 + 13)),
    ]
    results: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for filters, now in cases:
        results[0].append(availability(filters, now=now))
    history_only(monkeypatch)
    for filters, now in cases:
        results[1].append(availability(filters, now=now))
    for from_rollup, from_history in zip(results[0], results[1], strict=True):
        assert from_rollup == from_history
    assert results[0][0]["evses"] == len(evses)
    assert any(day["shares"] for day in results[0][0]["days"])
