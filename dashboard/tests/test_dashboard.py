"""Dashboard (issue #6): aggregates on a small hand-made data set, the page, the API (JSON and CSV) and the EVSE status
hook."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import auth_header, make_partner
from dashboard.models import EvseStatusChange
from dashboard.services import Filters, availability, dashboard_figures, mix_figures
from locations.models import Evse
from locations.services import Key, evse_status_set, location_put
from locations.tests.factories import location_data, own_location
from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime
from ocpi_core.models import Delivery, Partner, Party, SyncState
from sessions_app.models import Session
from tariffs.tests.factories import own_tariff

PASSWORD = "correct horse battery staple"
DAY1, DAY2 = date(2025, 3, 1), date(2025, 3, 2)
PERIOD = {"from": "2025-03-01", "to": "2025-03-02"}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def session(
    ocpi_id: str,
    start: datetime,
    minutes: int | None,
    kwh: str,
    *,
    location: str = "LOC1",
    token: tuple[str, str] = ("DE", "PRT"),
    partner: Partner | None = None,
    party: tuple[str, str] = ("NL", "OWN"),
    status: str = "COMPLETED",
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


@pytest.fixture
def data(own_parties: list[Party]) -> dict[str, Any]:
    """Two own locations (LOC1 with its own energy mix, LOC2 with its tariff's), an eMSP partner (DE*PRT), a CPO
    partner (DE*CPO) and sessions over two days, plus one invalid and one outside the period."""
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    mix1 = {
        "is_green_energy": True,
        "energy_sources": [{"source": "SOLAR", "percentage": 60}, {"source": "COAL", "percentage": 40}],
        "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 200}],
    }
    mix2 = {
        "is_green_energy": False,
        "energy_sources": [{"source": "GAS", "percentage": 100}],
        "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 400}],
    }
    own_tariff("T1", energy_mix=mix2)
    own_location("LOC1", energy_mix=mix1)
    loc2 = location_data("LOC2", evses=1)
    loc2["evses"][0]["connectors"][0]["tariff_ids"] = ["T1"]
    location_put(partner=None, key=Key("NL", "OWN", "LOC2"), data=loc2)
    session("S1", at(DAY1, 10), 60, "10")
    session("S2", at(DAY1, 12), 30, "20", location="LOC2")
    session("S3", at(DAY2, 8), 120, "5", token=("NL", "XYZ"))
    session("S4", at(DAY2, 9), 60, "7", location="PLOC", partner=cpo, party=("DE", "CPO"), token=("NL", "OWE"))
    session("S5", at(DAY2, 9), 60, "100", status="INVALID")
    session("S6", at(DAY1, 0) - timedelta(minutes=1), 60, "50")
    return {"emsp": emsp, "cpo": cpo}


def by_key(series: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {s["key"]: s["days"] for s in series}


def test_energy_sessions_and_splits_per_day(data: dict[str, Any]) -> None:
    figures = dashboard_figures(Filters(DAY1, DAY2))
    assert figures["days"] == ["2025-03-01", "2025-03-02"]
    assert figures["per_day"] == [
        {"date": "2025-03-01", "sessions": 2, "kwh": 30.0, "avg_kwh": 15.0, "avg_duration_minutes": 45.0},
        {"date": "2025-03-02", "sessions": 2, "kwh": 12.0, "avg_kwh": 6.0, "avg_duration_minutes": 90.0},
    ]
    assert figures["totals"] == {"sessions": 4, "kwh": 42.0, "avg_kwh": 10.5, "avg_duration_minutes": 67.5}
    assert by_key(figures["energy_by_location"]) == {"LOC1": [10.0, 5.0], "LOC2": [20.0, 0.0]}
    assert by_key(figures["energy_by_partner"]) == {
        "emsp:DE*PRT": [30.0, 0.0],
        f"cpo:{data['cpo'].pk}": [0.0, 7.0],
        "emsp:NL*XYZ": [0.0, 5.0],
    }
    assert figures["energy_by_partner"][0]["label"] == "eMSP DE*PRT (emsp)"

    as_emsp_partner = dashboard_figures(Filters(DAY1, DAY2, partner=data["emsp"].pk))
    assert as_emsp_partner["totals"]["kwh"] == 30.0  # our sessions charged with its tokens
    as_cpo_partner = dashboard_figures(Filters(DAY1, DAY2, partner=data["cpo"].pk))
    assert as_cpo_partner["totals"]["kwh"] == 7.0  # its sessions with our tokens
    assert dashboard_figures(Filters(DAY1, DAY2, location="LOC1"))["totals"]["kwh"] == 15.0


def test_renewable_share_and_co2_weighted_by_kwh(data: dict[str, Any]) -> None:
    mix = dashboard_figures(Filters(DAY1, DAY2))["energy_mix"]
    # LOC1 15 kWh at 60 % / 200 g, LOC2 20 kWh at 0 % / 400 g (its tariff's mix), PLOC 7 kWh unknown
    assert mix["kwh"] == 42.0
    assert mix["renewable_kwh_covered"] == 35.0
    assert mix["renewable_share"] == round(9 / 35, 4)
    assert mix["co2_g_per_kwh"] == round(11000 / 35, 1)
    assert mix["co2_kg"] == 11.0
    assert mix_figures({"is_green_energy": True}) == (Decimal(1), None)
    assert mix_figures(None) == (None, None)


def test_availability_shares_from_a_history_crossing_midnight(own_parties: list[Party]) -> None:
    location = own_location("LOC9")
    evse = Evse.objects.get(location=location)
    EvseStatusChange.objects.filter(evse=evse).delete()
    for status, when in [
        ("AVAILABLE", at(DAY1, 0) - timedelta(hours=4)),  # before the period: the status at its start
        ("CHARGING", at(DAY1, 22)),  # crosses midnight
        ("AVAILABLE", at(DAY2, 2)),
        ("OUTOFORDER", at(DAY2, 12)),
    ]:
        EvseStatusChange.objects.create(evse=evse, status=status, since=when)
    result = availability(Filters(DAY1, DAY2), now=at(DAY2, 0) + timedelta(days=1))
    assert result["evses"] == 1
    day1, day2 = result["days"]
    assert day1["shares"] == {"AVAILABLE": round(22 / 24, 4), "CHARGING": round(2 / 24, 4), "OUTOFORDER": 0.0}
    assert day2["shares"] == {"AVAILABLE": round(10 / 24, 4), "CHARGING": round(2 / 24, 4), "OUTOFORDER": 0.5}
    assert day1["evse_hours"] == day2["evse_hours"] == 24.0
    # now cuts the last interval: day 2 counted until 18:00 only
    partial = availability(Filters(DAY1, DAY2), now=at(DAY2, 18))["days"][1]
    assert partial["evse_hours"] == 18.0
    assert partial["shares"]["OUTOFORDER"] == round(6 / 18, 4)


@pytest.fixture
def staff(own_parties: list[Party]) -> Client:
    get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)
    client = Client()
    assert client.login(username="operator", password=PASSWORD)
    return client


def test_page_renders_svg_charts_for_staff_and_refuses_anonymous(data: dict[str, Any], staff: Client) -> None:
    cpo: Partner = data["cpo"]
    cpo.last_error = "HTTP 500 on PUT"
    cpo.save(update_fields=["last_error"])
    Delivery.objects.create(
        partner=data["emsp"], module="locations", country_code="NL", party_id="OWN", object_path="LOC1",
        method="PUT", status=Delivery.Status.FAILED, window_start=at(DAY1, 0), next_attempt_at=at(DAY1, 0),
    )  # fmt: skip
    SyncState.objects.create(partner=cpo, module="sessions", last_success_at=at(DAY2, 3))

    anonymous = Client().get("/admin/dashboard/", PERIOD)
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]

    response = staff.get("/admin/dashboard/", PERIOD)
    assert response.status_code == 200
    html = response.content.decode()
    for chart in ("chart-location", "chart-partner", "chart-sessions", "chart-availability", "chart-renewable"):
        assert f'id="{chart}"' in html
    assert html.count("<svg") >= 7
    assert '<rect class="bar"' in html
    assert '<circle class="point"' in html
    assert "2025-03-01 LOC2 Location" in html  # a bar's tooltip: day, series, value
    assert "20.0 kWh</title>" in html
    assert "HTTP 500 on PUT" in html
    assert "2025-03-02T03:00:00+00:00" in html

    index = staff.get("/admin/")
    assert 'href="/admin/dashboard/"' in index.content.decode()

    exported = staff.get("/admin/dashboard/", {**PERIOD, "format": "csv"})
    assert exported["Content-Type"].startswith("text/csv")


@pytest.fixture
def api(own_parties: list[Party]) -> Client:
    get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)
    client = Client()
    tokens = client.post("/api/token/", {"username": "operator", "password": PASSWORD}, content_type="application/json")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    return client


def test_api_json_and_csv(data: dict[str, Any], api: Client) -> None:
    assert Client().get("/api/dashboard/").status_code == 401
    response = api.get("/api/dashboard/", PERIOD)
    assert response.status_code == 200
    body = response.json()
    assert body == orjson.loads(orjson.dumps(dashboard_figures(Filters(DAY1, DAY2))))
    assert body["health"]["deliveries_failed"] == 0
    assert api.get("/api/dashboard/", {**PERIOD, "location": "LOC2"}).json()["totals"]["kwh"] == 20.0
    assert api.get("/api/dashboard/", {"from": "2025-03-05", "to": "2025-03-01"}).status_code == 400
    assert api.get("/api/dashboard/", {"from": "yesterday"}).status_code == 400

    exported = api.get("/api/dashboard/energy.csv", PERIOD)
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    totals = [(r["date"], r["sessions"], r["kwh"]) for r in rows if r["split"] == "total"]
    assert totals == [("2025-03-01", "2", "30.0"), ("2025-03-02", "2", "12.0")]
    locations = {(r["date"], r["key"], r["kwh"]) for r in rows if r["split"] == "location"}
    assert locations == {("2025-03-01", "LOC1", "10.0"), ("2025-03-02", "LOC1", "5.0"), ("2025-03-01", "LOC2", "20.0")}
    assert ("2025-03-02", f"cpo:{data['cpo'].pk}", "7.0") in {
        (r["date"], r["key"], r["kwh"]) for r in rows if r["split"] == "partner"
    }


def statuses(evse: Evse) -> list[str]:
    return list(EvseStatusChange.objects.filter(evse=evse).order_by("since", "pk").values_list("status", flat=True))


def test_hook_records_a_receiver_patch(own_parties: list[Party]) -> None:
    partner, token = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    data = location_data("PLOC1", country_code="DE", party_id="CPO", evses=1)
    location_put(partner=partner, key=Key("DE", "CPO", "PLOC1"), data=data)
    evse = Evse.objects.get(location__ocpi_id="PLOC1")
    assert statuses(evse) == ["AVAILABLE"]  # the PUT records the first status
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    url = f"/ocpi/2.2.1/emsp/locations/DE/CPO/PLOC1/{evse.uid}"
    stamp = "2025-03-01T10:00:00Z"
    response = client.patch(url, orjson.dumps({"status": "CHARGING", "last_updated": stamp}), "application/json")
    assert response.status_code == 200, response.content
    assert statuses(evse) == ["AVAILABLE", "CHARGING"]
    assert format_datetime(EvseStatusChange.objects.filter(evse=evse).latest("since").since) == stamp
    # a PATCH that does not change the status records nothing
    client.patch(url, orjson.dumps({"floor_level": "2", "last_updated": "2025-03-01T11:00:00Z"}), "application/json")
    client.patch(url, orjson.dumps({"status": "CHARGING", "last_updated": "2025-03-01T12:00:00Z"}), "application/json")
    assert statuses(evse) == ["AVAILABLE", "CHARGING"]


def test_hook_records_an_own_status_change(own_parties: list[Party]) -> None:
    own_location("LOC1")
    evse = Evse.objects.get(location__ocpi_id="LOC1")
    assert statuses(evse) == ["AVAILABLE"]
    evse_status_set(key=Key("NL", "OWN", "LOC1", evse.uid), status="OUTOFORDER", at=datetime.now(UTC))
    evse_status_set(key=Key("NL", "OWN", "LOC1", evse.uid), status="AVAILABLE", at=datetime.now(UTC))
    assert statuses(evse) == ["AVAILABLE", "OUTOFORDER", "AVAILABLE"]


def test_chart_axes_end_at_the_next_round_value_not_beyond() -> None:
    from dashboard.charts import _nice_max

    assert [_nice_max(v) for v in (0, 0.4, 3, 51.3, 60, 100, 100.5, 1234)] == [1, 1, 3, 60, 60, 100, 200, 2000]
