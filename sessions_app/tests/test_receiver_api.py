"""eMSP Receiver of Sessions (REFERENCE §7.3, §2.5, §2.6) through real HTTP against the live server:
/ocpi/2.2.1/emsp/sessions/{country_code}/{party_id}/{session_id}.

Every error path checks that nothing stored changed; answers are read with exact numbers (Decimal), so a kWh or a
price that went through a binary float on the way would show.
"""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from conftest import make_partner
from ocpi_core.constants import Role, StatusCode
from ocpi_core.exceptions import InvalidParameters
from sessions_app.models import Session
from sessions_app.tests.factories import example, session_data

CC, PID = "DE", "CPO"
BASE = "/ocpi/2.2.1/emsp/sessions"
T0, T1, T2 = "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"
INVALID_HTTP = InvalidParameters.http_status


def url(session_id: str = "S1", cc: str = CC, pid: str = PID) -> str:
    return f"{BASE}/{cc}/{pid}/{session_id}"


def exact_json(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def ok(response: httpx.Response, http_status: int = 200) -> Any:
    data = exact_json(response)
    assert (response.status_code, data["status_code"]) == (http_status, StatusCode.SUCCESS), response.text
    return data.get("data")


def error(response: httpx.Response, http_status: int, status_code: int, *names: str) -> None:
    data = response.json()
    assert (response.status_code, data["status_code"]) == (http_status, status_code), response.text
    assert data.get("data") is None
    for name in names:
        assert name in data.get("status_message", ""), data


def stored() -> list[Any]:
    return list(Session.objects.order_by("pk").values())


def exact(data: Any) -> Any:
    """A body as exact JSON (what the partner wrote, digit for digit)."""
    return json.loads(json.dumps(data), parse_float=Decimal)


@pytest.fixture
def cpo(ocpi: Callable[..., httpx.Client], own_parties: Any) -> httpx.Client:
    """A registered CPO partner owning DE*CPO, NL*TNM, NL*STK and BE*BEC, speaking to our eMSP receiver."""
    roles = tuple((cc, pid, Role.CPO) for cc, pid in ((CC, PID), ("NL", "TNM"), ("NL", "STK"), ("BE", "BEC")))
    _, token = make_partner(name="cpo", roles=roles)
    return ocpi(token)


def test_official_examples_round_trip_exactly(cpo: httpx.Client) -> None:
    for name in ("session_example_1_simple_start.json", "session_example_2_short_finished.json"):
        data = example(name)
        target = url(data["id"], data["country_code"], data["party_id"])
        ok(cpo.put(target, json=_floats(data)), 201)
        assert ok(cpo.get(target)) == data, name
    session: Any = Session.objects.get(country_code="BE")
    assert session.kwh == Decimal("41.12")
    assert len(session.charging_periods) == 3


def test_official_patch_examples_append_and_update(cpo: httpx.Client) -> None:
    start = {**example("session_example_1_simple_start.json"), "country_code": "NL", "party_id": "TNM"}
    start["last_updated"] = "2019-06-23T08:00:00Z"
    ok(cpo.put(url("101", "NL", "TNM"), json=_floats(start)), 201)
    cost = example("session_patch_example_total_cost.json")
    ok(cpo.patch(url("101", "NL", "TNM"), json=_floats(cost)))
    got = ok(cpo.get(url("101", "NL", "TNM")))
    assert got["total_cost"] == cost["total_cost"]
    assert got["last_updated"] == cost["last_updated"]
    assert "charging_periods" not in got
    period = example("session_patch_example_charging_period.json")
    ok(cpo.patch(url("101", "NL", "TNM"), json=_floats(period)))
    ok(cpo.patch(url("101", "NL", "TNM"), json=_floats(cost)))  # older than what is stored now: not applied
    got = ok(cpo.get(url("101", "NL", "TNM")))
    assert got["kwh"] == Decimal("15.00")
    assert got["charging_periods"] == period["charging_periods"]
    assert got["total_cost"] == {"excl_vat": Decimal("0.80"), "incl_vat": Decimal("0.88")}
    assert got["last_updated"] == period["last_updated"]


def _floats(data: Any) -> Any:
    """Decimals back to JSON numbers for httpx (shortest repr keeps the digits)."""
    return json.loads(json.dumps(data, default=float))


def test_put_creates_then_replaces_charging_periods(cpo: httpx.Client) -> None:
    data = session_data()
    ok(cpo.put(url(), json=data), 201)
    assert ok(cpo.get(url())) == exact(data)
    session: Any = Session.objects.get()
    assert (session.kwh, session.total_cost["incl_vat"]) == (Decimal("1.25"), Decimal("0.378125"))
    assert session.partner is not None
    assert session.token_party_id == "OWE"

    two = [
        {"start_date_time": "2024-01-01T00:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 0.5}]},
        {"start_date_time": "2024-01-01T00:10:00Z", "dimensions": [{"type": "TIME", "volume": 0.1}]},
    ]
    ok(cpo.put(url(), json={**data, "charging_periods": two, "last_updated": T1}), 200)
    assert ok(cpo.get(url()))["charging_periods"] == exact(two)

    without = {k: v for k, v in data.items() if k not in ("charging_periods", "total_cost")}
    ok(cpo.put(url(), json={**without, "last_updated": T2}), 200)
    got = ok(cpo.get(url()))
    assert "charging_periods" not in got
    assert "total_cost" not in got


def test_patch_appends_charging_periods_and_merges_fields(cpo: httpx.Client) -> None:
    ok(cpo.put(url(), json=session_data()), 201)
    added = {"start_date_time": "2024-01-01T00:30:00Z", "dimensions": [{"type": "ENERGY", "volume": 2.75}]}
    ok(cpo.patch(url(), json={"kwh": 4.0, "charging_periods": [added], "last_updated": T1}))
    got = ok(cpo.get(url()))
    assert got["charging_periods"] == exact([session_data()["charging_periods"][0], added])
    assert (got["kwh"], got["status"], got["last_updated"]) == (Decimal("4.0"), "ACTIVE", T1)

    ok(cpo.patch(url(), json={"status": "COMPLETED", "end_date_time": T2, "charging_periods": [], "last_updated": T2}))
    got = ok(cpo.get(url()))
    assert len(got["charging_periods"]) == 2  # an empty list leaves the stored periods as they are
    assert (got["status"], got["end_date_time"]) == ("COMPLETED", T2)
    assert Session.objects.get().status == "COMPLETED"


def test_older_writes_are_acknowledged_not_applied(cpo: httpx.Client) -> None:
    ok(cpo.put(url(), json=session_data(last_updated=T1)), 201)
    before = stored()
    ok(cpo.put(url(), json=session_data(last_updated=T0, kwh=9)), 200)
    ok(cpo.patch(url(), json={"kwh": 9, "last_updated": T0}))
    assert stored() == before


@pytest.mark.parametrize("status", ["ACTIVE", "COMPLETED", "INVALID", "PENDING", "RESERVATION"])
def test_every_status_is_accepted(cpo: httpx.Client, status: str) -> None:
    ok(cpo.put(url(), json=session_data(status=status)), 201)
    assert ok(cpo.get(url()))["status"] == status


def test_rejected_requests_change_nothing(ocpi: Callable[..., httpx.Client], cpo: httpx.Client) -> None:
    ok(cpo.put(url(), json=session_data()), 201)
    before = stored()
    long_id = "X" * 37
    cases: list[tuple[str, httpx.Response, int, int, tuple[str, ...]]] = [
        ("patch without last_updated", cpo.patch(url(), json={"kwh": 3}), INVALID_HTTP, 2001, ("last_updated",)),
        ("put id mismatch", cpo.put(url(), json=session_data("S2")), INVALID_HTTP, 2001, ("id",)),
        (
            "put party mismatch",
            cpo.put(url(), json=session_data(party_id="XXX")),
            INVALID_HTTP,
            2001,
            ("party_id",),
        ),
        ("patch id mismatch", cpo.patch(url(), json={"id": "S2", "last_updated": T1}), INVALID_HTTP, 2001, ("id",)),
        (
            "bad status",
            cpo.put(url(), json=session_data(status="RESERVED", last_updated=T1)),
            INVALID_HTTP,
            2001,
            ("status",),
        ),
        (
            "missing kwh",
            cpo.put(url(), json={**session_data(last_updated=T1), "kwh": None}),
            INVALID_HTTP,
            2001,
            ("kwh",),
        ),
        ("negative kwh", cpo.put(url(), json=session_data(kwh=-1, last_updated=T1)), INVALID_HTTP, 2001, ("kwh",)),
        ("huge kwh", cpo.put(url(), json=session_data(kwh=1e300, last_updated=T1)), INVALID_HTTP, 2001, ("kwh",)),
        (
            "bad currency",
            cpo.put(url(), json=session_data(currency="eur", last_updated=T1)),
            INVALID_HTTP,
            2001,
            ("currency",),
        ),
        (
            "token without party",
            cpo.put(
                url(), json=session_data(cdr_token={"uid": "X", "type": "RFID", "contract_id": "C"}, last_updated=T1)
            ),
            INVALID_HTTP,
            2001,
            ("cdr_token",),
        ),
        (
            "period without dimensions",
            cpo.patch(
                url(), json={"charging_periods": [{"start_date_time": T1, "dimensions": []}], "last_updated": T1}
            ),
            INVALID_HTTP,
            2001,
            ("dimensions",),
        ),
        (
            "end before start",
            cpo.patch(url(), json={"end_date_time": "2023-01-01T00:00:00Z", "last_updated": T1}),
            INVALID_HTTP,
            2001,
            ("end_date_time",),
        ),
        ("body not an object", cpo.put(url(), json=[1, 2]), INVALID_HTTP, 2001, ()),
        ("bad json", cpo.put(url(), content=b"{", headers={"Content-Type": "application/json"}), 400, 2001, ()),
        (
            "unknown field type",
            cpo.patch(url(), json={"kwh": "a lot", "last_updated": T1}),
            INVALID_HTTP,
            2001,
            ("kwh",),
        ),
        (
            "id too long",
            cpo.put(url(long_id), json=session_data(long_id, last_updated=T1)),
            INVALID_HTTP,
            2001,
            ("id",),
        ),
        (
            "foreign party put",
            cpo.put(url("S1", "FR", "ABC"), json=session_data(country_code="FR", party_id="ABC")),
            404,
            2000,
            (),
        ),
        ("foreign party get", cpo.get(url("S1", "FR", "ABC")), 404, 2000, ()),
        ("unknown get", cpo.get(url("NOPE")), 404, 2000, ()),
        ("unknown patch", cpo.patch(url("NOPE"), json={"kwh": 1, "last_updated": T1}), 404, 2000, ()),
        ("delete", cpo.delete(url()), 405, 2000, ()),
        ("post", cpo.post(url(), json=session_data()), 405, 2000, ()),
        ("no token", ocpi().get(url()), 401, 2000, ()),
    ]
    failures = []
    for name, response, http_status, status_code, names in cases:
        try:
            error(response, http_status, status_code, *names)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, "\n".join(failures)
    assert stored() == before


def test_another_partner_cannot_read_or_write_a_session(ocpi: Callable[..., httpx.Client], cpo: httpx.Client) -> None:
    ok(cpo.put(url(), json=session_data()), 201)
    before = stored()
    _, token = make_partner(name="other", roles=(("FR", "OTH", Role.CPO),))
    other = ocpi(token)
    error(other.get(url()), 404, 2000)
    error(other.put(url(), json=session_data(last_updated=T1)), 404, 2000)
    error(other.patch(url(), json={"kwh": 3, "last_updated": T1}), 404, 2000)
    assert stored() == before
