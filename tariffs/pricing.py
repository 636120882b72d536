"""The tariff engine: what a session costs under an OCPI 2.2.1 Tariff (REFERENCE §8.3, §9.3; mod_tariffs, mod_cdrs).

Pure (no database; only the two rounding settings are read) and exact: inputs are OCPI JSON dicts whose numbers are
Decimals (tariffs.models.decimalize / loads_exact), and every computation runs on `fractions.Fraction` built from those
Decimals and from microsecond timedeltas. Prices per hour and linear splitting divide by 3600 or by a period's
length, which has no finite decimal expansion: rationals keep all of it exact, and money is rounded exactly once, at
the end (settings OCPI_PRICE_DECIMALS, default 4, and OCPI_PRICE_ROUNDING, default ROUND_HALF_UP). No float anywhere.

How a session is read
    A charging period lasts from its start_date_time to the next period's (the last one to end_date_time). Its
    dimensions say what happened, the clock says how long: a period with TIME / PARKING_TIME / RESERVATION_TIME
    volumes is cut, in the order reservation → charging → parking, into parts whose lengths are proportional to those
    volumes; without any of them it is charging time, unless it reports ENERGY 0 (then it is parking time). Energy
    flows linearly over the charging part (over the whole period when it has none). With `reservation_expires` the
    whole session is reservation time (the reservation never became a charging session).

How it is priced (mod_tariffs "Tariff object", REFERENCE §9.3)
    The parts are cut further wherever a restriction can change: local times of day named by any element (and local
    midnight, and DST transitions) in `time_zone`, session durations (min/max_duration), and the instants at which
    the session's energy reaches a min_kwh/max_kwh value (linear time within the part). For each piece and each
    dimension the first element that has a component of that dimension and whose restrictions all hold at the start
    of the piece applies. Restrictions are AND-ed; each is evaluated on its own at that instant: start_time/end_time
    on the local time of day (end before start wraps past midnight, end 00:00 = end of day, equal = all day),
    start_date (inclusive) / end_date (exclusive) and day_of_week on the local date — so a 22:00-06:00 window limited
    to MONDAY is active Monday 22:00-24:00 and Monday 00:00-06:00, not Tuesday 02:00; min_kwh/max_kwh on the energy
    charged so far; min/max_current and min/max_power on the period's MIN_/MAX_ dimension (the average power
    ENERGY / charging time when no power is reported; an unreported current never matches; 0 while parking);
    min/max_duration on the seconds since start_date_time; `reservation` elements only in reservation time and only
    with the matching flag (RESERVATION needs `reservation` or `reservation_expires`, RESERVATION_EXPIRES needs
    `reservation_expires` and then wins over RESERVATION whatever the order), other elements never in reservation
    time. TIME prices charging time (and reservation time), PARKING_TIME parking time, ENERGY kWh; a FLAT component is
    charged once, when it first becomes active (so a reservation fee and a start fee are both charged).

step_size (mod_cdrs "step_size", REFERENCE §8.3)
    Once per session, on totals: ENERGY — the energy priced by ENERGY components is rounded up to a multiple of the
    step (Wh) of the component that priced the last energy; TIME and PARKING_TIME together — only the dimension of the
    last priced time-based piece is rounded (its session total, in seconds, to that component's step), so charging
    followed by parking rounds only the parking. The surplus is billed as an extra line at the price of that last
    component (the spec's "free parking after 20:00" example: it goes to the last *priced* period). Reservation time
    is rounded on its own the same way (the spec's reservation examples round it even when no charging time follows).
    A step_size of 0 (tariff_5_free_of_charge.json) rounds nothing.

VAT and min/max price
    Each line's incl_vat is excl * (1 + vat/100). A component without `vat` has no VAT known ("different from 0 %"):
    the incl-VAT totals are then unknown (None) unless that line costs nothing. min_price / max_price bound total_cost,
    excl and incl VAT independently (mod_tariffs: "they both apply"); the difference is booked as one adjustment line
    (dimension MIN_PRICE or MAX_PRICE) so that total_cost is still the sum of the lines, while the per-dimension
    totals (total_energy_cost ...) keep what the components computed.
"""

import decimal
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ocpi_core.envelope import format_datetime, parse_datetime

__all__ = ["Amount", "PricedLine", "Pricing", "PricingError", "price_session", "select_tariff"]

FLAT, ENERGY, TIME, PARKING_TIME = "FLAT", "ENERGY", "TIME", "PARKING_TIME"
MIN_PRICE, MAX_PRICE = "MIN_PRICE", "MAX_PRICE"
RESERVATION, RESERVATION_EXPIRES = "RESERVATION", "RESERVATION_EXPIRES"
CHARGING, PARKING, RESERVED = "CHARGING", "PARKING", "RESERVATION"  # what a part of a period was
QUANTITY_DECIMALS = 6  # kWh and hours in outputs (mWh, 3.6 ms); money follows OCPI_PRICE_DECIMALS
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_DURATIONS = ("min_duration", "max_duration")
_MEASURED = ("MIN_CURRENT", "MAX_CURRENT", "MIN_POWER", "MAX_POWER")
_EXTENSIVE = {"ENERGY": None, "TIME": CHARGING, "PARKING_TIME": PARKING, "RESERVATION_TIME": RESERVED}
_ROUNDING_MODES = {
    name: getattr(decimal, name)
    for name in (
        "ROUND_CEILING",
        "ROUND_DOWN",
        "ROUND_FLOOR",
        "ROUND_HALF_DOWN",
        "ROUND_HALF_EVEN",
        "ROUND_HALF_UP",
        "ROUND_UP",
        "ROUND_05UP",
    )
}
ZERO = Fraction(0)


class PricingError(ValueError):
    """The session or tariff cannot be priced; `field` names the input at fault (for 400 answers)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- exact numbers ---------------------------------------------------------------------------------------------------


def _frac(value: Any) -> Fraction:
    """An OCPI number (Decimal or int; never float) as an exact Fraction."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected a Decimal or int, got {type(value).__name__}")
    return Fraction(value)


def _seconds(delta: timedelta) -> Fraction:
    return Fraction(delta.days * 86400 + delta.seconds) + Fraction(delta.microseconds, 1_000_000)


def round_fraction(value: Fraction, places: int, rounding: str) -> Decimal:
    """`value` rounded to `places` decimals with a decimal-module rounding mode, exactly (no float, no precision cap).

    The quotient is cut after one more digit and a sticky digit marks any remainder beyond it, which is all any
    rounding mode needs to decide; Decimal.quantize then rounds that short, exact string.
    """
    negative = value < 0
    scaled = abs(value) * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    digit, sticky = divmod(rest * 10, scaled.denominator)
    text = f"{'-' if negative else ''}{whole}.{digit}{'1' if sticky else ''}"
    rounded = Decimal(text).quantize(Decimal(1), rounding=rounding)
    return rounded.scaleb(-places) + Decimal(0).scaleb(-places)  # keep `places` decimals: 5 → 5.0000


def _quantity(value: Fraction) -> Decimal:
    """A kWh or hours figure: exact when it has at most QUANTITY_DECIMALS decimals, else rounded half-up to them."""
    rounded = round_fraction(value, QUANTITY_DECIMALS, decimal.ROUND_HALF_UP)
    if rounded == 0:
        return Decimal(0)
    text = format(rounded, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


def rounding_policy() -> tuple[int, str]:
    """(decimals, rounding mode) for money outputs, from settings (defaults 4 and ROUND_HALF_UP)."""
    from django.conf import settings

    places = int(getattr(settings, "OCPI_PRICE_DECIMALS", 4))
    mode = str(getattr(settings, "OCPI_PRICE_ROUNDING", "ROUND_HALF_UP")).upper()
    if not mode.startswith("ROUND_"):
        mode = f"ROUND_{mode}"
    if mode not in _ROUNDING_MODES or places < 0:
        raise PricingError("settings", f"OCPI_PRICE_ROUNDING {mode!r} / OCPI_PRICE_DECIMALS {places} not usable")
    return places, _ROUNDING_MODES[mode]


def _text(value: Any) -> Any:
    """JSON-friendly: Decimals as strings, datetimes as OCPI DateTimes, recursively."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Fraction):
        return format(_quantity(value), "f")
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {key: _text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text(item) for item in value]
    return value


# --- results ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """An OCPI Price: excl_vat, and incl_vat when VAT is known for every line that costs something."""

    excl_vat: Decimal
    incl_vat: Decimal | None

    def as_price(self) -> dict[str, Decimal]:
        """The OCPI Price object (incl_vat left out when unknown: it is optional in the spec)."""
        price = {"excl_vat": self.excl_vat}
        if self.incl_vat is not None:
            price["incl_vat"] = self.incl_vat
        return price


@dataclass(frozen=True)
class PricedLine:
    """One line of the bill: which element and price component priced which part of which charging period.

    `volume` is in the dimension's OCPI unit (kWh for ENERGY, hours for TIME and PARKING_TIME, 1 for FLAT, 0 for the
    MIN_PRICE / MAX_PRICE adjustment); `step` lines carry the step_size surplus and have start == end. Money fields
    are rounded per the settings; `exact_excl_vat` / `exact_incl_vat` are the unrounded amounts the totals add up.
    """

    dimension: str
    period_index: int | None
    element_index: int | None
    component_index: int | None
    start_date_time: datetime
    end_date_time: datetime
    volume: Decimal
    price: Decimal
    vat: Decimal | None
    excl_vat: Decimal
    incl_vat: Decimal | None
    reservation: bool = False
    step: bool = False
    exact_excl_vat: Fraction = field(default=ZERO, repr=False)
    exact_incl_vat: Fraction | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (Decimals as strings, DateTimes in OCPI format)."""
        return _text(
            {
                "dimension": self.dimension,
                "period_index": self.period_index,
                "element_index": self.element_index,
                "component_index": self.component_index,
                "start_date_time": self.start_date_time,
                "end_date_time": self.end_date_time,
                "volume": self.volume,
                "price": self.price,
                "vat": self.vat,
                "excl_vat": self.excl_vat,
                "incl_vat": self.incl_vat,
                "reservation": self.reservation,
                "step": self.step,
            }
        )


@dataclass(frozen=True)
class Pricing:
    """A priced session: the bill line by line, the CDR totals, and the charging periods to put in the CDR.

    Totals are sums of the lines' exact amounts, rounded once. Quantities: `total_energy` is the session's energy
    (kWh, exact sum of the ENERGY volumes), `total_time` the charging plus parking hours (reservation time excluded),
    `total_parking_time` the parking hours, `total_reservation_time` the reservation hours; `billed_*` the amounts
    after step_size.
    """

    currency: str
    tariff_id: str | None
    time_zone: str
    breakdown: list[PricedLine]
    charging_periods: list[dict[str, Any]]
    total_cost: Amount
    total_fixed_cost: Amount | None
    total_energy_cost: Amount | None
    total_time_cost: Amount | None
    total_parking_cost: Amount | None
    total_reservation_cost: Amount | None
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    total_reservation_time: Decimal
    billed_energy: Decimal
    billed_time: Decimal
    billed_parking_time: Decimal
    billed_reservation_time: Decimal
    price_cap: str | None = None  # MIN_PRICE or MAX_PRICE when a bound changed total_cost
    exact_total_excl_vat: Fraction = field(default=ZERO, repr=False)
    exact_total_incl_vat: Fraction | None = field(default=None, repr=False)
    decimals: int = 4
    rounding: str = decimal.ROUND_HALF_UP

    def cdr_totals(self) -> dict[str, Any]:
        """The CDR's total_* fields: Prices as {"excl_vat", "incl_vat"?} dicts, energy in kWh, times in hours.

        Optional cost fields are present only when the tariff priced something in that category (total_fixed_cost:
        FLAT fees outside reservations; total_reservation_cost: everything priced in reservation time).
        """
        totals: dict[str, Any] = {"total_cost": self.total_cost.as_price()}
        for name in (
            "total_fixed_cost",
            "total_energy_cost",
            "total_time_cost",
            "total_parking_cost",
            "total_reservation_cost",
        ):
            amount = getattr(self, name)
            if amount is not None:
                totals[name] = amount.as_price()
        totals["total_energy"] = self.total_energy
        totals["total_time"] = self.total_time
        totals["total_parking_time"] = self.total_parking_time
        return totals

    def cdr_charging_periods(self) -> list[dict[str, Any]]:
        """The charging periods with tariff_id set, cut where another price component became active (§8.3).

        A period that did not need cutting is returned as given (plus tariff_id). A cut period's ENERGY, TIME,
        PARKING_TIME and RESERVATION_TIME volumes are shared out (energy as it flowed, times by duration; the last
        piece takes the rounding rest, so the pieces add up to the original volume); other dimensions are copied.
        """
        return [dict(period) for period in self.charging_periods]

    def as_dict(self) -> dict[str, Any]:
        """The full breakdown for audit, JSON-friendly (Decimals as strings)."""
        return _text(
            {
                "tariff_id": self.tariff_id,
                "currency": self.currency,
                "time_zone": self.time_zone,
                "rounding": {"decimals": self.decimals, "mode": self.rounding},
                "totals": self.cdr_totals(),
                "total_reservation_time": self.total_reservation_time,
                "billed": {
                    "energy": self.billed_energy,
                    "time": self.billed_time,
                    "parking_time": self.billed_parking_time,
                    "reservation_time": self.billed_reservation_time,
                },
                "price_cap": self.price_cap,
                "lines": [line.as_dict() for line in self.breakdown],
                "charging_periods": self.cdr_charging_periods(),
            }
        )


# --- reading the session ---------------------------------------------------------------------------------------------


@dataclass
class _Part:
    """A stretch of one charging period during which the EV was charging, parking or reserved."""

    period_index: int
    kind: str
    start: Fraction  # seconds since the session's start_date_time
    end: Fraction
    energy: Fraction  # kWh delivered in this part (linearly over it)
    measurements: dict[str, Fraction]  # MIN_CURRENT, MAX_CURRENT, MIN_POWER, MAX_POWER, CURRENT, POWER


@dataclass
class _Piece:
    """A stretch of a part in which no restriction changes: priced as a whole."""

    part: _Part
    start: Fraction
    end: Fraction
    energy: Fraction
    energy_before: Fraction  # session energy at the start of the piece
    components: dict[str, tuple[int, int]] = field(default_factory=dict)  # dimension → (element, component)


def _parse_instant(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PricingError(name, "must be timezone-aware")
        return value.astimezone(UTC)
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise PricingError(name, str(exc)) from exc


def _dimensions(period: Mapping[str, Any], index: int) -> dict[str, Fraction]:
    values: dict[str, Fraction] = {}
    dimensions = period.get("dimensions")
    if not isinstance(dimensions, list):
        raise PricingError(f"charging_periods[{index}].dimensions", "must be a list of CdrDimensions")
    for number, dimension in enumerate(dimensions):
        where = f"charging_periods[{index}].dimensions[{number}]"
        if not isinstance(dimension, Mapping) or not isinstance(dimension.get("type"), str):
            raise PricingError(where, "must be a CdrDimension with a type")
        try:
            volume = _frac(dimension.get("volume"))
        except TypeError as exc:
            raise PricingError(f"{where}.volume", "must be a number") from exc
        values[dimension["type"]] = values.get(dimension["type"], ZERO) + volume
    return values


def _read_periods(
    periods: Sequence[Mapping[str, Any]], start: datetime, end: datetime, expired: bool
) -> tuple[list[_Part], list[tuple[Fraction, Fraction, dict[str, Fraction]]]]:
    """The session's parts in time order, and each period's (start, end, dimensions) in seconds since start."""
    session = _seconds(end - start)
    if session < 0:
        raise PricingError("end_date_time", "is before start_date_time")
    starts: list[Fraction] = []
    for index, period in enumerate(periods):
        if not isinstance(period, Mapping):
            raise PricingError(f"charging_periods[{index}]", "must be a ChargingPeriod object")
        at = _seconds(
            _parse_instant(period.get("start_date_time"), f"charging_periods[{index}].start_date_time") - start
        )
        if at < 0 or at > session:
            raise PricingError(f"charging_periods[{index}].start_date_time", "lies outside the session")
        if starts and at < starts[-1]:
            raise PricingError(f"charging_periods[{index}].start_date_time", "is before the previous period's")
        starts.append(at)
    spans = [
        (at, starts[index + 1] if index + 1 < len(starts) else session, _dimensions(periods[index], index))
        for index, at in enumerate(starts)
    ]
    parts: list[_Part] = []
    for index, (begin, finish, dims) in enumerate(spans):
        measured: dict[str, Fraction] = {name: dims[name] for name in _MEASURED if name in dims}
        for name in ("CURRENT", "POWER"):  # session-only dimensions, used when a period carries them anyway
            if name in dims:
                measured.setdefault(f"MIN_{name}", dims[name])
                measured.setdefault(f"MAX_{name}", dims[name])
        energy = dims.get("ENERGY", ZERO)
        if expired:
            shares = [(RESERVED, Fraction(1))]
        else:
            volumes = [(RESERVED, dims.get("RESERVATION_TIME")), (CHARGING, dims.get("TIME"))]
            volumes.append((PARKING, dims.get("PARKING_TIME")))
            given = [(kind, volume) for kind, volume in volumes if volume is not None and volume > 0]
            if given:
                whole = sum((volume for _kind, volume in given), ZERO)
                shares = [(kind, volume / whole) for kind, volume in given]
            elif any(name in dims for name in ("RESERVATION_TIME", "TIME", "PARKING_TIME")):
                shares = [(PARKING if "PARKING_TIME" in dims else CHARGING, Fraction(1))]
            else:
                shares = [(PARKING if "ENERGY" in dims and energy == 0 else CHARGING, Fraction(1))]
        kinds = [kind for kind, _share in shares]
        energy_kind = CHARGING if CHARGING in kinds else kinds[0]
        at = begin
        for number, (kind, share) in enumerate(shares):
            stop = finish if number == len(shares) - 1 else at + (finish - begin) * share
            parts.append(
                _Part(
                    index, kind, at, stop, energy if kind == energy_kind else ZERO, measured if kind == CHARGING else {}
                )
            )
            at = stop
    if not parts:  # no periods: nothing measured, but FLAT fees are still due at the start
        parts.append(_Part(-1, RESERVED if expired else CHARGING, ZERO, ZERO, ZERO, {}))
    return parts, spans


# --- restrictions ----------------------------------------------------------------------------------------------------


def _clock(value: Any, name: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise PricingError(name, "must be HH:MM") from exc


def _day(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise PricingError(name, "must be YYYY-MM-DD") from exc


@dataclass(frozen=True)
class _Element:
    """A TariffElement with its restrictions parsed once."""

    index: int
    components: dict[str, tuple[int, Mapping[str, Any]]]  # dimension → (index, first component of that dimension)
    start_time: time | None
    end_time: time | None
    start_date: date | None
    end_date: date | None
    days: frozenset[str]
    limits: dict[str, Fraction]  # min_kwh ... max_duration
    reservation: str | None

    def active(self, *, piece: _Piece, local: datetime, expired: bool, reserved_flag: bool) -> bool:
        """All restrictions hold at the start of `piece` (`local`: that instant in the location's time zone)."""
        if (self.reservation is None) != (piece.part.kind != RESERVED):
            return False  # reservation elements price reservation time only, the others everything else
        if self.reservation == RESERVATION_EXPIRES and not expired:
            return False
        if self.reservation == RESERVATION and not (reserved_flag or expired):
            return False
        return self._clock_holds(local.time()) and self._limits_hold(piece)

    def _clock_holds(self, now: time) -> bool:
        if self.start_time is None and self.end_time is None:
            return True
        begin, finish = self.start_time or time(0), self.end_time or time(0)
        if begin == finish:  # 00:00-00:00 (or equal bounds): the whole day
            return True
        if finish == time(0):  # "to stop at end of the day use 00:00"
            return now >= begin
        if begin < finish:
            return begin <= now < finish
        return now >= begin or now < finish  # end before start: wraps past midnight

    def _limits_hold(self, piece: _Piece) -> bool:
        limits, part = self.limits, piece.part
        energy, elapsed = piece.energy_before, piece.start
        checks = (
            ("min_kwh", energy, True),
            ("max_kwh", energy, False),
            ("min_duration", elapsed, True),
            ("max_duration", elapsed, False),
        )
        for name, value, lower in checks:
            if name in limits and not (value >= limits[name] if lower else value < limits[name]):
                return False
        for quantity in ("current", "power"):
            for lower in (True, False):
                name = f"{'min' if lower else 'max'}_{quantity}"
                if name not in limits:
                    continue
                measured = _measured(part, quantity.upper(), lower)
                if measured is None or not (measured >= limits[name] if lower else measured < limits[name]):
                    return False
        return True


def _measured(part: _Part, quantity: str, lower: bool) -> Fraction | None:
    """The value a min_ (lower) or max_ restriction compares: the period's MIN_/MAX_ dimension, else its other one."""
    if part.kind != CHARGING:
        return ZERO  # nothing is drawn while parking or reserved
    first, second = (f"MIN_{quantity}", f"MAX_{quantity}") if lower else (f"MAX_{quantity}", f"MIN_{quantity}")
    for name in (first, second):
        if name in part.measurements:
            return part.measurements[name]
    if quantity == "POWER" and part.end > part.start:
        return part.energy / ((part.end - part.start) / 3600)  # average kW over the charging part
    return None


def _elements(tariff: Mapping[str, Any]) -> list[_Element]:
    elements = tariff.get("elements")
    if not isinstance(elements, list) or not elements:
        raise PricingError("tariff.elements", "must be a non-empty list of TariffElements")
    parsed = []
    for index, element in enumerate(elements):
        where = f"tariff.elements[{index}]"
        components: dict[str, tuple[int, Mapping[str, Any]]] = {}
        for number, component in enumerate(element.get("price_components") or []):
            kind = component.get("type")
            if kind not in (FLAT, ENERGY, TIME, PARKING_TIME):
                raise PricingError(f"{where}.price_components[{number}].type", f"unknown dimension {kind!r}")
            for name in ("price", "vat"):
                if component.get(name) is not None and not isinstance(component[name], Decimal | int):
                    raise PricingError(f"{where}.price_components[{number}].{name}", "must be a Decimal number")
            if component.get("price") is None:
                raise PricingError(f"{where}.price_components[{number}].price", "is required")
            components.setdefault(kind, (number, component))  # one component per dimension counts (the first)
        restrictions = element.get("restrictions") or {}
        rwhere = f"{where}.restrictions"
        limits = {}
        for name in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power", *_DURATIONS):
            if restrictions.get(name) is not None:
                try:
                    limits[name] = _frac(restrictions[name])
                except TypeError as exc:
                    raise PricingError(f"{rwhere}.{name}", "must be a number") from exc
        days = restrictions.get("day_of_week") or []
        if any(day not in _DAYS for day in days):
            raise PricingError(f"{rwhere}.day_of_week", "unknown DayOfWeek")
        parsed.append(
            _Element(
                index=index,
                components=components,
                start_time=_clock(restrictions["start_time"], f"{rwhere}.start_time")
                if restrictions.get("start_time")
                else None,
                end_time=_clock(restrictions["end_time"], f"{rwhere}.end_time")
                if restrictions.get("end_time")
                else None,
                start_date=_day(restrictions["start_date"], f"{rwhere}.start_date")
                if restrictions.get("start_date")
                else None,
                end_date=_day(restrictions["end_date"], f"{rwhere}.end_date") if restrictions.get("end_date") else None,
                days=frozenset(days),
                limits=limits,
                reservation=restrictions.get("reservation"),
            )
        )
    return parsed


def _date_and_day_hold(element: _Element, local: datetime) -> bool:
    today = local.date()
    if element.start_date is not None and today < element.start_date:
        return False
    if element.end_date is not None and today >= element.end_date:
        return False
    return not element.days or _DAYS[today.weekday()] in element.days


# --- cutting at restriction boundaries -------------------------------------------------------------------------------


def _clock_boundaries(elements: list[_Element], zone: ZoneInfo, start: datetime, session: Fraction) -> list[Fraction]:
    """Instants (seconds since start) at which a time-of-day, date or weekday restriction can change."""
    if not any(e.start_time or e.end_time or e.start_date or e.end_date or e.days for e in elements):
        return []
    clocks = {time(0)} | {t for e in elements for t in (e.start_time, e.end_time) if t is not None}
    end = start + timedelta(seconds=int(session) + 1)
    first, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date() + timedelta(days=1)
    found: set[Fraction] = set()
    day = first
    while day <= last:
        for clock in clocks:
            for fold in (0, 1):
                instant = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold).astimezone(UTC)
                found.add(_seconds(instant - start))
        day += timedelta(days=1)
    # DST jumps skip or repeat wall-clock times: a boundary inside the gap is crossed at the transition itself
    probe = start
    while probe < end:
        following = min(probe + timedelta(hours=1), end)
        if probe.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = probe, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.add(_seconds(high - start))
        probe = following
    return sorted(at for at in found if 0 < at < session)


def _pieces(parts: list[_Part], elements: list[_Element], clock_cuts: list[Fraction]) -> list[_Piece]:
    """The parts cut at every restriction boundary (clock, duration, energy)."""
    durations = sorted({e.limits[n] for e in elements for n in ("min_duration", "max_duration") if n in e.limits})
    kwh = sorted({e.limits[n] for e in elements for n in ("min_kwh", "max_kwh") if n in e.limits})
    pieces: list[_Piece] = []
    energy_so_far = ZERO
    for part in parts:
        cuts = {at for at in (*clock_cuts, *durations) if part.start < at < part.end}
        length = part.end - part.start
        if part.energy != 0 and length > 0:
            for threshold in kwh:
                low, high = sorted((energy_so_far, energy_so_far + part.energy))
                if low < threshold < high:
                    cuts.add(part.start + length * (threshold - energy_so_far) / part.energy)
        edges = [part.start, *sorted(cuts), part.end]
        for begin, finish in itertools.pairwise(edges):
            share = (finish - begin) / length if length > 0 else Fraction(1)
            energy = part.energy * share
            pieces.append(_Piece(part, begin, finish, energy, energy_so_far))
            energy_so_far += energy
    return pieces


# --- pricing ---------------------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """A line under construction (exact)."""

    dimension: str
    period_index: int | None
    element_index: int | None
    component_index: int | None
    start: Fraction
    end: Fraction
    volume: Fraction  # kWh, seconds, 1 (FLAT) or 0 (adjustment)
    price: Decimal
    vat: Decimal | None
    step_size: int
    reservation: bool
    step: bool = False
    excl: Fraction | None = None  # set directly on adjustment lines only
    incl: Fraction | None = None

    def amounts(self) -> tuple[Fraction, Fraction | None]:
        if self.dimension in (MIN_PRICE, MAX_PRICE):
            return self.excl or ZERO, self.incl
        units = self.volume / 3600 if self.dimension in (TIME, PARKING_TIME) else self.volume
        excl = _frac(self.price) * units
        if self.vat is None:
            return excl, (ZERO if excl == 0 else None)
        return excl, excl * (1 + _frac(self.vat) / 100)


def _component_order(elements: list[_Element], expired: bool) -> list[_Element]:
    if not expired:
        return elements
    first = [e for e in elements if e.reservation == RESERVATION_EXPIRES]  # wins over RESERVATION (mod_tariffs note)
    return first + [e for e in elements if e.reservation != RESERVATION_EXPIRES]


def _lines(
    pieces: list[_Piece],
    elements: list[_Element],
    *,
    start: datetime,
    zone: ZoneInfo,
    expired: bool,
    reserved_flag: bool,
) -> list[_Line]:
    order = _component_order(elements, expired)
    lines: list[_Line] = []
    open_lines: dict[str, _Line] = {}
    flats_charged: set[tuple[int, int]] = set()
    for piece in pieces:
        local = (start + timedelta(microseconds=int(piece.start * 1_000_000))).astimezone(zone)
        active = [
            e
            for e in order
            if _date_and_day_hold(e, local)
            and e.active(piece=piece, local=local, expired=expired, reserved_flag=reserved_flag)
        ]
        kind = piece.part.kind
        dimensions = [FLAT, ENERGY] + ([PARKING_TIME] if kind == PARKING else [TIME])
        for dimension in dimensions:
            element = next((e for e in active if dimension in e.components), None)
            if element is None:
                open_lines.pop(dimension, None)
                continue
            number, component = element.components[dimension]
            piece.components[dimension] = (element.index, number)
            key = (element.index, number)
            if dimension == FLAT:
                if key not in flats_charged:
                    flats_charged.add(key)
                    lines.append(_new_line(FLAT, piece, element.index, number, component, Fraction(1)))
                continue
            volume = piece.energy if dimension == ENERGY else piece.end - piece.start
            if volume == 0:
                continue  # nothing consumed in this dimension here: no line (merging continues after it)
            current = open_lines.get(dimension)
            if (
                current is not None
                and (current.element_index, current.component_index) == key
                and current.period_index == piece.part.period_index
                and current.end == piece.start
            ):
                current.end = piece.end
                current.volume += volume
            else:
                line = _new_line(dimension, piece, element.index, number, component, volume)
                lines.append(line)
                open_lines[dimension] = line
    return lines


def _new_line(
    dimension: str, piece: _Piece, element: int, number: int, component: Mapping[str, Any], volume: Fraction
) -> _Line:
    step = component.get("step_size") or 0
    return _Line(
        dimension=dimension,
        period_index=piece.part.period_index if piece.part.period_index >= 0 else None,
        element_index=element,
        component_index=number,
        start=piece.start,
        end=piece.end if dimension != FLAT else piece.start,
        volume=volume,
        price=component["price"],
        vat=component.get("vat"),
        step_size=int(step),
        reservation=piece.part.kind == RESERVED,
    )


def _step_lines(lines: list[_Line]) -> list[_Line]:
    """The step_size surplus lines: once for energy, once for TIME+PARKING_TIME, once for reservation time."""
    extra: list[_Line] = []
    groups = (
        ([ENERGY], False, Fraction(1, 1000)),  # step in Wh, volume in kWh
        ([TIME, PARKING_TIME], False, Fraction(1)),  # step in seconds, volume in seconds
        ([TIME], True, Fraction(1)),  # reservation time
    )
    for dimensions, reservation, unit in groups:
        group = [
            line
            for line in lines
            if line.dimension in dimensions and line.reservation == reservation and (line.volume != 0)
        ]
        if not group:
            continue
        last = max(group, key=lambda line: (line.end, line.start))
        if last.step_size <= 0:
            continue
        step = last.step_size * unit
        total = sum((line.volume for line in group if line.dimension == last.dimension), ZERO)
        blocks = -((-total) // step)  # ceiling, exact
        surplus = blocks * step - total
        if surplus > 0:
            extra.append(
                _Line(
                    dimension=last.dimension,
                    period_index=last.period_index,
                    element_index=last.element_index,
                    component_index=last.component_index,
                    start=last.end,
                    end=last.end,
                    volume=surplus,
                    price=last.price,
                    vat=last.vat,
                    step_size=last.step_size,
                    reservation=reservation,
                    step=True,
                )
            )
    return extra


def _bound(tariff: Mapping[str, Any], name: str) -> tuple[Fraction | None, Fraction | None]:
    price = tariff.get(name)
    if not price:
        return None, None
    excl = price.get("excl_vat")
    incl = price.get("incl_vat")
    return (
        _frac(excl) if excl is not None else None,
        _frac(incl) if incl is not None else None,
    )


def _cap(
    tariff: Mapping[str, Any], excl: Fraction, incl: Fraction | None
) -> tuple[Fraction, Fraction | None, str | None]:
    """min_price / max_price applied to excl and incl VAT independently; which bound (if any) changed something."""
    applied = None
    low_excl, low_incl = _bound(tariff, "min_price")
    high_excl, high_incl = _bound(tariff, "max_price")
    new_excl, new_incl = excl, incl
    if low_excl is not None and new_excl < low_excl:
        new_excl, applied = low_excl, MIN_PRICE
    if high_excl is not None and new_excl > high_excl:
        new_excl, applied = high_excl, MAX_PRICE
    if new_incl is not None:
        if low_incl is not None and new_incl < low_incl:
            new_incl, applied = low_incl, applied or MIN_PRICE
        if high_incl is not None and new_incl > high_incl:
            new_incl, applied = high_incl, applied or MAX_PRICE
    return new_excl, new_incl, applied


def price_session(
    *,
    tariff: Mapping[str, Any],
    charging_periods: Sequence[Mapping[str, Any]],
    start_date_time: datetime,
    end_date_time: datetime,
    time_zone: str = "UTC",
    reservation: bool = False,
    reservation_expires: bool = False,
) -> Pricing:
    """Price one session (or reservation) with `tariff` (module docstring: how). Raises PricingError on bad input.

    `charging_periods` are OCPI ChargingPeriods (start_date_time as OCPI DateTime strings or aware datetimes,
    dimension volumes as Decimals); `time_zone` is the Location's IANA zone, used by the time and date restrictions;
    `reservation` says the session began with a reservation (its RESERVATION_TIME periods are priced by RESERVATION
    elements), `reservation_expires` that it is a reservation that expired unused.
    """
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PricingError("time_zone", f"unknown time zone {time_zone!r}") from exc
    start = _parse_instant(start_date_time, "start_date_time")
    end = _parse_instant(end_date_time, "end_date_time")
    places, mode = rounding_policy()
    elements = _elements(tariff)
    parts, spans = _read_periods(charging_periods, start, end, reservation_expires)
    session = _seconds(end - start)
    pieces = _pieces(parts, elements, _clock_boundaries(elements, zone, start, session))
    lines = _lines(pieces, elements, start=start, zone=zone, expired=reservation_expires, reserved_flag=reservation)
    lines += _step_lines(lines)
    lines.sort(key=lambda line: (line.start, line.step, line.end))

    amounts = [line.amounts() for line in lines]
    excl_total = sum((excl for excl, _incl in amounts), ZERO)
    incl_known = all(incl is not None for _excl, incl in amounts)
    incl_total = sum((incl or ZERO for _excl, incl in amounts), ZERO) if incl_known else None
    capped_excl, capped_incl, cap = _cap(tariff, excl_total, incl_total)
    if cap is not None:
        adjustment = _Line(cap, None, None, None, session, session, ZERO, Decimal(0), None, 0, False)
        adjustment.excl = capped_excl - excl_total
        adjustment.incl = None if capped_incl is None or incl_total is None else capped_incl - incl_total
        lines.append(adjustment)
        amounts.append(adjustment.amounts())

    def money(value: Fraction) -> Decimal:
        return round_fraction(value, places, mode)

    def maybe_money(value: Fraction | None) -> Decimal | None:
        return None if value is None else money(value)

    def at(offset: Fraction) -> datetime:
        return start + timedelta(microseconds=int(offset * 1_000_000))

    breakdown = []
    for line, (excl, incl) in zip(lines, amounts, strict=True):
        unit_volume = line.volume / 3600 if line.dimension in (TIME, PARKING_TIME) else line.volume
        breakdown.append(
            PricedLine(
                dimension=line.dimension,
                period_index=line.period_index,
                element_index=line.element_index,
                component_index=line.component_index,
                start_date_time=at(line.start),
                end_date_time=at(line.end),
                volume=_quantity(unit_volume),
                price=line.price,
                vat=line.vat,
                excl_vat=money(excl),
                incl_vat=maybe_money(incl),
                reservation=line.reservation,
                step=line.step,
                exact_excl_vat=excl,
                exact_incl_vat=incl,
            )
        )

    def category(test: Any) -> Amount | None:
        chosen = [(excl, incl) for line, (excl, incl) in zip(lines, amounts, strict=True) if test(line)]
        if not chosen:
            return None
        excl = sum((e for e, _i in chosen), ZERO)
        incl = None if any(i is None for _e, i in chosen) else sum((i or ZERO for _e, i in chosen), ZERO)
        return Amount(money(excl), maybe_money(incl))

    def seconds_of(kind: str) -> Fraction:
        return sum((p.end - p.start for p in parts if p.kind == kind), ZERO)

    def billed(dimension: str, reserved: bool, fallback: Fraction) -> Fraction:
        group = [line for line in lines if line.dimension == dimension and line.reservation == reserved]
        surplus = sum((line.volume for line in group if line.step), ZERO)
        return fallback + surplus

    total_energy = sum((dims.get("ENERGY", ZERO) for _b, _f, dims in spans), ZERO)
    charging, parking, reserved = seconds_of(CHARGING), seconds_of(PARKING), seconds_of(RESERVED)
    return Pricing(
        currency=str(tariff.get("currency", "")),
        tariff_id=tariff.get("id"),
        time_zone=time_zone,
        breakdown=breakdown,
        charging_periods=_cdr_periods(charging_periods, pieces, start, tariff.get("id")),
        total_cost=Amount(money(capped_excl), maybe_money(capped_incl)),
        total_fixed_cost=category(lambda line: line.dimension == FLAT and not line.reservation),
        total_energy_cost=category(lambda line: line.dimension == ENERGY),
        total_time_cost=category(lambda line: line.dimension == TIME and not line.reservation),
        total_parking_cost=category(lambda line: line.dimension == PARKING_TIME),
        total_reservation_cost=category(lambda line: line.reservation),
        total_energy=_quantity(total_energy),
        total_time=_quantity((charging + parking) / 3600),
        total_parking_time=_quantity(parking / 3600),
        total_reservation_time=_quantity(reserved / 3600),
        billed_energy=_quantity(billed(ENERGY, False, total_energy)),
        billed_time=_quantity(billed(TIME, False, charging) / 3600),
        billed_parking_time=_quantity(billed(PARKING_TIME, False, parking) / 3600),
        billed_reservation_time=_quantity(billed(TIME, True, reserved) / 3600),
        price_cap=cap,
        exact_total_excl_vat=capped_excl,
        exact_total_incl_vat=capped_incl,
        decimals=places,
        rounding=mode,
    )


# --- the CDR's charging periods --------------------------------------------------------------------------------------


def _share_out(total: Decimal, weights: list[Fraction]) -> list[Decimal]:
    """`total` split by `weights` (rounded to QUANTITY_DECIMALS), the last share taking the rest: they add up."""
    whole = sum(weights, ZERO)
    if whole == 0:
        return [total] + [Decimal(0)] * (len(weights) - 1)
    shares = [_quantity(_frac(total) * weight / whole) for weight in weights[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def _cdr_periods(
    periods: Sequence[Mapping[str, Any]], pieces: list[_Piece], start: datetime, tariff_id: Any
) -> list[dict[str, Any]]:
    """The CDR's charging periods: as given, cut where the active ENERGY/TIME/PARKING_TIME component changes."""
    out: list[dict[str, Any]] = []
    for index, period in enumerate(periods):
        own = [piece for piece in pieces if piece.part.period_index == index]
        groups: list[list[_Piece]] = []
        for piece in own:
            signature = {d: c for d, c in piece.components.items() if d != FLAT}
            previous = {d: c for d, c in groups[-1][-1].components.items() if d != FLAT} if groups else None
            if groups and (signature == previous or piece.end == piece.start):
                groups[-1].append(piece)
            else:
                groups.append([piece])
        if len(groups) <= 1:
            copied = dict(period)
            if tariff_id is not None:
                copied["tariff_id"] = tariff_id
            out.append(copied)
            continue
        dims = period.get("dimensions") or []
        pieces_dims: list[list[dict[str, Any]]] = [[] for _group in groups]
        for dimension in dims:
            kind = dimension.get("type")
            if kind in _EXTENSIVE:
                wanted = _EXTENSIVE[kind]
                if kind == "ENERGY":
                    weights = [sum((p.energy for p in group), ZERO) for group in groups]
                else:
                    weights = [sum((p.end - p.start for p in group if p.part.kind == wanted), ZERO) for group in groups]
                for target, volume in zip(pieces_dims, _share_out(dimension["volume"], weights), strict=True):
                    target.append({"type": kind, "volume": volume})
            else:
                for target in pieces_dims:
                    target.append(dict(dimension))
        for group, group_dims in zip(groups, pieces_dims, strict=True):
            begin = start + timedelta(microseconds=int(group[0].start * 1_000_000))
            piece_period: dict[str, Any] = {"start_date_time": format_datetime(begin), "dimensions": group_dims}
            if tariff_id is not None:
                piece_period["tariff_id"] = tariff_id
            out.append(piece_period)
    return out


# --- choosing the tariff ---------------------------------------------------------------------------------------------


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return parse_datetime(value)


def select_tariff(tariffs: Sequence[Mapping[str, Any]], at: datetime) -> Mapping[str, Any] | None:
    """The first tariff valid at `at`: start_date_time (inclusive) ≤ at < end_date_time (exclusive), each optional.

    A CDR is sealed with the tariff valid at the start of the session (REFERENCE §8.1, §9.1), so callers pass the
    session's start_date_time; tariffs are tried in the order given (a connector's tariff_ids order).
    """
    for tariff in tariffs:
        begin, finish = _when(tariff.get("start_date_time")), _when(tariff.get("end_date_time"))
        if (begin is None or begin <= at) and (finish is None or at < finish):
            return tariff
    return None
