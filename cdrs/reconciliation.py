"""CDR reconciliation: a CDR a CPO partner sent us (or we pulled) is priced again by our tariff engine and compared.

The tariff is the CDR's own (`tariffs`, embedded), else the partner's stored Tariff named by the charging periods'
`tariff_id` (tariffs app); the one valid at the CDR's start is used (tariffs.pricing.select_tariff). The session is
read from the CDR's charging periods, start and end, in the location's time zone: a CdrLocation has none, so that of
the partner's Location we hold under that id, else UTC (and the outcome says so).

Compared, each within `OCPI_RECONCILE_TOLERANCE` currency units: total_cost and the per-dimension totals
(total_fixed_cost, total_energy_cost, total_time_cost, total_parking_cost, total_reservation_cost), excl and incl VAT,
where the CDR states them (a total the CDR leaves out is not compared; an incl_vat our engine cannot know, because a
price component has no `vat`, neither). The outcome is stored on the CDR: MATCH, MISMATCH (the fields that differ, with
both figures) or NOT_CHECKABLE (why: no tariff, a credit CDR, periods priced by several tariffs, a tariff in another
currency, or the engine refused the input). Reconciling never refuses nor changes a CDR: `doc` is untouched.
"""

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cdrs.models import Cdr, Reconciliation
from ocpi_core.envelope import format_datetime

logger = logging.getLogger(__name__)

# The Price fields compared, in the order shown.
COMPARED = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)
# Quantities shown beside the money (not part of the verdict: they are read from the same charging periods).
QUANTITIES = ("total_energy", "total_time", "total_parking_time")
_VAT = ("excl_vat", "incl_vat")


def tolerance() -> Decimal:
    """The setting OCPI_RECONCILE_TOLERANCE as a Decimal (0.01 when unset or not a number)."""
    try:
        value = Decimal(str(getattr(settings, "OCPI_RECONCILE_TOLERANCE", "0.01")))
    except InvalidOperation:
        return Decimal("0.01")
    return abs(value) if value.is_finite() else Decimal("0.01")


@dataclass
class Outcome:
    """What a reconciliation found: the status, why, and the figures (JSON-friendly: Decimals as strings)."""

    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, **self.details}


class NotCheckable(Exception):  # an outcome, not an error
    """The CDR cannot be priced again; the message says why."""


def _text(value: Any) -> Any:
    """JSON-friendly, every number an exact decimal string (an integer amount in a CDR stays an int otherwise)."""
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    if isinstance(value, dict):
        return {str(name): _text(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text(item) for item in value]
    return value


def _stored_tariffs(cdr: Cdr, tariff_ids: list[str]) -> list[dict[str, Any]]:
    """The partner's stored tariffs with these ids (the CDR's owner party first, then any of the partner's)."""
    from tariffs.models import Tariff, loads_exact
    from tariffs.services import tariff_doc

    found: list[dict[str, Any]] = []
    for tariff_id in tariff_ids:
        candidates = Tariff.objects.filter(partner_id=cdr.partner_id or 0, ocpi_id__iexact=tariff_id)
        tariff = (
            candidates.filter(country_code__iexact=cdr.country_code, party_id__iexact=cdr.party_id).first()
            or candidates.order_by("pk").first()
        )
        if tariff is not None:
            found.append(loads_exact(tariff_doc(tariff)))
    return found


def _choose_tariff(cdr: Cdr, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the tariff that priced the CDR, where it came from) or NotCheckable."""
    from tariffs.models import decimalize
    from tariffs.pricing import select_tariff

    periods = data.get("charging_periods") or []
    named = sorted({str(p["tariff_id"]) for p in periods if isinstance(p, dict) and p.get("tariff_id")}, key=str.lower)
    if len({name.lower() for name in named}) > 1:
        raise NotCheckable(
            f"the charging periods name several tariffs ({', '.join(named)}); the engine prices a session with one"
        )
    embedded = [t for t in data.get("tariffs") or [] if isinstance(t, dict)]
    source = "embedded in the CDR"
    candidates = embedded
    if not candidates:
        if not named:
            raise NotCheckable("no tariff: the CDR embeds none and its charging periods name none")
        candidates = _stored_tariffs(cdr, named)
        source = "stored partner tariff"
        if not candidates:
            raise NotCheckable(f"no tariff: the CDR embeds none and we hold no tariff {named[0]} of this partner")
    if named:
        candidates = [t for t in candidates if str(t.get("id", "")).lower() == named[0].lower()] or candidates
    tariff = select_tariff([decimalize("Tariff", t) for t in candidates], cdr.start_date_time)
    if tariff is None:
        raise NotCheckable("no tariff of the CDR was valid at its start_date_time")
    if str(tariff.get("currency", "")).upper() != cdr.currency.upper():
        raise NotCheckable(f"tariff {tariff.get('id')} is in {tariff.get('currency')}, the CDR in {cdr.currency}")
    return dict(tariff), source


def _time_zone(cdr: Cdr) -> tuple[str, str]:
    """(IANA zone, where it came from): the partner's stored Location of the CDR, else UTC."""
    from locations.models import Location

    location = (
        Location.objects.filter(partner_id=cdr.partner_id or 0, ocpi_id__iexact=cdr.location_id)
        .order_by("-last_updated")
        .only("time_zone", "country_code", "party_id")
    )
    preferred = location.filter(country_code__iexact=cdr.country_code, party_id__iexact=cdr.party_id).first()
    found = preferred or location.first()
    if found is not None and found.time_zone:
        return found.time_zone, f"location {cdr.location_id}"
    return "UTC", f"UTC assumed: we hold no location {cdr.location_id} of this partner"


def _compare(theirs: dict[str, Any], ours: dict[str, Any], limit: Decimal) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per field and VAT: their figure, ours, the difference and whether it is within the tolerance (None: not
    compared, with a note why)."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in COMPARED:
        stated, computed = theirs.get(name), ours.get(name)
        if not isinstance(stated, dict):
            if computed and any(Decimal(computed.get(vat) or 0) != 0 for vat in _VAT):
                notes.append(f"{name}: not stated in the CDR (ours: {computed.get('excl_vat')} excl. VAT)")
            continue
        for vat in _VAT:
            their_value = stated.get(vat)
            our_value = (computed or {"excl_vat": Decimal(0), "incl_vat": Decimal(0)}).get(vat)
            row: dict[str, Any] = {"field": name, "vat": vat, "theirs": their_value, "ours": our_value}
            if their_value is None:
                continue
            if our_value is None:
                row.update(difference=None, ok=None)
                notes.append(f"{name}.{vat}: not compared (a price component of the tariff has no vat)")
            else:
                difference = Decimal(their_value) - Decimal(our_value)
                row.update(difference=difference, ok=abs(difference) <= limit)
            rows.append(row)
    return rows, notes


def _outcome(cdr: Cdr, details: dict[str, Any], limit: Decimal) -> Outcome:
    """MATCH or MISMATCH; NotCheckable when the CDR cannot be priced again. `details` is filled on the way."""
    from tariffs.pricing import PricingError, price_session

    if cdr.is_own:
        raise NotCheckable("our own CDR: priced by our tariff engine when it was generated")
    if cdr.credit:
        raise NotCheckable("a credit CDR: its amounts are those of the CDR it corrects, negated")
    data = cdr.data
    tariff, source = _choose_tariff(cdr, data)
    details.update(tariff_id=tariff.get("id"), tariff_source=source)
    zone, zone_source = _time_zone(cdr)
    details.update(time_zone=zone, time_zone_source=zone_source)
    periods = data.get("charging_periods") or []
    reserved = any(
        d.get("type") == "RESERVATION_TIME" for p in periods if isinstance(p, dict) for d in p.get("dimensions") or []
    )
    try:
        priced = price_session(
            tariff=tariff,
            charging_periods=periods,
            start_date_time=cdr.start_date_time,
            end_date_time=cdr.end_date_time,
            time_zone=zone,
            reservation=reserved,
        )
    except PricingError as exc:
        raise NotCheckable(f"the tariff engine refused the CDR: {exc}") from exc
    ours = priced.cdr_totals()
    if priced.total_reservation_cost is not None:
        ours["total_reservation_cost"] = priced.total_reservation_cost.as_price()
    rows, notes = _compare(data, ours, limit)
    details.update(
        ours={name: ours.get(name) for name in (*COMPARED, *QUANTITIES) if ours.get(name) is not None},
        theirs={name: data.get(name) for name in (*COMPARED, *QUANTITIES) if data.get(name) is not None},
        rows=rows,
        notes=notes,
        price_cap=priced.price_cap,
    )
    if zone_source.startswith("UTC assumed"):
        notes.append(zone_source)
    wrong = [row for row in rows if row["ok"] is False]
    if wrong:
        reason = "; ".join(
            f"{row['field']}.{row['vat']}: theirs {row['theirs']}, ours {row['ours']} "
            f"(difference {row['difference']:+f})"
            for row in wrong
        )
        return Outcome(Reconciliation.MISMATCH, reason, _text(details))
    compared = sum(row["ok"] is True for row in rows)
    reason = f"{compared} figure(s) within {limit} {cdr.currency} of ours (tariff {tariff.get('id')}, {source})"
    if zone_source.startswith("UTC assumed"):
        reason += "; time zone: UTC assumed"
    return Outcome(Reconciliation.MATCH, reason, _text(details))


def reconcile(cdr: Cdr) -> Outcome:
    """Price a partner's CDR again and compare (see the module docstring). Never raises: a failure of the engine
    (or of anything else) is a NOT_CHECKABLE outcome that names it."""
    limit = tolerance()
    details: dict[str, Any] = {
        "checked_at": format_datetime(timezone.now()),
        "tolerance": str(limit),
        "currency": cdr.currency,
    }
    try:
        with transaction.atomic():  # a database error rolls back to here and becomes NOT_CHECKABLE below
            return _outcome(cdr, details, limit)
    except NotCheckable as exc:
        return Outcome(Reconciliation.NOT_CHECKABLE, str(exc), _text(details))
    except Exception as exc:  # the engine (or a stored object) failed: record it, never refuse the CDR
        logger.exception("Reconciling a CDR failed", extra={"cdr": cdr.ocpi_id, "party": cdr.party_id})
        return Outcome(
            Reconciliation.NOT_CHECKABLE, f"recomputing failed: {type(exc).__name__}: {exc}"[:500], _text(details)
        )


def cdr_reconcile(*, cdr: Cdr) -> Outcome:
    """Reconcile a partner's CDR and store the outcome on it (only the two reconciliation columns are written).

    Runs in a savepoint: whatever goes wrong while computing or storing, the caller's transaction (the receiver's
    POST) goes on, and the CDR is marked NOT_CHECKABLE when that is still possible."""
    outcome = reconcile(cdr)
    if cdr.is_own:
        return outcome  # our own CDRs are not reconciled: their columns stay empty
    try:
        with transaction.atomic():
            Cdr.objects.filter(pk=cdr.pk).update(reconciliation_status=outcome.status, reconciliation=outcome.as_dict())
    except Exception:
        logger.exception("Storing a CDR reconciliation failed", extra={"cdr": cdr.ocpi_id, "party": cdr.party_id})
        return outcome
    cdr.reconciliation_status, cdr.reconciliation = outcome.status, outcome.as_dict()
    return outcome
