"""The dashboard's figures, from aggregate queries (GROUP BY day with Sum/Avg/Count in the database, portable
between SQLite and PostgreSQL); Python only joins, labels and splits the (few) rows those queries return.

Energy is the sessions' kWh, counted on the day the session started (UTC), INVALID sessions left out. Our own
sessions (partner empty: we are the CPO) are split by location and by the eMSP party of their token; partners'
sessions (we are the eMSP) by CPO partner. EVSE availability comes from the status history (dashboard.models):
each status holds until the EVSE's next change, cut at midnight and at now; whole days are read from the daily
rollup of that history (dashboard.rollup), only today from the raw changes.
"""

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from dashboard.models import EvseStatusChange, EvseStatusDay
from dashboard.rollup import day_spans
from locations.models import Connector, Evse, Location
from ocpi_core.models import Delivery, Partner, Party, SyncState
from sessions_app.models import Session, SessionStatus
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


def sessions_in(filters: Filters) -> QuerySet[Session]:
    """The sessions started in the period (the `session_start` index), in scope."""
    queryset = Session.objects.filter(start_date_time__gte=filters.lower, start_date_time__lt=filters.upper).exclude(
        status=SessionStatus.INVALID
    )
    if filters.location:
        queryset = queryset.filter(location_id=filters.location)
    if filters.partner is not None:
        scope = Q(partner_id=filters.partner)  # as eMSP: the CPO partner's sessions
        for country_code, party_id in Party.objects.filter(partner_id=filters.partner).values_list(
            "country_code", "party_id"
        ):  # as CPO: our sessions charged with that partner's tokens
            scope |= Q(partner__isnull=True, token_country_code=country_code, token_party_id=party_id)
        queryset = queryset.filter(scope)
    return queryset


def _duration() -> ExpressionWrapper:
    return ExpressionWrapper(F("end_date_time") - F("start_date_time"), output_field=DurationField())


def _num(value: Any, places: int = 3) -> float:
    return round(float(value or 0), places)


def sessions_per_day(queryset: QuerySet[Session], days: list[date]) -> list[dict[str, Any]]:
    """Per day: sessions, kWh, average kWh and average duration (minutes, sessions that ended)."""
    rows: dict[date, dict[str, Any]] = {
        row["day"]: dict(row)
        for row in queryset.annotate(day=TruncDate("start_date_time"))
        .values("day")
        .annotate(sessions=Count("id"), energy=Sum("kwh"), avg_kwh=Avg("kwh"), avg_duration=Avg(_duration()))
        .order_by("day")
    }
    result = []
    for day in days:
        row = rows.get(day, {})
        duration = row.get("avg_duration")
        result.append(
            {
                "date": day.isoformat(),
                "sessions": row.get("sessions", 0),
                "kwh": _num(row.get("energy")),
                "avg_kwh": _num(row.get("avg_kwh")),
                "avg_duration_minutes": round(duration.total_seconds() / 60, 1) if duration is not None else None,
            }
        )
    return result


@dataclass
class Series:
    key: str
    label: str
    kwh: dict[date, Decimal]
    sessions: dict[date, int]

    @property
    def total(self) -> Decimal:
        return sum(self.kwh.values(), Decimal(0))


def _series(rows: Iterable[tuple[str, str, date, Decimal | None, int]]) -> list[Series]:
    by_key: dict[str, Series] = {}
    for key, label, day, kwh, count in rows:
        series = by_key.setdefault(key, Series(key, label, defaultdict(Decimal), defaultdict(int)))
        series.kwh[day] += kwh or Decimal(0)
        series.sessions[day] += count
    return sorted(by_key.values(), key=lambda s: (-s.total, s.key))


def energy_by_location(queryset: QuerySet[Session]) -> list[Series]:
    """Our own sessions' kWh per day and location."""
    rows = (
        queryset.filter(partner__isnull=True)
        .annotate(day=TruncDate("start_date_time"))
        .values_list("location_id", "day")
        .annotate(energy=Sum("kwh"), sessions=Count("id"))
        .order_by()
    )
    names = dict(Location.objects.filter(partner__isnull=True).values_list("ocpi_id", "name"))
    return _series(
        (location_id, f"{location_id} {names.get(location_id) or ''}".strip(), day, kwh, n)
        for location_id, day, kwh, n in rows
    )


def energy_by_partner(queryset: QuerySet[Session]) -> list[Series]:
    """kWh per day and partner: our own sessions by the eMSP party of their token (named after the partner holding
    that party when known), partners' sessions by the CPO partner."""
    partners = dict(Partner.objects.values_list("pk", "name"))
    parties = {
        (cc.upper(), pid.upper()): partners.get(partner_id, "") if partner_id else "own"
        for cc, pid, partner_id in Party.objects.values_list("country_code", "party_id", "partner_id")
    }
    own = (
        queryset.filter(partner__isnull=True)
        .annotate(day=TruncDate("start_date_time"))
        .values_list("token_country_code", "token_party_id", "day")
        .annotate(energy=Sum("kwh"), sessions=Count("id"))
        .order_by()
    )
    theirs = (
        queryset.filter(partner__isnull=False)
        .annotate(day=TruncDate("start_date_time"))
        .values_list("partner_id", "day")
        .annotate(energy=Sum("kwh"), sessions=Count("id"))
        .order_by()
    )

    def rows() -> Iterable[tuple[str, str, date, Decimal | None, int]]:
        for cc, pid, day, kwh, n in own:
            party = f"{cc.upper()}*{pid.upper()}"
            name = parties.get((cc.upper(), pid.upper()))
            yield f"emsp:{party}", f"eMSP {party}" + (f" ({name})" if name else ""), day, kwh, n
        for partner_id, day, kwh, n in theirs:
            yield f"cpo:{partner_id}", f"CPO {partners.get(partner_id, partner_id)}", day, kwh, n

    return _series(rows())


def series_json(series: list[Series], days: list[date]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "label": s.label,
            "kwh": _num(s.total),
            "sessions": sum(s.sessions.values()),
            "days": [_num(s.kwh.get(day)) for day in days],
        }
        for s in series
    ]


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


def energy_mix(queryset: QuerySet[Session]) -> dict[str, Any]:
    """Renewable share and CO2 g/kWh of the delivered energy, weighted by kWh per location (each share over the
    energy whose location or tariff states it)."""
    per_location = list(
        queryset.values_list("country_code", "party_id", "location_id").annotate(energy=Sum("kwh")).order_by()
    )
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
    sessions = sessions_in(filters)
    days = filters.days
    per_day = sessions_per_day(sessions, days)
    session_count = sum(d["sessions"] for d in per_day)
    durations = sessions.filter(end_date_time__isnull=False).aggregate(avg=Avg(_duration()))["avg"]
    totals = sessions.aggregate(energy=Sum("kwh"), avg_kwh=Avg("kwh"))
    return {
        "filters": filters.query(),
        "days": [day.isoformat() for day in days],
        "totals": {
            "sessions": session_count,
            "kwh": _num(totals["energy"]),
            "avg_kwh": _num(totals["avg_kwh"]),
            "avg_duration_minutes": round(durations.total_seconds() / 60, 1) if durations is not None else None,
        },
        "per_day": per_day,
        "energy_by_location": series_json(energy_by_location(sessions), days),
        "energy_by_partner": series_json(energy_by_partner(sessions), days),
        "energy_mix": energy_mix(sessions),
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
