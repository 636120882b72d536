"""The whole roaming story end to end (issue #5) between two complete instances of the platform: separate processes
(gunicorn, and a Celery worker with its beat per instance on its own file-system broker), separate databases, real
HTTP on loopback.

Instance A is the CPO (party NL*XAC: the demo locations and tariffs, the built-in charge point simulator ticking every
second), instance B the eMSP (party NL*XBE, one token issued through its platform API). In order:

1. B registers with A (credentials handshake);
2. B pulls A's tariffs and locations (pull sync), A's later EVSE changes are pushed to B;
3. B's token is pushed from B's outbox to A's tokens Receiver;
4. B sends START_SESSION through its platform API: A answers ACCEPTED, its simulator starts the session, A POSTs the
   CommandResult to B's response_url, pushes the Session (carrying the authorization_reference) and EVSE CHARGING;
5. the simulator charges (periods and kWh pushed to B); B sets a charging profile on the session (A answers and POSTs
   the result); B sends STOP_SESSION; A completes the session, prices the CDR with the tariff and POSTs it to B.

Everything asynchronous is polled with bounded timeouts; a failure carries both instances' server and worker logs.
"""

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.platforms import Platform, platforms, server_logs_on_failure

pytestmark = pytest.mark.e2e

T = TypeVar("T")

CPO = ("NL", "XAC")
EMSP = ("NL", "XBE")
LOCATION = "XAC-ROTTERDAM-01"  # demo location: EVSE XAC-0003-01 AVAILABLE, tariff XAC-AC-STANDARD
EVSE = "XAC-0003-01"
TARIFF = "XAC-AC-STANDARD"  # €0.50 per session + €0.35/kWh, 21 % VAT
TOKEN_UID = "E2E0000001"
TICK_SECONDS = 1
WAIT = 30.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT, *, alive: tuple[Platform, ...]) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        for platform in alive:
            platform.check_alive()
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last seen: {last!r})")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Platform]]:
    """A (CPO) and B (eMSP), each with gunicorn and its own worker + beat; stopped and dropped afterwards."""
    tmp_dir: Path = tmp_path_factory.mktemp("roaming-e2e")
    env = {
        "GATEWAY_SIMULATOR_TICK_SECONDS": str(TICK_SECONDS),
        "OCPI_PUSH_RETRY_BASE_SECONDS": "1",
        "OCPI_PUSH_RETRY_MAX_SECONDS": "2",
        "OCPI_HOT_CACHE_SECONDS": "0",
        "OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    with platforms(tmp_dir, ("a", "XA"), ("b", "XB"), workers=True, extra_env=env) as (a, b):
        yield a, b


# --- reads of an instance's database (plain SQL, its own cached OCPI JSON) ---------------------------------------


def doc(platform: Platform, query: str, *params: Any) -> dict[str, Any] | None:
    row = platform.query(query, *params)
    return json.loads(row[0]) if row and row[0] else None


def partner_location(platform: Platform, location_id: str) -> dict[str, Any] | None:
    return doc(
        platform, "SELECT doc FROM locations_location WHERE partner_id IS NOT NULL AND ocpi_id = %s", location_id
    )


def partner_tariff(platform: Platform, tariff_id: str) -> dict[str, Any] | None:
    return doc(platform, "SELECT doc FROM tariffs_tariff WHERE partner_id IS NOT NULL AND ocpi_id = %s", tariff_id)


def partner_token(platform: Platform, uid: str) -> dict[str, Any] | None:
    return doc(platform, "SELECT doc FROM tokens_token WHERE partner_id IS NOT NULL AND uid = %s", uid)


def partner_session(platform: Platform, session_id: str) -> dict[str, Any] | None:
    return doc(
        platform, "SELECT doc FROM sessions_app_session WHERE partner_id IS NOT NULL AND ocpi_id = %s", session_id
    )


def evse_status(platform: Platform, *, own: bool, evse_uid: str) -> str | None:
    query = (
        "SELECT e.status FROM locations_evse e JOIN locations_location l ON e.location_id = l.id "
        "WHERE (l.partner_id IS NULL) = %s AND e.uid = %s"
    )
    row = platform.query(query, own, evse_uid)
    return None if row is None else str(row[0])


def command(platform: Platform, jwt: str, pk: int) -> dict[str, Any]:
    response = platform.api("GET", f"/api/commands/{pk}/", jwt)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def money(value: Any) -> Decimal:
    return Decimal(str(value))


# --- the story -------------------------------------------------------------------------------------------------


def register(a: Platform, b: Platform) -> None:
    """1. B registers with A with a token A handed over out of band."""
    token_a = a.manage("ocpi_invite", "--name", "B")["token"]
    registered = b.manage("ocpi_register", "--versions-url", a.versions_url, f"--token={token_a}", "--name", "A")
    assert registered["ok"] is True, registered
    assert b.partners()["A"]["status"] == "REGISTERED"
    assert a.partners()["B"]["status"] == "REGISTERED"


def pull_locations_and_tariffs(b: Platform) -> None:
    """2. B pulls A's tariffs and locations (what A had before B registered is never pushed)."""
    runs = b.shell(
        "import json\n"
        "from ocpi_core.models import Partner\n"
        "from ocpi_core.sync import sync_run\n"
        "partner = Partner.objects.get(name='A')\n"
        "runs = [sync_run(partner=partner, module=m, full=True) for m in ('tariffs', 'locations')]\n"
        "print(json.dumps({r.module: [r.status, r.received, r.message] for r in runs}))"
    )
    assert runs["tariffs"][:2] == ["SUCCEEDED", 3], runs
    assert runs["locations"][:2] == ["SUCCEEDED", 3], runs
    tariff = partner_tariff(b, TARIFF)
    assert tariff is not None
    assert (tariff["country_code"], tariff["party_id"]) == CPO
    energy_price = {"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1}
    assert tariff["elements"][0]["price_components"][1] == energy_price
    location = partner_location(b, LOCATION)
    assert location is not None
    assert {e["uid"]: e["status"] for e in location["evses"]}[EVSE] == "AVAILABLE"
    assert location["evses"][0]["connectors"][0]["tariff_ids"] == [TARIFF]


def issue_token(a: Platform, b: Platform, b_jwt: str) -> dict[str, Any]:
    """3. B issues a token through its platform API; B's outbox pushes it to A's tokens Receiver."""
    body = {
        "country_code": EMSP[0],
        "party_id": EMSP[1],
        "uid": TOKEN_UID,
        "type": "RFID",
        "contract_id": "NL-XBE-C00000001-X",
        "visual_number": "E2E 0001",
        "issuer": "B Mobility",
        "valid": True,
        "whitelist": "ALLOWED",
    }
    response = b.api("PUT", f"/api/tokens/{EMSP[0]}/{EMSP[1]}/{TOKEN_UID}", b_jwt, json=body)
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    at_a = wait_for("B's token at A", lambda: partner_token(a, TOKEN_UID), alive=(a, b))
    assert (at_a["country_code"], at_a["party_id"], at_a["contract_id"]) == (*EMSP, body["contract_id"])
    assert at_a["valid"] is True
    return token


def start_session(a: Platform, b: Platform, b_jwt: str, partner_a: int, token: dict[str, Any]) -> dict[str, Any]:
    """4. START_SESSION from B to A; returns the session as B received it."""
    response = b.api(
        "POST",
        "/api/commands/",
        b_jwt,
        json={
            "partner": partner_a,
            "command_type": "START_SESSION",
            "token": token,
            "location_id": LOCATION,
            "evse_uid": EVSE,
            "connector_id": "1",
            "authorization_reference": "E2E-AUTH-REF-1",
        },
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert (sent["direction"], sent["response_result"], sent["result_error"]) == ("SENT", "ACCEPTED", ""), sent
    done = wait_for(
        "the CommandResult of START_SESSION at B",
        lambda: (c := command(b, b_jwt, sent["id"]))["result"] and c,
        alive=(a, b),
    )
    assert done["result"] == "ACCEPTED", done
    # A's side of the command: received, carried out by the simulator, the result delivered to B's response_url
    received = a.query(
        "SELECT result, result_delivery, gateway FROM commands_command WHERE direction = 'RECEIVED' "
        "AND command_type = 'START_SESSION'",
    )
    assert received is not None
    assert (received[0], received[2]) == ("ACCEPTED", "simulator"), received
    session_id = wait_for(
        "A's own session",
        lambda: (
            (
                row := a.query(
                    "SELECT ocpi_id FROM sessions_app_session "
                    "WHERE partner_id IS NULL AND authorization_reference = %s",
                    "E2E-AUTH-REF-1",
                )
            )
            and row[0]
        ),
        alive=(a, b),
    )
    session = wait_for("the session pushed to B", lambda: partner_session(b, session_id), alive=(a, b))
    assert (session["country_code"], session["party_id"]) == CPO
    assert session["authorization_reference"] == "E2E-AUTH-REF-1"
    assert session["cdr_token"]["uid"] == TOKEN_UID
    assert (session["location_id"], session["evse_uid"], session["connector_id"]) == (LOCATION, EVSE, "1")
    assert session["status"] == "ACTIVE"
    assert session["auth_method"] == "COMMAND"
    wait_for("EVSE CHARGING at B", lambda: evse_status(b, own=False, evse_uid=EVSE) == "CHARGING" or None, alive=(a, b))
    assert evse_status(a, own=True, evse_uid=EVSE) == "CHARGING"
    return session


def charge(a: Platform, b: Platform, session_id: str) -> dict[str, Any]:
    """5a. The simulator's ticks add charging periods and energy, each pushed to B."""

    def grown() -> dict[str, Any] | None:
        session = partner_session(b, session_id)
        if session and len(session.get("charging_periods") or []) >= 3 and money(session["kwh"]) > 0:
            return session
        return None

    session = wait_for("three charging periods at B", grown, alive=(a, b))
    energy = [money(d["volume"]) for p in session["charging_periods"] for d in p["dimensions"] if d["type"] == "ENERGY"]
    assert all(e > 0 for e in energy), energy
    assert money(session["kwh"]) == sum(energy), session
    return session


def set_charging_profile(a: Platform, b: Platform, session_id: str) -> None:
    """6. B limits the session to 3.7 kW: A answers ACCEPTED and POSTs the result ACCEPTED to B's response_url."""
    sent = b.shell(
        "import json\n"
        "from ocpi_core.models import Partner\n"
        "from chargingprofiles.services import chargingprofile_send\n"
        "r = chargingprofile_send(partner=Partner.objects.get(name='A'), session_id=" + repr(session_id) + ", "
        "kind='SET', charging_profile={'charging_rate_unit': 'W', 'charging_profile_period': "
        "[{'start_period': 0, 'limit': 3700.0}]})\n"
        "print(json.dumps({'pk': r.pk, 'response': r.response, 'error': r.last_error}))"
    )
    assert (sent["response"], sent["error"]) == ("ACCEPTED", ""), sent
    result = wait_for(
        "the charging profile result at B",
        lambda: (
            (row := b.query("SELECT result FROM chargingprofiles_chargingprofilerequest WHERE id = %s", sent["pk"]))
            and row[0]
        ),
        alive=(a, b),
    )
    assert result == "ACCEPTED"


def stop_session(a: Platform, b: Platform, b_jwt: str, partner_a: int, session_id: str) -> None:
    """5b. STOP_SESSION from B: A completes the session; the result and the COMPLETED session reach B."""
    response = b.api(
        "POST",
        "/api/commands/",
        b_jwt,
        json={"partner": partner_a, "command_type": "STOP_SESSION", "session_id": session_id},
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert sent["response_result"] == "ACCEPTED", sent
    done = wait_for(
        "the CommandResult of STOP_SESSION at B",
        lambda: (c := command(b, b_jwt, sent["id"]))["result"] and c,
        alive=(a, b),
    )
    assert done["result"] == "ACCEPTED", done
    wait_for(
        "the COMPLETED session at B",
        lambda: (s := partner_session(b, session_id)) and s["status"] == "COMPLETED" and s,
        alive=(a, b),
    )
    wait_for(
        "EVSE AVAILABLE at B", lambda: evse_status(b, own=False, evse_uid=EVSE) == "AVAILABLE" or None, alive=(a, b)
    )


def check_cdr(a: Platform, b: Platform, b_jwt: str, session_id: str) -> None:
    """5c. A's priced CDR reaches B; its totals are what the tariff gives for the energy and time recorded."""
    listed = wait_for(
        "the CDR at B",
        lambda: (
            (r := b.api("GET", f"/api/cdrs/?owner=partner&session_id={session_id}", b_jwt)).status_code == 200
            and r.json()["results"]
        ),
        alive=(a, b),
    )
    assert len(listed) == 1, listed
    own = doc(a, "SELECT doc FROM cdrs_cdr WHERE partner_id IS NULL AND session_id = %s", session_id)
    cdr = doc(b, "SELECT doc FROM cdrs_cdr WHERE partner_id IS NOT NULL AND session_id = %s", session_id)
    assert own is not None
    assert cdr is not None
    assert cdr == own  # what B stores is exactly what A generated
    session = partner_session(b, session_id)
    assert session is not None
    assert (cdr["country_code"], cdr["party_id"], cdr["currency"]) == (*CPO, "EUR")
    assert cdr["cdr_token"]["uid"] == TOKEN_UID
    assert cdr["authorization_reference"] == "E2E-AUTH-REF-1"
    assert (cdr["cdr_location"]["id"], cdr["cdr_location"]["evse_uid"]) == (LOCATION, EVSE)
    assert [t["id"] for t in cdr["tariffs"]] == [TARIFF]
    for name in ("start_date_time", "end_date_time"):  # the CDR states whole seconds
        assert instant(cdr[name]) <= instant(session[name]) < instant(cdr[name]) + timedelta(seconds=1), name
    energy = money(cdr["total_energy"])
    own_session = doc(a, "SELECT doc FROM sessions_app_session WHERE partner_id IS NULL AND ocpi_id = %s", session_id)
    assert own_session == session, (own_session, session)  # B's copy of the session is A's, to the last period
    assert energy == money(session["kwh"]) > 0, (cdr, session)
    # €0.50 flat + €0.35/kWh (the energy billed in whole Wh, step_size 1), 21 % VAT, 4 decimals
    billed = (energy * 1000).to_integral_value(rounding="ROUND_CEILING") / 1000
    exact = Decimal("0.50") + Decimal("0.35") * billed  # rounded once, at the end
    excl = exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    incl = (exact * Decimal("1.21")).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert (money(cdr["total_cost"]["excl_vat"]), money(cdr["total_cost"]["incl_vat"])) == (excl, incl), cdr
    assert money(cdr["total_energy_cost"]["excl_vat"]) == excl - Decimal("0.50")
    assert money(cdr["total_fixed_cost"]["excl_vat"]) == Decimal("0.50")
    # total_time: the session's duration in hours
    assert money(cdr["total_time"]) > 0


def test_roaming_story_between_a_cpo_and_an_emsp_platform(pair: tuple[Platform, Platform]) -> None:
    a, b = pair
    with server_logs_on_failure(a, b):
        register(a, b)
        pull_locations_and_tariffs(b)
        b_jwt = b.api_login()
        row = b.query("SELECT id FROM ocpi_core_partner WHERE name = %s", "A")
        assert row is not None
        partner_a = int(row[0])
        token = issue_token(a, b, b_jwt)
        session = start_session(a, b, b_jwt, partner_a, token)
        session_id = session["id"]
        charge(a, b, session_id)
        set_charging_profile(a, b, session_id)
        stop_session(a, b, b_jwt, partner_a, session_id)
        check_cdr(a, b, b_jwt, session_id)
