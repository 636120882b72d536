"""CPO Sender GET /ocpi/2.2.1/cpo/cdrs through real HTTP (REFERENCE §8.2, §2.7): our own CDRs, only those of the
calling partner's tokens, paginated with date filters, as stored (exact numbers)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cdrs.tests.factories import own_cdr
from conftest import make_partner
from ocpi_core.constants import Role
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location

URL = "/ocpi/2.2.1/cpo/cdrs"


@pytest.fixture
def emsp(own_parties: Any, ocpi_base_url: str) -> tuple[Any, str]:
    """A registered eMSP partner owning DE*PRT, whose tokens some of our CDRs carry."""
    return make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))


def test_a_partner_gets_only_the_cdrs_of_its_own_tokens(ocpi, emsp):
    _, token = emsp
    mine = [own_cdr("A1"), own_cdr("A2")]
    own_cdr("B1", token=("FR", "OTH"))
    make_partner(name="other", roles=(("FR", "OTH", Role.EMSP),))

    answer = ocpi(token).get(URL)

    body = answer.json()
    assert (answer.status_code, body["status_code"]) == (200, 1000)
    assert [cdr["id"] for cdr in body["data"]] == ["A1", "A2"]
    assert body["data"][0] == json.loads(mine[0].doc)  # the stored document, as is
    assert body["data"][0]["total_cost"] == {"excl_vat": 2.8125, "incl_vat": 3.403125}
    assert answer.headers["X-Total-Count"] == "2"


def test_the_list_pages_with_link_and_keeps_date_filters(ocpi, emsp):
    _, token = emsp
    for index in range(5):
        own_cdr(f"P{index}", last_updated=f"2024-01-0{index + 1}T00:00:00Z")

    first = ocpi(token).get(URL, params={"limit": 2, "date_from": "2024-01-02T00:00:00Z"})
    second = ocpi(token).get(first.headers["Link"].split(";")[0].strip("<>"))
    windowed = ocpi(token).get(URL, params={"date_from": "2024-01-02T00:00:00Z", "date_to": "2024-01-04T00:00:00Z"})

    assert [cdr["id"] for cdr in first.json()["data"]] == ["P1", "P2"]
    assert first.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in first.headers["Link"]
    assert "date_from=2024-01-02" in first.headers["Link"]
    assert [cdr["id"] for cdr in second.json()["data"]] == ["P3", "P4"]
    assert "Link" not in second.headers
    assert [cdr["id"] for cdr in windowed.json()["data"]] == ["P1", "P2"]


def test_a_partner_without_cdrs_gets_an_empty_list(ocpi, emsp):
    own_cdr("B1", token=("FR", "OTH"))
    _, token = emsp

    answer = ocpi(token).get(URL)

    assert answer.json()["data"] == []
    assert answer.headers["X-Total-Count"] == "0"


def test_bad_paging_parameters_answer_2001(ocpi, emsp):
    _, token = emsp
    answer = ocpi(token).get(URL, params={"date_from": "yesterday"})

    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)


def test_routing_to_a_party_that_is_not_ours_answers_404(ocpi, emsp):
    own_cdr("A1")
    _, token = emsp
    headers = {
        "OCPI-to-country-code": "FR",
        "OCPI-to-party-id": "XXX",
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PRT",
    }

    answer = ocpi(token).get(URL, headers=headers)

    assert answer.status_code == 404
    assert answer.json()["status_code"] == 2000


def test_a_hub_gets_only_the_cdrs_of_the_party_it_relays_for(ocpi, emsp):
    """Via a hub, `OCPI-from-*` is the requesting party (transport_and_format "Party to Party via Hub"): the CDRs of
    every other eMSP stay out of its answer; the hub naming none, or itself, gets all it relays for."""
    _, token = make_partner(name="hub", roles=(("NL", "HUB", Role.HUB),))
    own_cdr("PRT1")  # DE*PRT, also a direct partner
    own_cdr("XYZ1", token=("FR", "XYZ"))
    own_cdr("QQQ1", token=("FR", "QQQ"))
    relayed = {"OCPI-from-country-code": "fr", "OCPI-from-party-id": "xyz"}
    itself = {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "HUB"}

    answers = [ocpi(token).get(URL, headers=headers) for headers in (relayed, itself, {})]

    assert [sorted(cdr["id"] for cdr in answer.json()["data"]) for answer in answers] == [
        ["XYZ1"],
        ["PRT1", "QQQ1", "XYZ1"],
        ["PRT1", "QQQ1", "XYZ1"],
    ]
    assert (answers[0].headers["OCPI-to-country-code"], answers[0].headers["OCPI-to-party-id"]) == ("fr", "xyz")


def test_the_sender_answers_no_writes(ocpi, emsp):
    _, token = emsp
    assert ocpi(token).post(URL, json={}).status_code == 405


def _own_session_of_ten_hours(periods: list[dict[str, Any]]) -> None:
    """One of our own sessions for DE*PRT's token, 10 h long with the given charging periods, stopped (its CDR made)."""
    start = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token("DE", "PRT"),
        auth_method="WHITELIST",
        session_id="S10H",
        start=start,
    )
    for index, period in enumerate(periods):
        session_update(session=session, kwh=Decimal(20), charging_period=period, at=start + timedelta(hours=index + 1))
    session_stop(session=session, at=start + timedelta(hours=10))


@pytest.mark.parametrize("tariff_ids", [(), ("T1",)], ids=["free", "priced"])
def test_numbers_are_plain_decimals_never_in_exponent_notation(ocpi, emsp, tariff_ids):
    """types, number: a JSON number with OCPI's decimals; 10 hours once went out as `1E+1` (a normalized Decimal)."""
    own_charging_location(tariff_ids=tariff_ids)
    _own_session_of_ten_hours([])
    _, token = emsp

    answer = ocpi(token).get(URL)

    written: list[str] = []  # every non-integer number token as it was written

    def number(text: str) -> Decimal:
        written.append(text)
        return Decimal(text)

    (cdr,) = json.loads(answer.text, parse_float=number)["data"]
    assert cdr["total_time"] == 10
    assert [text for text in written if "e" in text.lower()] == []


@pytest.mark.parametrize("tariff_ids", [(), ("T1",)], ids=["free", "priced"])
def test_session_only_dimensions_never_reach_a_cdr(ocpi, emsp, tariff_ids):
    """mod_cdrs, CdrDimensionType: CURRENT, ENERGY_EXPORT, ENERGY_IMPORT, POWER and STATE_OF_CHARGE SHALL only be used
    in Sessions. The session keeps them; its CDR carries the rest, an average power as the period's min and max, and
    a period with nothing else is left out."""
    own_charging_location(tariff_ids=tariff_ids)
    dimensions = [
        {"type": "ENERGY", "volume": Decimal(20)},
        {"type": "STATE_OF_CHARGE", "volume": Decimal(80)},
        {"type": "POWER", "volume": Decimal(11)},
        {"type": "CURRENT", "volume": Decimal(16)},
        {"type": "MAX_CURRENT", "volume": Decimal(17)},
        {"type": "ENERGY_IMPORT", "volume": Decimal(20)},
        {"type": "ENERGY_EXPORT", "volume": Decimal(0)},
    ]
    _own_session_of_ten_hours(
        [
            {"start_date_time": "2024-03-01T08:00:00Z", "dimensions": dimensions},
            {"start_date_time": "2024-03-01T17:00:00Z", "dimensions": [{"type": "STATE_OF_CHARGE", "volume": 95}]},
        ]
    )
    _, token = emsp

    (cdr,) = ocpi(token).get(URL).json()["data"]
    (session,) = ocpi(token).get("/ocpi/2.2.1/cpo/sessions").json()["data"]

    assert [period["start_date_time"] for period in cdr["charging_periods"]] == ["2024-03-01T08:00:00Z"]
    assert {d["type"]: d["volume"] for d in cdr["charging_periods"][0]["dimensions"]} == {
        "ENERGY": 20,
        "MAX_CURRENT": 17,
        "MIN_POWER": 11,
        "MAX_POWER": 11,
        "MIN_CURRENT": 16,
    }
    assert len(session["charging_periods"]) == 2
    assert session["charging_periods"][0]["dimensions"] == json.loads(json.dumps(dimensions, default=float))
