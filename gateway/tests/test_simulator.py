"""The simulator gateway: a session started by command charges on every tick (power limited by the connector and by
a charging profile), is stopped into a completed session, and the EVSE status follows in Locations."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.utils import timezone

from cdrs.models import Cdr
from gateway.base import GatewayCommand, gateway_for
from gateway.models import Backend, SimulatedEvse, SimulatedSession
from gateway.services import location_gateway_set, simulated_evse_set
from gateway.simulator import SimulatorGateway, simulator_tick, simulator_tick_session
from gateway.webhook import WebhookGateway
from locations.models import Evse, Location
from locations.tests.factories import own_location
from ocpi_core.models import Party
from sessions_app.models import Session
from tariffs.tests.factories import own_connector, own_tariff

pytestmark = pytest.mark.django_db


@pytest.fixture
def location(own_parties: list[Party]) -> Location:
    return own_location("LOC1", evses=2)


def command(command_type: str = "START_SESSION", **fields: Any) -> GatewayCommand:
    values: dict[str, Any] = {
        "command_id": 1,
        "command_type": command_type,
        "country_code": "NL",
        "party_id": "OWN",
        "location_id": "LOC1",
        "evse_uid": "LOC1-1",
        "token": {"country_code": "DE", "party_id": "PRT", "uid": "U1", "type": "APP_USER", "contract_id": "DE-PRT-1"},
        "authorization_reference": "REF1",
    }
    values.update(fields)
    return GatewayCommand(**values)


def kwh(session: Session) -> Decimal:
    session.refresh_from_db()
    return session.kwh


def test_session_lifecycle_start_ticks_stop(location: Location) -> None:
    gateway = SimulatorGateway()

    assert gateway.start_session(command=command()) == "ACCEPTED"

    session = Session.objects.get()
    sim = SimulatedSession.objects.get()
    assert sim.power_kw == Decimal("11.04")  # 230 V x 16 A x 3 phases
    assert Evse.objects.get(uid="LOC1-1").status == "CHARGING"

    simulator_tick(now=sim.started_at + timedelta(minutes=30))
    assert kwh(session) == Decimal("5.52")
    assert len(orjson.loads(session.doc)["charging_periods"]) == 1

    profile = {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": 3680}]}
    assert gateway.set_charging_profile(session=session, profile=profile) == "ACCEPTED"
    active = gateway.active_charging_profile(session=session, duration=600)
    assert active is not None
    assert active["charging_profile"]["charging_profile_period"][0]["limit"] == 3680.0
    simulator_tick(now=sim.started_at + timedelta(minutes=60))
    assert kwh(session) == Decimal("7.36")  # 5.52 + 3.68 kW for half an hour

    assert (
        gateway.stop_session(command=command("STOP_SESSION", session_id=session.ocpi_id), session=session) == "ACCEPTED"
    )

    session.refresh_from_db()
    assert session.status == "COMPLETED"
    assert session.kwh == Decimal("7.36")
    assert Evse.objects.get(uid="LOC1-1").status == "AVAILABLE"
    assert not SimulatedSession.objects.filter(active=True).exists()


def test_configured_power_never_exceeds_the_connector(location: Location) -> None:
    simulated_evse_set(evse=Evse.objects.get(uid="LOC1-1"), behaviour="ACCEPT", power_kw=50)
    SimulatorGateway().start_session(command=command())
    assert SimulatedSession.objects.get().power_kw == Decimal("11.04")


def test_profile_in_amperes_limits_by_phases(location: Location) -> None:
    gateway = SimulatorGateway()
    gateway.start_session(command=command())
    session, sim = Session.objects.get(), SimulatedSession.objects.get()
    gateway.set_charging_profile(
        session=session,
        profile={"charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 8}]},
    )
    sim.refresh_from_db()  # the profile change ticked the energy up to now: an hour from that tick
    simulator_tick(now=sim.last_tick_at + timedelta(hours=1))
    before = sim.kwh
    sim.refresh_from_db()
    assert sim.kwh - before == Decimal("5.52")  # 8 A x 230 V x 3 phases for an hour


def test_profile_on_unknown_session_is_unknown(location: Location) -> None:
    SimulatorGateway().start_session(command=command())
    session = Session.objects.get()
    SimulatedSession.objects.update(active=False)
    assert SimulatorGateway().set_charging_profile(session=session, profile=None) == "UNKNOWN"
    assert SimulatorGateway().active_charging_profile(session=session, duration=60) is None


def test_expired_reservation_frees_the_evse(location: Location) -> None:
    gateway = SimulatorGateway()
    expiry = timezone.now() + timedelta(minutes=15)
    assert gateway.reserve_now(command=command("RESERVE_NOW", reservation_id=7, expiry_date=expiry)) == "ACCEPTED"
    assert Evse.objects.get(uid="LOC1-1").status == "RESERVED"
    assert Session.objects.get().status == "RESERVATION"

    simulator_tick(now=expiry + timedelta(seconds=1))

    assert Evse.objects.get(uid="LOC1-1").status == "AVAILABLE"
    assert Session.objects.get().status == "INVALID"


def test_removed_or_broken_evse(location: Location) -> None:
    Evse.objects.filter(uid="LOC1-1").update(status="OUTOFORDER")
    assert SimulatorGateway().start_session(command=command()) == "EVSE_INOPERATIVE"
    assert not Session.objects.exists()


def test_gateway_for_follows_the_location_setting(location: Location, settings: Any) -> None:
    assert isinstance(gateway_for(location_id="LOC1"), SimulatorGateway)
    location_gateway_set(location=location, backend=Backend.WEBHOOK, webhook_url="http://127.0.0.1:1/hook")
    chosen = gateway_for(location_id="loc1")
    assert isinstance(chosen, WebhookGateway)
    assert chosen.url == "http://127.0.0.1:1/hook"
    settings.GATEWAY_DEFAULT_BACKEND = "webhook"
    assert isinstance(gateway_for(location_id="OTHER"), WebhookGateway)


def test_no_answer_behaviour_returns_nothing(location: Location) -> None:
    SimulatedEvse.objects.create(evse=Evse.objects.get(uid="LOC1-1"), behaviour="NO_ANSWER")
    assert SimulatorGateway().unlock_connector(command=command("UNLOCK_CONNECTOR", connector_id="1")) is None


def test_simulated_session_is_billed_although_now_has_microseconds(
    own_parties: list[Party], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's session start, periods and end are kept to the millisecond, as OCPI DateTimes carry them: a
    start at .123456 with a first period sent as .123 began before its session and the CDR could not be priced."""
    own_tariff("T1")  # €0.50 + €0.25/kWh, 21 % VAT
    connector = own_connector("T1")
    location = connector.evse.location
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now().replace(microsecond=123456))
    gateway = SimulatorGateway()
    at = {"location_id": location.ocpi_id, "evse_uid": connector.evse.uid}

    assert gateway.start_session(command=command(**at)) == "ACCEPTED"
    session = Session.objects.get()
    sim = SimulatedSession.objects.get()
    assert session.start_date_time.microsecond == 123000
    simulator_tick(now=sim.started_at + timedelta(minutes=30))
    assert gateway.stop_session(command=command("STOP_SESSION", **at), session=session) == "ACCEPTED"

    cdr = orjson.loads(Cdr.objects.get(session_id=session.ocpi_id).doc)
    assert cdr["total_energy"] == 5.52
    assert cdr["total_cost"] == {"excl_vat": 1.88, "incl_vat": 2.2748}  # 0.50 + 0.25 x 5.52, +21 %


def test_a_tick_with_a_stale_row_does_not_count_an_interval_twice(location: Location) -> None:
    """Two ticks of the same session at once (the beat's, and one of a stop or a charging profile): the later one
    reads the row again under its lock, so each interval is one charging period and kWh is their sum."""
    assert SimulatorGateway().start_session(command=command()) == "ACCEPTED"
    stale = SimulatedSession.objects.get()
    simulator_tick(now=stale.started_at + timedelta(minutes=30))  # the beat's tick, while `stale` was held

    simulator_tick_session(sim=stale, now=stale.started_at + timedelta(minutes=60))

    session = Session.objects.get()
    periods = orjson.loads(session.doc)["charging_periods"]
    assert [p["start_date_time"] for p in periods] == sorted({p["start_date_time"] for p in periods})
    assert len(periods) == 2
    assert session.kwh == Decimal("11.04") == sum(Decimal(str(p["dimensions"][0]["volume"])) for p in periods)
