"""The roaming story (issue #5) between two running instances of the platform, step by step: what the end-to-end test
(tests/test_roaming_e2e.py) asserts and the demo (scripts/roaming-demo) narrates, one code for both.

Instance A is the CPO (party NL*XAC: the demo locations and tariffs, the built-in charge point simulator ticking every
second), instance B the eMSP (party NL*XBE, one token issued through its platform API). `play(a, b, say)` runs:

1. B registers with A (credentials handshake);
2. B pulls A's tariffs and locations (pull sync);
3. A's operator changes EVSEs through A's platform API (capabilities, a status): PATCHed to B;
4. B's token is pushed from B's outbox to A's tokens Receiver;
5. B sends START_SESSION through its platform API: A answers ACCEPTED, its simulator starts the session, A POSTs the
   CommandResult to B's response_url, pushes the Session (carrying the authorization_reference) and EVSE CHARGING;
6. the simulator charges (periods and kWh pushed to B);
7. B sets a 3.7 kW charging profile through its platform API (/api/chargingprofiles/): the result reaches B and the
   periods pushed afterwards charge at the lower power;
8. B sends STOP_SESSION; A completes the session, prices the CDR with the tariff and POSTs it to B;
9. RESERVE_NOW then CANCEL_RESERVATION (a RESERVATION session and EVSE RESERVED at B, then INVALID and AVAILABLE);
10. UNLOCK_CONNECTOR;
11. B unregisters: neither side's token works any more (401 both ways).

Each step checks both instances' data (plain SQL on their databases, their platform APIs); everything asynchronous is
polled with bounded timeouts. Nothing here needs pytest.
"""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from tests.platforms import Platform

T = TypeVar("T")

CPO = ("NL", "XAC")
EMSP = ("NL", "XBE")
LOCATION = "XAC-ROTTERDAM-01"  # demo location: EVSE XAC-0003-01 AVAILABLE, tariff XAC-AC-STANDARD
EVSE = "XAC-0003-01"
TARIFF = "XAC-AC-STANDARD"  # €0.50 per session + €0.35/kWh, 21 % VAT
TOKEN_UID = "E2E0000001"
TICK_SECONDS = 1
WAIT = 30.0
OTHER_EVSE = "XAC-0003-02"  # demo: BLOCKED, same location
RESERVATION_ID = "E2E-RESV-1"
PROFILE_LIMIT_W = 3700.0
# What both instances run with: a simulator ticking every second, short push retries, no caches, profiles any time.
STORY_ENV = {
    "GATEWAY_SIMULATOR_TICK_SECONDS": str(TICK_SECONDS),
    "OCPI_PUSH_RETRY_BASE_SECONDS": "1",
    "OCPI_PUSH_RETRY_MAX_SECONDS": "2",
    "OCPI_HOT_CACHE_SECONDS": "0",
    "OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS": "0",
    "DJANGO_LOG_LEVEL": "WARNING",
}
Say = Callable[[str], None]


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
    # A tick that comes a few milliseconds after the one before (two close together on a loaded machine) adds a
    # period whose energy rounds to 0.0000 kWh: valid OCPI, and counted in the total like the others.
    assert all(e >= 0 for e in energy), energy
    assert sum(e > 0 for e in energy) >= 2, energy
    assert money(session["kwh"]) == sum(energy), session
    return session


def _periods(session: dict[str, Any]) -> list[tuple[datetime, Decimal, Decimal]]:
    """(start, ENERGY kWh, MAX_POWER kW) of each charging period of a session."""
    rows = []
    for period in session.get("charging_periods") or []:
        volumes = {d["type"]: money(d["volume"]) for d in period["dimensions"]}
        rows.append((instant(period["start_date_time"]), volumes["ENERGY"], volumes["MAX_POWER"]))
    return rows


def _average_kw(rows: list[tuple[datetime, Decimal, Decimal]]) -> Decimal:
    """The power charged over consecutive periods (each one ends where the next starts; the last is left out)."""
    seconds = Decimal(str((rows[-1][0] - rows[0][0]).total_seconds()))
    return sum((r[1] for r in rows[:-1]), Decimal(0)) * 3600 / seconds


def set_charging_profile(a: Platform, b: Platform, b_jwt: str, partner_a: int, session_id: str) -> dict[str, Any]:
    """7. B limits the session to 3.7 kW through its platform API: A answers ACCEPTED, its simulator applies the
    profile and POSTs the result ACCEPTED to B's response_url; the periods A pushes afterwards charge at 3.7 kW."""
    before = _periods(partner_session(b, session_id) or {})
    assert before
    assert all(r[2] > Decimal(PROFILE_LIMIT_W) / 1000 for r in before), before  # the car draws 11 kW
    profile = {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": PROFILE_LIMIT_W}]}
    response = b.api(
        "POST",
        "/api/chargingprofiles/",
        b_jwt,
        json={"partner": partner_a, "session_id": session_id, "kind": "set", "charging_profile": profile},
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert (sent["direction"], sent["kind"], sent["response"], sent["last_error"]) == ("SENT", "SET", "ACCEPTED", "")
    done = wait_for(
        "the charging profile result at B",
        lambda: (r := b.api("GET", f"/api/chargingprofiles/{sent['id']}/", b_jwt).json())["result"] and r,
        alive=(a, b),
    )
    assert done["result"] == "ACCEPTED", done
    received = a.query(
        "SELECT response, result, callback_status FROM chargingprofiles_chargingprofilerequest "
        "WHERE direction = 'RECEIVED' AND kind = 'SET' AND session_id = %s",
        session_id,
    )
    assert received == ("ACCEPTED", "ACCEPTED", "SENT"), received

    def limited() -> list[tuple[datetime, Decimal, Decimal]] | None:
        rows = _periods(partner_session(b, session_id) or {})[len(before) :]
        capped = [r for r in rows if r[2] == Decimal(PROFILE_LIMIT_W) / 1000]
        return capped if len(capped) >= 3 else None

    after = wait_for("three periods at 3.7 kW at B", limited, alive=(a, b))
    unlimited_kw, limited_kw = _average_kw(before), _average_kw(after)
    assert limited_kw < Decimal("4.2") < Decimal("9") < unlimited_kw, (before, after)
    return {"before_kw": unlimited_kw, "after_kw": limited_kw}


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


def check_cdr(a: Platform, b: Platform, b_jwt: str, session_id: str) -> dict[str, Any]:
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
    return cdr


def change_evses(a: Platform, b: Platform, a_jwt: str) -> None:
    """3. A's operator changes EVSEs through A's platform API; each change is PATCHed to B: EVSE_UID can now be
    reserved and unlocked remotely, OTHER_EVSE goes out of order."""
    path = f"/api/locations/{CPO[0]}/{CPO[1]}/{LOCATION}/evses"
    capabilities = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "RESERVABLE", "UNLOCK_CAPABLE"]
    response = a.api("PATCH", f"{path}/{EVSE}", a_jwt, json={"capabilities": capabilities})
    assert response.status_code == 200, response.text
    response = a.api("POST", f"{path}/{OTHER_EVSE}/status", a_jwt, json={"status": "OUTOFORDER"})
    assert response.status_code == 200, response.text
    assert evse_status(a, own=True, evse_uid=OTHER_EVSE) == "OUTOFORDER"

    def arrived() -> dict[str, Any] | None:
        location = partner_location(b, LOCATION) or {}
        evses = {e["uid"]: e for e in location.get("evses") or []}
        changed = (
            evses.get(OTHER_EVSE, {}).get("status") == "OUTOFORDER" and evses[EVSE]["capabilities"] == capabilities
        )
        return evses if changed else None

    wait_for("the EVSE changes at B", arrived, alive=(a, b))
    assert evse_status(b, own=False, evse_uid=OTHER_EVSE) == "OUTOFORDER"


def send_command(a: Platform, b: Platform, b_jwt: str, partner_a: int, command_type: str, **fields: Any) -> None:
    """A command from B through its platform API: A answers ACCEPTED, carries it out on the simulator and POSTs the
    result ACCEPTED to B; A's received command says the same."""
    body = {"partner": partner_a, "command_type": command_type, **fields}
    response = b.api("POST", "/api/commands/", b_jwt, json=body)
    assert response.status_code == 201, response.text
    sent = response.json()
    assert (sent["response_result"], sent["result_error"]) == ("ACCEPTED", ""), sent
    done = wait_for(
        f"the CommandResult of {command_type} at B",
        lambda: (c := command(b, b_jwt, sent["id"]))["result"] and c,
        alive=(a, b),
    )
    assert done["result"] == "ACCEPTED", done
    received = a.query(
        "SELECT result, gateway FROM commands_command WHERE direction = 'RECEIVED' AND command_type = %s "
        "ORDER BY id DESC",
        command_type,
    )
    assert received == ("ACCEPTED", "simulator"), received


def reserve_and_cancel(a: Platform, b: Platform, b_jwt: str, partner_a: int, token: dict[str, Any]) -> str:
    """9. RESERVE_NOW holds the EVSE: a RESERVATION session and EVSE RESERVED at B; CANCEL_RESERVATION frees it (the
    session INVALID, never billed; EVSE AVAILABLE). Returns the reservation's session id."""
    expiry = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    send_command(
        a,
        b,
        b_jwt,
        partner_a,
        "RESERVE_NOW",
        token=token,
        expiry_date=expiry,
        reservation_id=RESERVATION_ID,
        location_id=LOCATION,
        evse_uid=EVSE,
        authorization_reference="E2E-RESV-REF-1",
    )
    row = a.query(
        "SELECT ocpi_id, status FROM sessions_app_session WHERE partner_id IS NULL AND authorization_reference = %s",
        "E2E-RESV-REF-1",
    )
    assert row is not None
    assert row[1] == "RESERVATION", row
    session_id = str(row[0])
    held = wait_for(
        "the RESERVATION session at B",
        lambda: (s := partner_session(b, session_id)) and s["status"] == "RESERVATION" and s,
        alive=(a, b),
    )
    assert (held["evse_uid"], held["cdr_token"]["uid"]) == (EVSE, TOKEN_UID)
    wait_for("EVSE RESERVED at B", lambda: evse_status(b, own=False, evse_uid=EVSE) == "RESERVED" or None, alive=(a, b))
    assert evse_status(a, own=True, evse_uid=EVSE) == "RESERVED"

    send_command(a, b, b_jwt, partner_a, "CANCEL_RESERVATION", reservation_id=RESERVATION_ID)
    wait_for(
        "EVSE AVAILABLE at B", lambda: evse_status(b, own=False, evse_uid=EVSE) == "AVAILABLE" or None, alive=(a, b)
    )
    assert evse_status(a, own=True, evse_uid=EVSE) == "AVAILABLE"
    ended = wait_for(
        "the cancelled reservation's session at B",
        lambda: (s := partner_session(b, session_id)) and s["status"] == "INVALID" and s,
        alive=(a, b),
    )
    own = doc(a, "SELECT doc FROM sessions_app_session WHERE partner_id IS NULL AND ocpi_id = %s", session_id)
    assert own == ended, (own, ended)
    assert a.query("SELECT count(*) FROM cdrs_cdr WHERE session_id = %s", session_id) == (0,)  # nothing to bill
    return session_id


def unlock_connector(a: Platform, b: Platform, b_jwt: str, partner_a: int) -> None:
    """10. UNLOCK_CONNECTOR on the EVSE: ACCEPTED at B (the simulator unlocks at once)."""
    send_command(a, b, b_jwt, partner_a, "UNLOCK_CONNECTOR", location_id=LOCATION, evse_uid=EVSE, connector_id="1")


def unregister(a: Platform, b: Platform) -> None:
    """11. B unregisters (credentials DELETE at A): both sides forget each other; neither token works any more."""
    token_b_to_a, token_a_to_b = b.token_out("A"), a.token_out("B")
    for platform, token in ((a, token_b_to_a), (b, token_a_to_b)):
        assert platform.get("/ocpi/versions", token).status_code == 200
    result = b.manage("ocpi_unregister", "--partner", "A")
    assert (result["ok"], result["remote_error"]) == (True, ""), result
    assert b.partner_status("A") == "UNREGISTERED"
    assert a.partner_status("B") == "UNREGISTERED"
    for platform, token in ((a, token_b_to_a), (b, token_a_to_b)):
        for path in ("/ocpi/versions", "/ocpi/2.2.1"):
            answer = platform.get(path, token)
            assert answer.status_code == 401, (platform.label, path, answer.status_code, answer.text)


def _euro(value: Any) -> str:
    return f"EUR {money(value):.2f}"


def play(a: Platform, b: Platform, say: Say) -> dict[str, Any]:
    """The whole story, A the CPO and B the eMSP, both freshly prepared (ocpi_demo) and running with their workers.
    `say` is told what happens at each step. Returns what it saw (session, CDR, powers)."""
    say(f"A (CPO {CPO[0]}*{CPO[1]}) runs at {a.base_url}, B (eMSP {EMSP[0]}*{EMSP[1]}) at {b.base_url}")
    register(a, b)
    say("1. B registered with A (credentials handshake): both sides REGISTERED")
    pull_locations_and_tariffs(b)
    say(f"2. B pulled A's 3 tariffs and 3 locations; {EVSE} is AVAILABLE at B")
    a_jwt, b_jwt = a.api_login(), b.api_login()
    row = b.query("SELECT id FROM ocpi_core_partner WHERE name = %s", "A")
    assert row is not None
    partner_a = int(row[0])
    change_evses(a, b, a_jwt)
    say(f"3. A set {OTHER_EVSE} OUTOFORDER and made {EVSE} reservable and unlockable: B received both PATCHes")
    token = issue_token(a, b, b_jwt)
    say(f"4. B issued token {TOKEN_UID}: pushed to A")
    session = start_session(a, b, b_jwt, partner_a, token)
    session_id = session["id"]
    say(f"5. START_SESSION: ACCEPTED; A's simulator started session {session_id}, {EVSE} CHARGING at B")
    charged = charge(a, b, session_id)
    say(f"6. Charging: {len(charged['charging_periods'])} periods, {money(charged['kwh'])} kWh at B so far")
    powers = set_charging_profile(a, b, b_jwt, partner_a, session_id)
    say(
        f"7. B set a {PROFILE_LIMIT_W / 1000} kW charging profile: result ACCEPTED, charging went from "
        f"{powers['before_kw']:.1f} kW to {powers['after_kw']:.1f} kW"
    )
    stop_session(a, b, b_jwt, partner_a, session_id)
    say(f"8. STOP_SESSION: ACCEPTED; session COMPLETED at B, {EVSE} AVAILABLE again")
    cdr = check_cdr(a, b, b_jwt, session_id)
    say(
        f"   CDR {cdr['id']}: {money(cdr['total_energy'])} kWh, total "
        f"{_euro(cdr['total_cost']['excl_vat'])} excl. VAT, {_euro(cdr['total_cost']['incl_vat'])} incl. VAT "
        "(B's copy is A's)"
    )
    reservation = reserve_and_cancel(a, b, b_jwt, partner_a, token)
    say(f"9. RESERVE_NOW then CANCEL_RESERVATION: ACCEPTED; session {reservation} RESERVATION then INVALID at B")
    unlock_connector(a, b, b_jwt, partner_a)
    say(f"10. UNLOCK_CONNECTOR on {EVSE}/1: ACCEPTED")
    unregister(a, b)
    say("11. B unregistered: both sides UNREGISTERED, each one's token now gets 401 at the other")
    return {"session": session_id, "cdr": cdr, "powers": powers, "reservation": reservation}
