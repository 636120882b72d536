"""CPO Sender of Sessions (REFERENCE §7.2, §2.7) through real HTTP against the live server: the list of our own
sessions (only those of the caller's tokens, paginated, date_from optional) and PUT charging_preferences."""

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.utils import timezone

from conftest import make_partner
from ocpi_core.constants import Role, StatusCode
from ocpi_core.envelope import format_datetime, parse_datetime
from sessions_app.models import Session
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location
from tariffs.tests.factories import own_tariff

LIST = "/ocpi/2.2.1/cpo/sessions"


def prefs_url(session_id: str) -> str:
    return f"{LIST}/{session_id}/charging_preferences"


def envelope(response: httpx.Response, http_status: int = 200, status_code: int = StatusCode.SUCCESS) -> Any:
    data = json.loads(response.text, parse_float=Decimal)
    assert (response.status_code, data["status_code"]) == (http_status, status_code), response.text
    return data.get("data")


def start(session_id: str, party: tuple[str, str], location_id: str = "LOC1") -> Session:
    return session_start(
        location_id=location_id,
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(*party, uid=f"U-{session_id}"),
        auth_method="WHITELIST",
        session_id=session_id,
    )


@pytest.fixture
def partners(
    ocpi: Callable[..., httpx.Client], own_parties: Any, ocpi_base_url: str
) -> tuple[httpx.Client, httpx.Client]:
    """Two eMSP partners (DE*PRT, FR*BBB) and our location LOC1 (preferences capable, tariff T1)."""
    own_charging_location()
    _, token_a = make_partner(name="a", roles=(("DE", "PRT", Role.EMSP),))
    _, token_b = make_partner(name="b", roles=(("FR", "BBB", Role.EMSP),))
    return ocpi(token_a), ocpi(token_b)


def test_list_has_only_the_callers_sessions_paginated(partners: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = partners
    for index in range(3):
        start(f"A{index}", ("DE", "PRT"))
    start("B0", ("FR", "BBB"))

    response = a.get(LIST, params={"limit": 2})  # no date_from: from the beginning (REFERENCE §7.2)
    first = envelope(response)
    assert [s["id"] for s in first] == ["A0", "A1"]
    assert response.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in response.headers["Link"]
    next_url = response.headers["Link"].split(";")[0].strip("<>")
    response = a.get(next_url)
    assert [s["id"] for s in envelope(response)] == ["A2"]
    assert "Link" not in response.headers

    assert [s["id"] for s in envelope(b.get(LIST))] == ["B0"]
    session = envelope(b.get(LIST))[0]
    assert session["cdr_token"]["party_id"] == "BBB"
    assert session["kwh"] == Decimal("0")
    assert session["country_code"] == "NL"
    assert session["party_id"] == "OWN"
    assert session["currency"] == "EUR"


def test_a_hub_asking_for_itself_gets_every_session_it_relays(
    ocpi: Callable[..., httpx.Client], partners: tuple[httpx.Client, httpx.Client]
) -> None:
    """Via a hub, `OCPI-from-*` is the requesting party: the hub naming a party behind it gets that party's
    sessions; naming itself (it asks for all it relays, as without `OCPI-from-*`) gets them all, not none."""
    for session_id, party in (("S1", ("DE", "PRT")), ("S2", ("FR", "XYZ"))):
        start(session_id, party)
    _, token = make_partner(name="hub", roles=(("NL", "HUB", Role.HUB),))
    hub = ocpi(token)

    relayed = hub.get(LIST, headers={"OCPI-from-country-code": "FR", "OCPI-from-party-id": "XYZ"})
    itself = hub.get(LIST, headers={"OCPI-from-country-code": "nl", "OCPI-from-party-id": "hub"})
    unnamed = hub.get(LIST)

    assert [session["id"] for session in envelope(relayed)] == ["S2"]
    assert sorted(session["id"] for session in envelope(itself)) == ["S1", "S2"]
    assert sorted(session["id"] for session in envelope(unnamed)) == ["S1", "S2"]


def test_list_date_filters(partners: tuple[httpx.Client, httpx.Client]) -> None:
    a, _ = partners
    early = start("A0", ("DE", "PRT"))
    later = start("A1", ("DE", "PRT"))
    session_update(session=later, kwh=Decimal("2.5"), at=timezone.now() + timedelta(hours=1))
    cut = format_datetime(early.last_updated + timedelta(minutes=30))
    assert [s["id"] for s in envelope(a.get(LIST, params={"date_from": cut}))] == ["A1"]
    assert [s["id"] for s in envelope(a.get(LIST, params={"date_to": cut}))] == ["A0"]
    envelope(a.get(LIST, params={"date_from": "yesterday"}), 200, StatusCode.INVALID_PARAMETERS)


def test_charging_preferences_outcomes(partners: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = partners
    own_tariff("TG", type="PROFILE_GREEN")
    session = start("A0", ("DE", "PRT"))
    future = format_datetime(timezone.now() + timedelta(hours=3))
    past = format_datetime(timezone.now() - timedelta(hours=3))

    def put(client: httpx.Client, body: Any, session_id: str = "A0") -> httpx.Response:
        return client.put(prefs_url(session_id), json=body)

    accepted = {"profile_type": "REGULAR", "departure_time": future, "energy_need": 12.5}
    assert envelope(put(a, accepted)) == "ACCEPTED"
    stored = Session.objects.get(pk=session.pk)
    assert stored.charging_preferences == {**accepted, "energy_need": Decimal("12.5")}
    assert stored.charging_preferences_result == "ACCEPTED"

    assert envelope(put(a, {"profile_type": "GREEN"})) == "PROFILE_TYPE_NOT_SUPPORTED"  # TG is not on the connector
    assert envelope(put(a, {"profile_type": "FAST", "discharge_allowed": True})) == "PROFILE_TYPE_NOT_SUPPORTED"
    assert envelope(put(a, {"profile_type": "REGULAR", "discharge_allowed": True})) == "DEPARTURE_REQUIRED"
    discharge = {"profile_type": "REGULAR", "discharge_allowed": True, "departure_time": future}
    assert envelope(put(a, discharge)) == "ENERGY_NEED_REQUIRED"
    assert envelope(put(a, {"profile_type": "REGULAR", "departure_time": past})) == "NOT_POSSIBLE"
    assert Session.objects.get(pk=session.pk).charging_preferences == {**accepted, "energy_need": Decimal("12.5")}
    assert Session.objects.get(pk=session.pk).charging_preferences_result == "NOT_POSSIBLE"

    before = list(Session.objects.values())
    envelope(put(a, {"profile_type": "SLOW"}), 200, StatusCode.INVALID_PARAMETERS)
    envelope(put(a, {"departure_time": future}), 200, StatusCode.INVALID_PARAMETERS)
    envelope(put(a, {"profile_type": "REGULAR", "energy_need": -1}), 200, StatusCode.INVALID_PARAMETERS)
    envelope(put(a, accepted, "NOPE"), 404, StatusCode.CLIENT_ERROR)
    envelope(put(b, accepted), 404, StatusCode.CLIENT_ERROR)  # not B's token: unknown to B
    assert list(Session.objects.values()) == before

    session_stop(session=session)
    assert envelope(put(a, accepted)) == "NOT_POSSIBLE"


def test_charging_preferences_on_an_evse_that_is_not_capable(partners: tuple[httpx.Client, httpx.Client]) -> None:
    a, _ = partners
    own_charging_location("LOC2", capable=False, tariff_ids=("T2",))
    start("A0", ("DE", "PRT"), location_id="LOC2")
    before = list(Session.objects.values())
    envelope(a.put(prefs_url("A0"), json={"profile_type": "REGULAR"}), 404, StatusCode.INVALID_PARAMETERS)
    assert list(Session.objects.values()) == before


def test_own_stamps_are_ocpi_datetimes_of_at_most_25_characters(partners: tuple[httpx.Client, httpx.Client]) -> None:
    """Our own sessions are stamped by us (start, updates, stop): each DateTime a partner reads fits the spec's
    string(25), with milliseconds at most (microseconds made 27 characters), and never reads earlier than the
    moment it stands for (rounded up: an own change is never older than what is stored)."""
    a, _ = partners
    session = start("S1", ("DE", "PRT"))
    session = session_update(session=session, kwh=Decimal("1.5"))
    session_stop(session=session)
    stored = Session.objects.get(ocpi_id="S1")
    (item,) = envelope(a.get(LIST))
    stamps = {name: item[name] for name in ("start_date_time", "end_date_time", "last_updated")}
    for name, value in stamps.items():
        assert len(value) <= 25, (name, value)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", value), (name, value)
    assert parse_datetime(stamps["last_updated"]) >= stored.last_updated - timedelta(milliseconds=1)
    assert parse_datetime(stamps["end_date_time"]) >= parse_datetime(stamps["start_date_time"])
