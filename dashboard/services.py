"""The dashboard's figures, from aggregate queries (GROUP BY with Sum/Count in the database, portable between SQLite
and PostgreSQL); Python only joins, labels and splits the rows those queries return.

Energy is the sessions' kWh, counted on the day the session started (UTC), INVALID sessions left out. Our own
sessions (partner empty: we are the CPO) are split by location and by the eMSP party of their token; partners'
sessions (we are the eMSP) by CPO partner. The session figures are read from the daily session rollup
(dashboard.models.SessionDay, kept by dashboard.session_rollup), at the coarsest of its grains that has what a figure
and the filters need: the same sums as over the Session table, from at most one row per day and location or party.
EVSE availability comes from the status history (dashboard.models): each status holds until the EVSE's next change,
cut at midnight and at now; whole days are read from the daily rollup of that history (dashboard.rollup), only today
from the raw changes.
"""

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, FloatField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from dashboard.models import EvseStatusChange, EvseStatusDay, SessionDay
from dashboard.rollup import day_spans
from locations.models import Connector, Evse, Location
from ocpi_core.models import Delivery, Partner, Party, SyncState
from tariffs.models import Tariff

DEFAULT_DAYS = 30
MAX_DAYS = 400
TOP_SERIES = 7  # series of a split chart; the rest is summed as "Other"
RENEWABLE_SOURCES = frozenset({"GENERAL_GREEN", "SOLAR", "WIND", "WATER"})
NOT_IN_SERVICE = frozenset({"REMOVED"})  # time in these statuses is not part of the network's time


class InvalidFilter(ValueError):
    """A query parameter the dashboard cannot use (the API answers 400, the page shows the message)."""


@dataclass(frozen=True)
class Filters:
    """The period (dates inclusive, UTC days) and the optional scope: one location id, one partner (or own only)."""

    start: date
    end: date
    location: str | None = None
    partner: int | None = None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def lower(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def upper(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def query(self) -> dict[str, str]:
        params = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.location:
            params["location"] = self.location
        if self.partner is not None:
            params["partner"] = str(self.partner)
        return params


def filters_parse(params: Any, *, today: date | None = None) -> Filters:
    """`from`/`to` (YYYY-MM-DD, default: the last 30 days up to today), `location` (a location id), `partner` (a
    partner's pk)."""
    today = today or timezone.now().astimezone(UTC).date()
    try:
        end = date.fromisoformat(params.get("to")) if params.get("to") else today
        start = date.fromisoformat(params.get("from")) if params.get("from") else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError as exc:
        raise InvalidFilter("from/to: dates as YYYY-MM-DD") from exc
    if start > end:
        raise InvalidFilter("from: must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidFilter(f"from/to: at most {MAX_DAYS} days")
    partner = params.get("partner") or None
    if partner is not None:
        if not str(partner).isdigit():
            raise InvalidFilter("partner: a partner id (integer)")
        partner = int(partner)
    return Filters(start, end, (params.get("location") or "").strip() or None, partner)


# --- sessions and energy ---


def _partner_scope(partner: int, own: bool | None) -> Q:
    """As CPO: our sessions charged with that partner's tokens; as eMSP: the CPO partner's sessions (`own`: only
    the former, or only the latter)."""
    scope = Q(partner_pk=partner) if partner > 0 and own is not True else Q(pk__in=[])  # 0: our own sessions
    if own is not False:
        for cc, pid in Party.objects.filter(partner_id=partner).values_list("country_code", "party_id"):
            scope |= Q(partner_pk=0, token_country_code=cc, token_party_id=pid)
    return scope


def _grain(filters: Filters, *, by_location: bool, by_token: bool) -> str:
    """The coarsest grain of the rollup that still has the location (a split or filter by location) and the token's
    party (a split by it, or the partner filter)."""
    location = by_location or bool(filters.location)
    token = by_token or filters.partner is not None
    if location and token:
        return SessionDay.Grain.FULL
    return SessionDay.Grain.LOCATION if location else SessionDay.Grain.PARTY


def session_days(
    filters: Filters, *, by_location: bool = False, by_token: bool = False, own: bool | None = None
) -> QuerySet[SessionDay]:
    """The rollup rows of the sessions started in the period, in scope (`own`: only ours, or only partners'), at
    the coarsest grain that has what is asked (see _grain)."""
    grain = _grain(filters, by_location=by_location, by_token=by_token)
    rows = SessionDay.objects.filter(grain=grain, day__gte=filters.start, day__lte=filters.end)
    if own is not None:
        rows = rows.filter(partner_pk=0) if own else rows.filter(partner_pk__gt=0)
    if filters.location:
        rows = rows.filter(location_id=filters.location)
    if filters.partner is not None:
        rows = rows.filter(_partner_scope(filters.partner, own))
    return rows


def _num(value: Any, places: int = 3) -> float:
    return round(float(value or 0), places)


def _minutes(microseconds: int, ended: int) -> float | None:
    """The average duration in minutes (as Avg(end - start) gives it: a whole number of microseconds)."""
    return round(timedelta(microseconds=microseconds / ended).total_seconds() / 60, 1) if ended else None


def sessions_per_day(filters: Filters) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per day: sessions, kWh, average kWh and average duration (minutes, sessions that ended); and the period's
    totals."""
    rows = {
        day: (int(sessions), kwh or Decimal(0), int(ended), int(duration))
        for day, sessions, kwh, ended, duration in session_days(filters)
        .values_list("day")
        .annotate(Sum("sessions"), Sum("kwh"), Sum("ended"), Sum("duration_us"))
        .order_by()
    }
    result = []
    for day in filters.days:
        sessions, kwh, ended, duration = rows.get(day, (0, Decimal(0), 0, 0))
        result.append(
            {
                "date": day.isoformat(),
                "sessions": sessions,
                "kwh": _num(kwh),
                "avg_kwh": _num(kwh / sessions if sessions else None),
                "avg_duration_minutes": _minutes(duration, ended),
            }
        )
    sessions = sum(row[0] for row in rows.values())
    kwh = sum((row[1] for row in rows.values()), Decimal(0))
    ended, duration = sum(row[2] for row in rows.values()), sum(row[3] for row in rows.values())
    totals = {
        "sessions": sessions,
        "kwh": _num(kwh),
        "avg_kwh": _num(kwh / sessions if sessions else None),
        "avg_duration_minutes": _minutes(duration, ended),
    }
    return result, totals


@dataclass
class Series:
    key: str
    label: str
    kwh: dict[date, Any]  # per day: the Decimal sum, or the float of it (what _num() makes of it either way)
    total: Decimal = Decimal(0)
    sessions: int = 0


def _series(
    rows: Iterable[tuple[Any, date, Decimal | None, int]], label: Callable[[Any], tuple[str, str]]
) -> list[Series]:
    """Series from (group, day, kWh, sessions) rows, rows of the same group and day added up; `label` gives a
    group's series key and label (asked once per group; groups with the same key make one series)."""
    by_key: dict[str, Series] = {}
    labels: dict[Any, tuple[str, str]] = {}
    zero = Decimal(0)
    for group, day, kwh, count in rows:
        if group not in labels:
            labels[group] = label(group)
        key, name = labels[group]
        series = by_key.get(key)
        if series is None:
            series = by_key[key] = Series(key, name, {})
        days = series.kwh
        days[day] = days.get(day, zero) + (kwh or zero)
        series.sessions += int(count)
    for series in by_key.values():
        series.total = sum(series.kwh.values(), zero)
    return sorted(by_key.values(), key=lambda s: (-s.total, s.key))


def _location_label() -> Callable[[str], tuple[str, str]]:
    names = dict(Location.objects.filter(partner__isnull=True).values_list("ocpi_id", "name"))
    return lambda location_id: (location_id, f"{location_id} {names.get(location_id) or ''}".strip())


def location_series(rows: Iterable[tuple[str, date, Decimal | None, int]]) -> list[Series]:
    """Series by own location from (location_id, day, kWh, sessions) rows."""
    return _series(rows, _location_label())


def location_totals(filters: Filters) -> list[tuple[int, str, str, str, Decimal, int]]:
    """(CPO partner pk or 0, CPO country_code, party_id, location_id, kWh, sessions) of the period in scope: the
    energy mix's weights, and the totals of the own locations' series. With the partner filter, ours (by token
    party) and the partner's (as CPO) are two statements, each reading one index."""
    sides: list[bool | None] = [True, False] if filters.partner is not None else [None]
    return [
        (partner_pk, cc, pid, location_id, kwh or Decimal(0), int(sessions))
        for own in sides
        for partner_pk, cc, pid, location_id, kwh, sessions in session_days(filters, by_location=True, own=own)
        .values_list("partner_pk", "country_code", "party_id", "location_id")
        .annotate(Sum("kwh"), Sum("sessions"))
        .order_by()
    ]


class _Float(Cast):
    """A number cast to a float, read as the float the driver returns (PostgreSQL's and SQLite's do): without the
    per-row converter Django adds for a FloatField, a tenth of the read on 100,000 rows."""

    def __init__(self, expression: Any) -> None:
        super().__init__(expression, FloatField())

    def get_db_converters(self, connection: Any) -> list[Any]:
        return list(self.output_field.get_db_converters(connection))  # not the expression's float() of each value


def energy_by_location(filters: Filters, totals: list[tuple[int, str, str, str, Decimal, int]]) -> list[Series]:
    """Our own sessions' kWh per day and location, `totals` from location_totals().

    A year of a few hundred locations is some 100,000 days of series, so each row's kWh is read as a float (the
    database's conversion of a numeric is correctly rounded, as Python's float(Decimal) is: the same number) and
    only rounded here; each series' total and sessions come from `totals`, exact. A location id has one row a day
    unless two of our CPO parties use it or (the partner filter: the FULL grain) the partner has several eMSP
    parties: then its rows are read again as Decimals and added up exactly before the conversion."""
    own = session_days(filters, by_location=True, own=True).order_by()
    days: dict[str, dict[date, float]] = {}
    for location_id, day, kwh in own.values_list("location_id", "day").annotate(kwh_float=_Float("kwh")):
        series = days.get(location_id)
        if series is None:
            series = days[location_id] = {}
        if day in series:  # more than one row a day
            break
        series[day] = kwh
    else:
        return _location_series(days, totals)
    sums: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for location_id, day, kwh in own.values_list("location_id", "day", "kwh"):
        sums[location_id][day] += kwh
    return _location_series(
        {key: {day: float(kwh) for day, kwh in by_day.items()} for key, by_day in sums.items()}, totals
    )


def _location_series(
    days: dict[str, dict[date, float]], totals: list[tuple[int, str, str, str, Decimal, int]]
) -> list[Series]:
    label = _location_label()
    sums: dict[str, list[Any]] = {}
    for partner_pk, _cc, _pid, location_id, kwh, sessions in totals:
        if not partner_pk:
            sum_ = sums.setdefault(location_id, [Decimal(0), 0])
            sum_[0] += kwh
            sum_[1] += sessions
    result = []
    for location_id, kwh_days in days.items():
        total, sessions = sums.get(location_id, (Decimal(0), 0))  # (a session written between the two statements)
        result.append(Series(*label(location_id), kwh_days, total, sessions))
    return sorted(result, key=lambda s: (-s.total, s.key))


def partner_series(rows: Iterable[tuple[int, str, str, date, Decimal | None, int]]) -> list[Series]:
    """Series by partner from (CPO partner pk, else 0 and the token's party, day, kWh, sessions) rows: our own
    sessions by the eMSP party of their token (named after the partner holding that party when known), partners'
    sessions by the CPO partner."""
    partners = dict(Partner.objects.values_list("pk", "name"))
    parties = {
        (cc.upper(), pid.upper()): partners.get(partner_id, "") if partner_id else "own"
        for cc, pid, partner_id in Party.objects.values_list("country_code", "party_id", "partner_id")
    }

    def label(group: tuple[int, str, str]) -> tuple[str, str]:
        partner_id, cc, pid = group
        if partner_id:
            return f"cpo:{partner_id}", f"CPO {partners.get(partner_id, partner_id)}"
        party = f"{cc.upper()}*{pid.upper()}"
        name = parties.get((cc.upper(), pid.upper()))
        return f"emsp:{party}", f"eMSP {party}" + (f" ({name})" if name else "")

    return _series((((partner_id, cc, pid), day, kwh, n) for partner_id, cc, pid, day, kwh, n in rows), label)


def energy_by_partner(filters: Filters) -> list[Series]:
    """kWh per day and partner (see partner_series)."""
    return partner_series(
        session_days(filters, by_token=True)
        .values_list("partner_pk", "token_country_code", "token_party_id", "day")
        .annotate(energy=Sum("kwh"), sessions=Sum("sessions"))
        .order_by()
    )


def series_json(series: list[Series], days: list[date]) -> list[dict[str, Any]]:
    result = []
    for s in series:
        get = s.kwh.get
        result.append(
            {
                "key": s.key,
                "label": s.label,
                "kwh": _num(s.total),
                "sessions": s.sessions,
                # _num() of each day, inline: this runs for every series and day
                "days": [round(float(kwh), 3) if (kwh := get(day)) else 0.0 for day in days],
            }
        )
    return result


# --- energy mix ---


def _fraction(value: Any) -> Decimal:
    return Decimal(str(value))


def mix_figures(energy_mix: dict[str, Any] | None) -> tuple[Decimal | None, Decimal | None]:
    """(renewable share 0..1, CO2 g/kWh) of an OCPI EnergyMix; None where it does not say."""
    if not isinstance(energy_mix, dict):
        return None, None
    sources = energy_mix.get("energy_sources") or []
    renewable: Decimal | None
    if sources:
        total = sum((_fraction(s.get("percentage", 0)) for s in sources), Decimal(0))
        green = sum(
            (_fraction(s.get("percentage", 0)) for s in sources if s.get("source") in RENEWABLE_SOURCES), Decimal(0)
        )
        renewable = green / total if total else None
    elif "is_green_energy" in energy_mix:
        renewable = Decimal(1) if energy_mix.get("is_green_energy") else Decimal(0)
    else:
        renewable = None
    co2 = next(
        (
            _fraction(item["amount"])
            for item in energy_mix.get("environ_impact") or []
            if item.get("category") == "CARBON_DIOXIDE" and item.get("amount") is not None
        ),
        None,
    )
    return renewable, co2


def _location_mixes(keys: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict[str, Any] | None]:
    """The energy mix of each location (by upper-cased key): its own, else the first of its connectors' tariffs
    (same owner party) that has one."""
    mixes: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    missing: dict[int, tuple[str, str, str]] = {}
    ids = {key[2] for key in keys}
    for pk, cc, pid, ocpi_id, mix in Location.objects.filter(ocpi_id__in=ids).values_list(
        "pk", "country_code", "party_id", "ocpi_id", "energy_mix"
    ):
        key = (cc.upper(), pid.upper(), ocpi_id.upper())
        if key not in keys:
            continue
        mixes[key] = mix
        if not mix:
            missing[pk] = key
    if missing:
        wanted: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for location_pk, tariff_ids in Connector.objects.filter(evse__location_id__in=missing).values_list(
            "evse__location_id", "tariff_ids"
        ):
            wanted[missing[location_pk]].extend(tariff_ids or [])
        tariff_keys = {(k[0], k[1], t.upper()) for k, ts in wanted.items() for t in ts}
        tariffs = {
            (t.country_code.upper(), t.party_id.upper(), t.ocpi_id.upper()): t.energy_mix
            for t in Tariff.objects.filter(
                ocpi_id__in={t for _, _, t in tariff_keys} | {t for ts in wanted.values() for t in ts},
                energy_mix__isnull=False,
            ).only("country_code", "party_id", "ocpi_id", "energy_mix")
        }
        for key, tariff_ids in wanted.items():
            mixes[key] = next(
                (tariffs[(key[0], key[1], t.upper())] for t in tariff_ids if (key[0], key[1], t.upper()) in tariffs),
                None,
            )
    return mixes


def energy_mix(totals: list[tuple[int, str, str, str, Decimal, int]]) -> dict[str, Any]:
    """Renewable share and CO2 g/kWh of the delivered energy, weighted by kWh per location (each share over the
    energy whose location or tariff states it); `totals` from location_totals()."""
    return mix_of((cc, pid, location_id, kwh) for _partner, cc, pid, location_id, kwh, _n in totals)


def mix_of(per_location: Iterable[tuple[str, str, str, Decimal | None]]) -> dict[str, Any]:
    """energy_mix() from (CPO country_code, party_id, location_id, kWh) rows."""
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for cc, pid, location_id, kwh in per_location:
        totals[(cc.upper(), pid.upper(), location_id.upper())] += kwh or Decimal(0)
    mixes = _location_mixes(set(totals))
    total = green_kwh = renewable_known = co2_grams = co2_known = Decimal(0)
    for key, kwh in totals.items():
        total += kwh
        renewable, co2 = mix_figures(mixes.get(key))
        if renewable is not None:
            green_kwh += kwh * renewable
            renewable_known += kwh
        if co2 is not None:
            co2_grams += kwh * co2
            co2_known += kwh
    return {
        "kwh": _num(total),
        "renewable_share": round(float(green_kwh / renewable_known), 4) if renewable_known else None,
        "renewable_kwh_covered": _num(renewable_known),
        "co2_g_per_kwh": round(float(co2_grams / co2_known), 1) if co2_known else None,
        "co2_kg": _num(co2_grams / 1000),
        "co2_kwh_covered": _num(co2_known),
    }


# --- EVSE availability ---


def _evses(filters: Filters) -> QuerySet[Evse]:
    evses = Evse.objects.all()
    if filters.location:
        evses = evses.filter(location__ocpi_id=filters.location)
    if filters.partner is not None:
        evses = evses.filter(location__partner_id=filters.partner)
    return evses


def _history_seconds(
    filters: Filters, lower: datetime, stop: datetime, per_day: list[dict[str, float]], seen: set[int]
) -> None:
    """Add the seconds of [lower, stop) per day and status from the raw history: each EVSE's status at `lower` (its
    last change before it: one index lookup per EVSE) and its changes up to `stop` make the intervals, cut at each
    midnight and at `stop`. `seen` gets every EVSE with a status before `stop`."""
    before = EvseStatusChange.objects.filter(evse_id=OuterRef("pk"), since__lt=lower).order_by("-since", "-pk")
    changes: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for pk, status in (
        _evses(filters).annotate(start_status=Subquery(before.values("status")[:1])).values_list("pk", "start_status")
    ):
        if status is not None:
            changes[pk].append((lower, status))
    in_period = EvseStatusChange.objects.filter(since__gte=lower, since__lt=stop)
    if filters.location or filters.partner is not None:
        in_period = in_period.filter(evse__in=_evses(filters))
    for evse_id, since, status in in_period.order_by("evse_id", "since", "pk").values_list(
        "evse_id", "since", "status"
    ):
        changes[evse_id].append((since, status))
    seen.update(changes)
    # epoch seconds and day indexes: plain float arithmetic (the loop runs once per interval and midnight)
    base, end_at, days_n = filters.lower.timestamp(), stop.timestamp(), len(per_day)
    for intervals in changes.values():
        stamps = [since.timestamp() for since, _ in intervals] + [end_at]
        for index, (_since, status) in enumerate(intervals):
            if status in NOT_IN_SERVICE:
                continue
            start, end = stamps[index] - base, stamps[index + 1] - base
            while start < end:
                slot = int(start // 86400)
                cut = min(end, (slot + 1) * 86400.0)
                if slot < days_n:
                    per_day[slot][status] += cut - start
                start = cut


def _rollup_seconds(filters: Filters, split: datetime, per_day: list[dict[str, float]]) -> None:
    """Add the seconds of the whole days [filters.lower, split) per day and status: the closed intervals from the
    daily rollup (one GROUP BY day, status in the database), plus each EVSE's open interval (its last change, one
    index lookup per EVSE) from its start up to `split`."""
    closed = EvseStatusDay.objects.filter(day__gte=filters.start, day__lt=split.date(), microseconds__gt=0).exclude(
        status__in=NOT_IN_SERVICE
    )
    if filters.location or filters.partner is not None:
        closed = closed.filter(evse__in=_evses(filters))
    for day, status, us in closed.values_list("day", "status").annotate(us=Sum("microseconds")).order_by():
        per_day[(day - filters.start).days][status] += us / 1e6
    last = EvseStatusChange.objects.filter(evse_id=OuterRef("pk")).order_by("-since", "-pk")
    for since, status in (
        _evses(filters)
        .annotate(last_since=Subquery(last.values("since")[:1]), last_status=Subquery(last.values("status")[:1]))
        .filter(last_since__lt=split)
        .values_list("last_since", "last_status")
    ):
        if status in NOT_IN_SERVICE:
            continue
        for day, us in day_spans(max(since, filters.lower), split):
            per_day[(day - filters.start).days][status] += us / 1e6


def availability(filters: Filters, *, now: datetime | None = None) -> dict[str, Any]:
    """Per day, the share of EVSE time in each status: each status holds from its change until the EVSE's next
    change, cut at each midnight and at now; time before an EVSE's first recorded status is not counted.

    The whole days before today come from the daily rollup (dashboard.rollup: a database aggregate, whatever the
    period's length), today (up to now) from the raw history, so a change stamped in the future counts only up to
    now."""
    now = now or timezone.now()
    stop = min(filters.upper, now)
    today = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    split = max(filters.lower, min(filters.upper, today))
    per_day: list[dict[str, float]] = [defaultdict(float) for _ in filters.days]
    if split > filters.lower:
        _rollup_seconds(filters, split, per_day)
    seen: set[int] = set()  # the EVSEs with a status before stop (before the period, or changed within it)
    _history_seconds(filters, split, stop, per_day, seen)
    seconds: dict[date, dict[str, float]] = dict(zip(filters.days, per_day, strict=True))
    statuses = sorted({status for day in seconds.values() for status, value in day.items() if value > 0})
    days = []
    for day in filters.days:
        total = sum(seconds[day].values())
        days.append(
            {
                "date": day.isoformat(),
                "evse_hours": round(total / 3600, 2),
                "shares": {s: round(seconds[day].get(s, 0) / total, 4) for s in statuses} if total else {},
            }
        )
    total_all = sum(sum(day.values()) for day in seconds.values())
    overall = {
        s: round(sum(day.get(s, 0) for day in seconds.values()) / total_all, 4) if total_all else 0 for s in statuses
    }
    return {"evses": len(seen), "statuses": statuses, "overall": overall, "days": days}


# --- push and sync health ---


def health() -> dict[str, Any]:
    """Outbox deliveries pending/failed per partner, partners with errors, last successful sync per module."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for partner_id, status, n in (
        Delivery.objects.filter(status__in=[*Delivery.OPEN, Delivery.Status.FAILED])
        .values_list("partner_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[partner_id]["failed" if status == Delivery.Status.FAILED else "pending"] += n
    syncs: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for state in SyncState.objects.order_by("partner_id", "module"):
        syncs[state.partner_id].append(
            {
                "module": state.module,
                "last_success_at": state.last_success_at.isoformat() if state.last_success_at else None,
                "last_full_at": state.last_full_at.isoformat() if state.last_full_at else None,
            }
        )
    partners = []
    for partner in Partner.objects.order_by("name").only("pk", "name", "status", "last_error"):
        pending, failed = counts[partner.pk]["pending"], counts[partner.pk]["failed"]
        partners.append(
            {
                "id": partner.pk,
                "name": partner.name,
                "status": partner.status,
                "deliveries_pending": pending,
                "deliveries_failed": failed,
                "last_error": partner.last_error,
                "has_errors": bool(partner.last_error or failed),
                "sync": syncs.get(partner.pk, []),
            }
        )
    return {
        "deliveries_pending": sum(c["pending"] for c in counts.values()),
        "deliveries_failed": sum(c["failed"] for c in counts.values()),
        "partners_with_errors": sum(1 for p in partners if p["has_errors"]),
        "partners": partners,
    }


# --- everything ---


def dashboard_figures(filters: Filters) -> dict[str, Any]:
    """All the dashboard's figures as JSON-ready data (the page, the API and the CSV read this)."""
    days = filters.days
    per_day, totals = sessions_per_day(filters)
    totals_by_location = location_totals(filters)
    return {
        "filters": filters.query(),
        "days": [day.isoformat() for day in days],
        "totals": totals,
        "per_day": per_day,
        "energy_by_location": series_json(energy_by_location(filters, totals_by_location), days),
        "energy_by_partner": series_json(energy_by_partner(filters), days),
        "energy_mix": energy_mix(totals_by_location),
        "availability": availability(filters),
        "health": health(),
    }


def energy_csv(figures: dict[str, Any]) -> str:
    """Energy per day as CSV, long format: the total, then each location and each partner series."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["date", "split", "key", "label", "sessions", "kwh", "avg_kwh", "avg_duration_minutes"])
    for row in figures["per_day"]:
        writer.writerow(
            [
                row["date"],
                "total",
                "",
                "All sessions",
                row["sessions"],
                row["kwh"],
                row["avg_kwh"],
                "" if row["avg_duration_minutes"] is None else row["avg_duration_minutes"],
            ]
        )
    for split in ("location", "partner"):
        for series in figures[f"energy_by_{split}"]:
            for day, kwh in zip(figures["days"], series["days"], strict=True):
                if kwh:
                    writer.writerow([day, split, series["key"], series["label"], "", kwh, "", ""])
    return out.getvalue()
