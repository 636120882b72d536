"""The built-in charge point simulator (the embedded default gateway).

Simulated EVSEs answer commands as configured in the admin (SimulatedEvse: accept, reject, fail, no answer), start
real Sessions (sessions_app.services.session_start, pushed to the token's eMSP) that charge: `simulator_tick` (Celery
beat) adds energy at the EVSE's power, limited by the connector's maximum and by any charging profile set on the
session, and appends a charging period each tick. Stops go through session_stop (the CDR follows), reservations hold
a RESERVATION session and the EVSE RESERVED, and every EVSE status change flows into Locations through
evse_status_set (so to the partners receiving Locations).
"""

import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from commands.choices import ChargingProfileResultType, CommandResultType
from gateway.base import Gateway, GatewayCommand
from gateway.models import SimulatedEvse, SimulatedSession
from locations.models import Connector, Evse, Location
from locations.services import Key, evse_status_set
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.exceptions import OcpiError
from sessions_app.models import Session, SessionStatus
from sessions_app.services import session_start, session_stop, session_update

logger = logging.getLogger(__name__)

_BUSY = frozenset({"CHARGING", "BLOCKED", "RESERVED"})
_BROKEN = frozenset({"INOPERATIVE", "OUTOFORDER", "REMOVED", "UNKNOWN"})
_FOUR = Decimal("0.0001")
_PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3}


def _now() -> datetime:
    """Now, to the millisecond: what the simulator stamps (session start, charging periods, end) must read back the
    same from the OCPI DateTimes it is sent as (format_datetime keeps milliseconds). A session starting at .123456
    whose first period says .123 would begin before its session, and the CDR's pricing refuses that."""
    now = timezone.now()
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def _location(command: GatewayCommand) -> Location | None:
    return Location.objects.filter(
        partner__isnull=True,
        country_code__iexact=command.country_code,
        party_id__iexact=command.party_id,
        ocpi_id__iexact=command.location_id,
    ).first()


def _behaviour(evse: Evse | None) -> str:
    row = SimulatedEvse.objects.filter(evse=evse).first() if evse is not None else None
    return row.behaviour if row is not None else SimulatedEvse.Behaviour.ACCEPT


def _refusal(evse: Evse | None) -> tuple[bool, str | None]:
    """(refused, outcome) from the EVSE's configured behaviour: REJECTED, FAILED or no answer at all."""
    behaviour = _behaviour(evse)
    if behaviour == SimulatedEvse.Behaviour.REJECT:
        return True, CommandResultType.REJECTED
    if behaviour == SimulatedEvse.Behaviour.FAIL:
        return True, CommandResultType.FAILED
    if behaviour == SimulatedEvse.Behaviour.NO_ANSWER:
        return True, None
    return False, None


def _power_kw(evse: Evse, connector: Connector) -> Decimal:
    """What the simulated car draws: the EVSE's configured power, never above the connector's maximum."""
    phases = _PHASES.get(connector.power_type, 1)
    maximum = (
        Decimal(connector.max_electric_power) / 1000
        if connector.max_electric_power
        else Decimal(connector.max_voltage * connector.max_amperage * phases) / 1000
    )
    row = SimulatedEvse.objects.filter(evse=evse).first()
    configured = row.power_kw if row is not None and row.power_kw is not None else maximum
    return min(configured, maximum).quantize(Decimal("0.01"))


def _status(location: Location, evse: Evse, status: str) -> None:
    evse_status_set(key=Key(location.country_code, location.party_id, location.ocpi_id, evse.uid), status=status)


def _cdr_token(token: dict[str, Any]) -> dict[str, Any]:
    """The CdrToken of a Token (REFERENCE §8.4): what a Session carries of the driver's token."""
    return {
        "country_code": token.get("country_code"),
        "party_id": token.get("party_id"),
        "uid": token.get("uid"),
        "type": token.get("type"),
        "contract_id": token.get("contract_id"),
    }


def _reservation_for(evse: Evse, location: Location) -> SimulatedSession | None:
    return SimulatedSession.objects.filter(
        active=True,
        kind=SimulatedSession.Kind.RESERVATION,
        country_code=location.country_code,
        party_id=location.party_id,
        location_id=location.ocpi_id,
        evse_uid=evse.uid,
    ).first()


def _own_session(sim: SimulatedSession) -> Session | None:
    return Session.objects.filter(
        partner__isnull=True, country_code=sim.country_code, party_id=sim.party_id, ocpi_id=sim.session_id
    ).first()


def _profile_limit_kw(sim: SimulatedSession, at: datetime) -> Decimal | None:
    """The limit the session's charging profile sets at `at`, in kW (A converted at the connector's voltage)."""
    profile = sim.charging_profile
    if not profile:
        return None
    start = parse_datetime(profile["start_date_time"]) if profile.get("start_date_time") else sim.started_at
    elapsed = (at - start).total_seconds()
    if profile.get("duration") is not None and elapsed > profile["duration"]:
        return None
    limit = None
    for period in sorted(profile.get("charging_profile_period") or [], key=lambda p: p["start_period"]):
        if period["start_period"] <= elapsed:
            limit = Decimal(str(period["limit"]))
    if limit is None:
        return None
    if profile.get("charging_rate_unit") == "A":
        return limit * sim.voltage * sim.phases / 1000
    return limit / 1000


def _effective_power(sim: SimulatedSession, at: datetime) -> Decimal:
    limit = _profile_limit_kw(sim, at)
    return sim.power_kw if limit is None else max(Decimal(0), min(sim.power_kw, limit))


class SimulatorGateway(Gateway):
    """Simulated chargers: outcomes known at once (except the NO_ANSWER behaviour, which times out)."""

    name = "simulator"

    @transaction.atomic
    def start_session(self, *, command: GatewayCommand) -> str | None:
        location = _location(command)
        if location is None:
            return CommandResultType.FAILED
        evses = location.evses.exclude(status="REMOVED")
        if command.evse_uid:
            evses = evses.filter(uid__iexact=command.evse_uid)
        evse = evses.filter(status="AVAILABLE").first() if not command.evse_uid else evses.first()
        if evse is None:
            return CommandResultType.EVSE_OCCUPIED if location.evses.exists() else CommandResultType.FAILED
        refused, outcome = _refusal(evse)
        if refused:
            return outcome
        reservation = _reservation_for(evse, location) if evse.status == "RESERVED" else None
        if evse.status in _BROKEN:
            return CommandResultType.EVSE_INOPERATIVE
        if evse.status in _BUSY and not (reservation is not None and _same_token(reservation, command.token)):
            return CommandResultType.EVSE_OCCUPIED
        connectors = evse.connectors.all()
        connector = (
            connectors.filter(ocpi_id__iexact=command.connector_id).first()
            if command.connector_id
            else connectors.first()
        )
        if connector is None:
            return CommandResultType.FAILED
        now = _now()
        power = _power_kw(evse, connector)
        if reservation is not None:  # the reserved driver arrived: the RESERVATION session becomes the charging one
            session = _own_session(reservation)
            if session is not None:
                session_update(session=session, status=SessionStatus.ACTIVE, at=now)
            reservation.kind, reservation.started_at, reservation.last_tick_at = (
                SimulatedSession.Kind.CHARGING,
                now,
                now,
            )
            reservation.connector_id, reservation.power_kw = connector.ocpi_id, power
            reservation.save()
        else:
            try:
                session = session_start(
                    location_id=location.ocpi_id,
                    evse_uid=evse.uid,
                    connector_id=connector.ocpi_id,
                    cdr_token=_cdr_token(command.token),
                    auth_method="COMMAND",
                    authorization_reference=command.authorization_reference,
                    country_code=location.country_code,
                    party_id=location.party_id,
                    start=now,
                )
            except OcpiError as exc:
                logger.warning("Simulator could not start a session", extra={"error": exc.message})
                return CommandResultType.FAILED
            self._track(session, SimulatedSession.Kind.CHARGING, connector, power, now)
        _status(location, evse, "CHARGING")
        return CommandResultType.ACCEPTED

    def _track(
        self,
        session: Session,
        kind: str,
        connector: Connector,
        power: Decimal,
        now: datetime,
        *,
        reservation_id: int | None = None,
        expiry: datetime | None = None,
    ) -> SimulatedSession:
        return SimulatedSession.objects.create(
            country_code=session.country_code,
            party_id=session.party_id,
            session_id=session.ocpi_id,
            kind=kind,
            location_id=session.location_id,
            evse_uid=session.evse_uid,
            connector_id=connector.ocpi_id,
            reservation_id=reservation_id,
            expiry_date=expiry,
            power_kw=power,
            phases=_PHASES.get(connector.power_type, 1),
            voltage=connector.max_voltage,
            started_at=now,
            last_tick_at=now,
        )

    @transaction.atomic
    def stop_session(self, *, command: GatewayCommand, session: Session) -> str | None:
        location = _location(command)
        evse = location.evses.filter(uid__iexact=session.evse_uid).first() if location else None
        refused, outcome = _refusal(evse)
        if refused:
            return outcome
        sim = (
            SimulatedSession.objects.select_for_update()
            .filter(
                active=True, country_code=session.country_code, party_id=session.party_id, session_id=session.ocpi_id
            )
            .first()
        )
        now = _now()
        if sim is not None:
            if sim.kind == SimulatedSession.Kind.CHARGING:
                simulator_tick_session(sim=sim, now=now)
            sim.active = False
            sim.save(update_fields=["active"])
        reserved = session.status == SessionStatus.RESERVATION
        session_stop(session=session, at=now, status=SessionStatus.INVALID if reserved else SessionStatus.COMPLETED)
        if location is not None and evse is not None:
            _status(location, evse, "AVAILABLE")
        return CommandResultType.ACCEPTED

    @transaction.atomic
    def reserve_now(self, *, command: GatewayCommand) -> str | None:
        location = _location(command)
        if location is None:
            return CommandResultType.FAILED
        current = SimulatedSession.objects.filter(
            active=True, kind=SimulatedSession.Kind.RESERVATION, reservation_id=command.reservation_id
        ).first()
        evses = location.evses.exclude(status="REMOVED")
        if command.evse_uid:
            evse = evses.filter(uid__iexact=command.evse_uid).first()
        elif current is not None and current.location_id.lower() == location.ocpi_id.lower():
            evse = evses.filter(uid=current.evse_uid).first()
        else:
            evse = evses.filter(status="AVAILABLE").first()
        if evse is None:
            return CommandResultType.EVSE_OCCUPIED if evses.exists() else CommandResultType.FAILED
        refused, outcome = _refusal(evse)
        if refused:
            return outcome
        if "RESERVABLE" not in (evse.capabilities or ["RESERVABLE"]):
            return CommandResultType.NOT_SUPPORTED
        same_place = current is not None and current.location_id == location.ocpi_id and current.evse_uid == evse.uid
        if same_place and current is not None:  # the same reservation again: a new expiry, nothing else changes
            current.expiry_date = command.expiry_date
            current.save(update_fields=["expiry_date"])
            return CommandResultType.ACCEPTED
        if evse.status in _BROKEN:
            return CommandResultType.EVSE_INOPERATIVE
        if evse.status != "AVAILABLE":
            return CommandResultType.EVSE_OCCUPIED
        if current is not None:  # replaced by a reservation elsewhere: the old one ends
            self._end_reservation(current)
        connector = evse.connectors.first()
        if connector is None:
            return CommandResultType.FAILED
        now = _now()
        try:
            session = session_start(
                location_id=location.ocpi_id,
                evse_uid=evse.uid,
                connector_id=connector.ocpi_id,
                cdr_token=_cdr_token(command.token),
                auth_method="COMMAND",
                authorization_reference=command.authorization_reference,
                status=SessionStatus.RESERVATION,
                country_code=location.country_code,
                party_id=location.party_id,
                start=now,
            )
        except OcpiError as exc:
            logger.warning("Simulator could not reserve", extra={"error": exc.message})
            return CommandResultType.FAILED
        self._track(
            session,
            SimulatedSession.Kind.RESERVATION,
            connector,
            _power_kw(evse, connector),
            now,
            reservation_id=command.reservation_id,
            expiry=command.expiry_date,
        )
        _status(location, evse, "RESERVED")
        return CommandResultType.ACCEPTED

    def _end_reservation(self, sim: SimulatedSession) -> None:
        """End a reservation on the charger: its session INVALID (not used, not billed), the EVSE free again."""
        sim.active = False
        sim.save(update_fields=["active"])
        session = _own_session(sim)
        if session is not None and session.status == SessionStatus.RESERVATION:
            session_stop(session=session, status=SessionStatus.INVALID)
        location = Location.objects.filter(
            partner__isnull=True, country_code=sim.country_code, party_id=sim.party_id, ocpi_id=sim.location_id
        ).first()
        evse = location.evses.filter(uid=sim.evse_uid).first() if location else None
        if location is not None and evse is not None and evse.status == "RESERVED":
            _status(location, evse, "AVAILABLE")

    @transaction.atomic
    def cancel_reservation(self, *, command: GatewayCommand) -> str | None:
        sim = SimulatedSession.objects.filter(
            active=True, kind=SimulatedSession.Kind.RESERVATION, reservation_id=command.reservation_id
        ).first()
        if sim is None:
            return CommandResultType.UNKNOWN_RESERVATION
        location = _location(command)
        refused, outcome = _refusal(location.evses.filter(uid=sim.evse_uid).first() if location else None)
        if refused:
            return outcome
        self._end_reservation(sim)
        return CommandResultType.ACCEPTED

    def unlock_connector(self, *, command: GatewayCommand) -> str | None:
        location = _location(command)
        evse = location.evses.filter(uid__iexact=command.evse_uid or "").first() if location else None
        if evse is None or not evse.connectors.filter(ocpi_id__iexact=command.connector_id or "").exists():
            return CommandResultType.FAILED
        refused, outcome = _refusal(evse)
        return outcome if refused else CommandResultType.ACCEPTED

    @transaction.atomic
    def set_charging_profile(self, *, session: Session, profile: dict[str, Any] | None) -> str:
        sim = (
            SimulatedSession.objects.select_for_update()
            .filter(
                active=True, country_code=session.country_code, party_id=session.party_id, session_id=session.ocpi_id
            )
            .first()
        )
        if sim is None:
            return ChargingProfileResultType.UNKNOWN
        location = Location.objects.filter(
            partner__isnull=True, country_code=sim.country_code, party_id=sim.party_id, ocpi_id=sim.location_id
        ).first()
        evse = location.evses.filter(uid=sim.evse_uid).first() if location else None
        if _behaviour(evse) != SimulatedEvse.Behaviour.ACCEPT:
            return ChargingProfileResultType.REJECTED
        if sim.kind == SimulatedSession.Kind.CHARGING:
            simulator_tick_session(sim=sim, now=_now())  # energy so far at the old limit
        sim.charging_profile = dict(profile) if profile else None
        sim.save(update_fields=["charging_profile"])
        return ChargingProfileResultType.ACCEPTED

    def active_charging_profile(self, *, session: Session, duration: int) -> dict[str, Any] | None:
        sim = SimulatedSession.objects.filter(
            active=True, country_code=session.country_code, party_id=session.party_id, session_id=session.ocpi_id
        ).first()
        if sim is None:
            return None
        now = _now()
        return {
            "start_date_time": format_datetime(now),
            "charging_profile": {
                "charging_rate_unit": "W",
                "duration": duration,
                "charging_profile_period": [{"start_period": 0, "limit": float(_effective_power(sim, now) * 1000)}],
            },
        }


def _same_token(sim: SimulatedSession, token: dict[str, Any]) -> bool:
    session = _own_session(sim)
    stored = session.cdr_token if session is not None else {}
    return str(stored.get("uid", "")).lower() == str(token.get("uid", "")).lower()


def simulator_tick_session(*, sim: SimulatedSession, now: datetime) -> SimulatedSession:
    """Add the energy charged since the last tick to a charging session and append it as a charging period.

    Runs inside a transaction: the row is locked and read again first, so a beat's tick and a tick of a stop or a
    charging profile running at the same time never count the same interval twice (a duplicated period, and a kWh
    total that lost one of the two additions)."""
    sim = SimulatedSession.objects.select_for_update().get(pk=sim.pk)
    seconds = Decimal((now - sim.last_tick_at).total_seconds())
    if seconds <= 0:
        return sim
    power = _effective_power(sim, sim.last_tick_at)
    energy = (power * seconds / 3600).quantize(_FOUR, rounding=ROUND_HALF_UP)
    session = _own_session(sim)
    if session is not None and session.status == SessionStatus.ACTIVE:
        period = {
            "start_date_time": format_datetime(sim.last_tick_at),
            "dimensions": [
                {"type": "ENERGY", "volume": energy},
                {"type": "MAX_POWER", "volume": power},
                {"type": "TIME", "volume": (seconds / 3600).quantize(_FOUR, rounding=ROUND_HALF_UP)},
            ],
        }
        session_update(session=session, kwh=sim.kwh + energy, charging_period=period, at=now)
    sim.kwh += energy
    sim.last_tick_at = now
    sim.save(update_fields=["kwh", "last_tick_at"])
    return sim


def simulator_tick(*, now: datetime | None = None) -> int:
    """One beat of the simulator: charging sessions grow, expired reservations end. Returns sessions touched."""
    now = now or _now()
    count = 0
    for sim_id in SimulatedSession.objects.filter(active=True).values_list("pk", flat=True):
        with transaction.atomic():
            sim = SimulatedSession.objects.select_for_update().filter(pk=sim_id, active=True).first()
            if sim is None:
                continue
            try:
                if sim.kind == SimulatedSession.Kind.CHARGING:
                    simulator_tick_session(sim=sim, now=now)
                elif sim.expiry_date is not None and sim.expiry_date <= now:
                    SimulatorGateway()._end_reservation(sim)
            except OcpiError as exc:  # e.g. the session was stopped elsewhere: stop simulating it
                logger.warning("Simulator tick failed", extra={"session": sim.session_id, "error": exc.message})
                SimulatedSession.objects.filter(pk=sim.pk).update(active=False)
            count += 1
    return count
