"""Push: the transactional outbox and its delivery to partners (DESIGN.md Flows, issue #3).

A service that changes one of our own objects calls `outbox_add` inside its transaction; one Delivery row per
partner that receives the module is written with the change, and after the commit the partner's batch task is
enqueued, unless one is already queued or running for that partner (PartnerPushState: it sends the new row too).
`outbox_deliver_partner` claims the partner's due rows in batches, oldest first, and sends them one after the other
over the kept-alive pooled client; when the partner fails (unreachable, 5xx, 429) the rest of the batch is given
back and the partner is paused for the backoff or its Retry-After. Its database work is per batch, not per delivery:
one query checks the order of all its rows, their objects are rendered together (`PushModule.render_many`) shortly
before their turn, and the results of the calls the partner accepted are written with the attempt log in one
transaction after those calls (never before; a worker that dies first leaves them IN_FLIGHT for the sweep, which
sends the objects again as they are then). The task gives way to another partner's task waiting for a worker process.
`outbox_deliver` renders the object as it is *now* (never a stored copy), sends it through the one OCPI client,
and decides: delivered, retry later (timeouts, 5xx, 3xxx, 429 with Retry-After), or failed (4xx, 2xxx: a dead letter
operators can resend). A PATCH the partner answers with 404 becomes a PUT of the whole (top-level) object.

Order per object and partner: a change waits for an older open change of the same object and for any open change of
its parents (an EVSE PATCH never overtakes its Location's PUT), and is woken when they finish. A newer change
supersedes an undelivered older one (merged: PUT wins over PATCH), also when the older one fails while the newer
waits. Rows live in the database, so nothing is lost when Redis or a worker dies: a worker holds a row under a lease,
`outbox_sweep` re-enqueues what is overdue or whose lease ran out, and a worker that lost its lease cannot overwrite
the row's new holder.
"""

import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from ocpi_core.client import (
    OcpiClient,
    PartnerBadResponse,
    PartnerCallError,
    PartnerRefused,
    PartnerUnreachable,
    UnsafeUrl,
)
from ocpi_core.constants import InterfaceRole
from ocpi_core.metrics import delivery_finished
from ocpi_core.models import Delivery, DeliveryAttempt, Partner, PartnerPushState
from ocpi_core.routing import Routing

logger = logging.getLogger(__name__)

# render(country_code=, party_id=, object_path=, method=, fields=) -> body, or None when the object no longer exists
Renderer = Callable[..., dict[str, Any] | None]
# render_many(items=[{country_code, party_id, object_path, method, fields}, ...]) -> one body (or None) per item, in
# order: the objects of a batch as they are now, in a few queries instead of one per delivery
BatchRenderer = Callable[..., list[dict[str, Any] | None]]


@dataclass(frozen=True)
class PushModule:
    """How one module's own objects are pushed: which partner roles receive them and how a body is rendered."""

    module: str
    receiver_roles: tuple[str, ...]
    render: Renderer
    # delivered(delivery=, result=): called after the partner accepted a delivery, e.g. to keep the `Location` header
    # a CDRs Receiver answers a POST with (REFERENCE §8.2); it runs before the delivery is marked DELIVERED.
    delivered: Callable[..., None] | None = None
    # optional: what `render` gives, for several objects at once (used by the batches; `render` stays the reference)
    render_many: BatchRenderer | None = None
    # optional: addressee(country_code=, party_id=, object_path=) -> (country_code, party_id) of the party the object
    # is for (OCPI-to-*), e.g. the token's eMSP of a session or CDR; None (or no callable): the partner's first party
    # with one of `receiver_roles`
    addressee: Callable[..., tuple[str, str] | None] | None = None


_MODULES: dict[str, PushModule] = {}


def token_owner_addressee(model: Any) -> Callable[..., tuple[str, str] | None]:
    """`PushModule.addressee` for own objects that go to their token's eMSP (sessions, CDRs): `model` (with
    `token_country_code` and `token_party_id`) read by the delivery's key; None when the object is gone or names no
    token owner (then the partner's first receiving party is addressed)."""

    def addressee(*, country_code: str, party_id: str, object_path: str) -> tuple[str, str] | None:
        owner = (
            model.objects.filter(
                partner__isnull=True,
                country_code__lower=country_code.lower(),
                party_id__lower=party_id.lower(),
                ocpi_id__lower=object_path.lower(),
            )
            .values_list("token_country_code", "token_party_id")
            .first()
        )
        return (owner[0], owner[1]) if owner is not None and owner[0] and owner[1] else None

    return addressee


def push_module_register(module: PushModule) -> None:
    """Called by module apps (AppConfig.ready) to make their objects pushable."""
    _MODULES[module.module] = module


def push_module(module: str) -> PushModule:
    return _MODULES[module]


# hold_check(delivery=, routing=) -> why the delivery must wait (its addressee is unreachable), or None
HoldCheck = Callable[..., str | None]
_HOLD_CHECKS: list[HoldCheck] = []
HOLD_PREFIX = "Held: "


def push_hold_check_register(check: HoldCheck) -> None:
    """Called by apps (AppConfig.ready) that know when a partner's party must not be sent anything for now (e.g.
    hubclientinfo: the hub reports it OFFLINE or SUSPENDED). A held delivery stays PENDING, is not an attempt, and
    goes out after `outbox_release` (or is checked again by the sweep after OCPI_PUSH_HOLD_RECHECK_SECONDS)."""
    if check not in _HOLD_CHECKS:
        _HOLD_CHECKS.append(check)


def _hold_reason(delivery: Delivery, routing: Routing) -> str | None:
    for check in _HOLD_CHECKS:
        reason = check(delivery=delivery, routing=routing)
        if reason:
            return reason
    return None


# --- writing the outbox ---


def push_partners(module: str) -> list[Partner]:
    """Registered partners, with push enabled, that offer the module's RECEIVER interface."""
    return list(
        Partner.objects.filter(
            status=Partner.Status.REGISTERED,
            push_enabled=True,
            endpoints__identifier=module,
            endpoints__role=InterfaceRole.RECEIVER,
        ).distinct()
    )


def _merge_method(older: str, newer: str) -> str:
    """What to send when a newer change supersedes an undelivered older one for the same object."""
    if newer in (Delivery.Method.DELETE, Delivery.Method.POST):
        return newer
    if Delivery.Method.PUT in (older, newer) or older == Delivery.Method.DELETE:
        return Delivery.Method.PUT  # the partner may not have the object yet (or had it deleted): send it whole
    return Delivery.Method.PATCH


def _same_object(delivery: Delivery) -> dict[str, Any]:
    """Lookup of the deliveries of the same module and owner to the same partner."""
    return {
        "partner_id": delivery.partner_id,
        "module": delivery.module,
        "country_code": delivery.country_code,
        "party_id": delivery.party_id,
    }


def outbox_add(
    *,
    module: str,
    country_code: str,
    party_id: str,
    object_path: str,
    method: str,
    fields: Sequence[str] = (),
    partners: Iterable[Partner] | None = None,
) -> list[Delivery]:
    """Queue one change of an own object for every partner receiving `module` (or the given partners).

    Call it inside the transaction that makes the change: the rows commit (or roll back) with it, and the delivery
    tasks are enqueued only after the commit. An undelivered (PENDING) older change of the same object to the same
    partner is superseded by the new row, their methods merged (PUT wins over PATCH, PATCH fields add up); a PUT or
    DELETE also supersedes the pending changes of the object's children (an EVSE's PATCH under a Location PUT):
    the whole object, rendered when it is sent, carries them.
    """
    now = timezone.now()
    targets = list(partners) if partners is not None else push_partners(module)
    whole = method in (Delivery.Method.PUT, Delivery.Method.DELETE)
    covered = Q(object_path=object_path) | (Q(object_path__startswith=f"{object_path}/") if whole else Q(pk__in=[]))
    created: list[Delivery] = []
    for partner in targets:
        older = list(
            Delivery.objects.select_for_update()
            .filter(
                covered,
                partner=partner,
                module=module,
                country_code=country_code,
                party_id=party_id,
                status=Delivery.Status.PENDING,
            )
            .order_by("pk")
        )
        merged_method, merged_fields = method, set(fields)
        for row in older:
            if row.object_path == object_path:
                merged_method = _merge_method(row.method, merged_method)
                merged_fields |= set(row.fields)
        delivery = Delivery.objects.create(
            partner=partner,
            module=module,
            country_code=country_code,
            party_id=party_id,
            object_path=object_path,
            method=merged_method,
            fields=sorted(merged_fields) if merged_method == Delivery.Method.PATCH else [],
            window_start=now,
            next_attempt_at=now,
        )
        if older:
            Delivery.objects.filter(pk__in=[row.pk for row in older], status=Delivery.Status.PENDING).update(
                status=Delivery.Status.SUPERSEDED, superseded_by=delivery, lease_until=None
            )
        created.append(delivery)
    if created:
        partner_ids = [d.partner_id for d in created]
        transaction.on_commit(lambda: outbox_wake(partner_ids))
    return created


# Publishing to a broker that is down must not hold a web request for long: the row is the truth, the sweep re-sends.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def _free(now: datetime, stale_before: datetime | None = None) -> Q:
    """A partner no batch task holds (or whose holder stopped refreshing before `stale_before`), and not paused."""
    return (Q(queued_until__isnull=True) | Q(queued_until__lt=stale_before or now)) & _not_paused(now)


def _not_paused(now: datetime) -> Q:
    return Q(paused_until__isnull=True) | Q(paused_until__lte=now)


def _hold_for() -> timedelta:
    return timedelta(seconds=settings.OCPI_PUSH_LEASE_SECONDS)


def _state_create(partner_id: int, holder: str, until: datetime) -> bool:
    try:
        with transaction.atomic():
            PartnerPushState.objects.create(partner_id=partner_id, holder=holder, queued_until=until)
    except IntegrityError:  # created meanwhile by another process (which holds it now), or the partner is gone
        return False
    return True


def _take(partner_ids: Sequence[int], *, stale_before: datetime | None = None) -> tuple[str, list[int]]:
    """Become the one batch task of these partners where none is queued or running: (holder token, partners taken).
    One UPDATE when every partner is free, one more (a SELECT) when some are not."""
    now = timezone.now()
    token = uuid.uuid4().hex
    until = now + _hold_for()
    states = PartnerPushState.objects.filter(partner_id__in=partner_ids)
    if states.filter(_free(now, stale_before)).update(holder=token, queued_until=until) == len(partner_ids):
        return token, list(partner_ids)
    holders = dict(states.values_list("partner_id", "holder"))
    taken = [p for p in partner_ids if holders.get(p) == token]
    taken += [p for p in partner_ids if p not in holders and _state_create(p, token, until)]
    return token, taken


def _take_one(partner_id: int, holder: str | None) -> str | None:
    """Take the partner for this task: free, or already ours (`holder`, given to the task when it was enqueued)."""
    if holder is None:
        token, taken = _take([partner_id])
        return token if taken else None
    now = timezone.now()
    mine = (Q(holder=holder) & _not_paused(now)) | _free(now)
    state = PartnerPushState.objects.filter(mine, partner_id=partner_id)
    if state.update(holder=holder, queued_until=now + _hold_for()):
        return holder
    return None


def _let_go(partner_id: int, holder: str) -> None:
    PartnerPushState.objects.filter(partner_id=partner_id, holder=holder).update(holder="", queued_until=None)


def _partner_task(partner_id: int, holder: str | None, countdown: float | None = None) -> None:
    from ocpi_core.tasks import outbox_deliver_partner_task

    options: dict[str, Any] = {"retry": True, "retry_policy": _PUBLISH_RETRY}
    if countdown:
        options["countdown"] = countdown
    outbox_deliver_partner_task.apply_async((partner_id, holder), **options)


def outbox_wake(partner_ids: Iterable[int], *, stale_before: datetime | None = None) -> None:
    """Hand these partners' due deliveries to the workers: one batch task per partner, enqueued only when none is
    queued or running for it already (that one sends the new deliveries too). A broker outage only delays them: the
    rows are the truth and the sweep wakes the partners later."""
    ids = sorted(set(partner_ids))
    if not ids:
        return
    token, taken = _take(ids, stale_before=stale_before)
    for index, partner_id in enumerate(taken):
        try:
            _partner_task(partner_id, token)
        except Exception:  # the outbox row is the truth; the sweep wakes the partner
            logger.warning(
                "Could not enqueue deliveries; the outbox sweep will send them",
                extra={"partner": partner_id, "not_enqueued": len(taken) - index},
                exc_info=True,
            )
            for left in taken[index:]:
                _let_go(left, token)
            return  # the broker is down: do not wait for it once per partner


def outbox_enqueue(ids: Sequence[int], countdown: float | None = None) -> None:
    """Hand deliveries to the workers (their partners' batch tasks); with `countdown`, wake the partners then."""
    partner_ids = set(Delivery.objects.filter(pk__in=list(ids)).values_list("partner_id", flat=True))
    if countdown:
        for partner_id in partner_ids:
            outbox_timer(partner_id, countdown)
    else:
        outbox_wake(partner_ids)


def outbox_timer(partner_id: int, countdown: float) -> None:
    """Look at the partner again in `countdown` seconds (a delivery waits for its turn or its retry): the task runs
    then only if no other batch task holds the partner (which sends what is due anyway)."""
    try:
        _partner_task(partner_id, None, countdown=max(countdown, 0.0))
    except Exception:
        logger.warning("Could not enqueue a push timer; the outbox sweep will send", exc_info=True)


# --- delivering ---


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery task: `retry_in` seconds when it must run again; `follow_ups` are deliveries
    that waited for this one (a later change of the same object, changes of its children) and may go now.

    `status` is the delivery's new status, or NOOP (not due, or another worker has it) or LOST (this worker's lease
    ran out and another worker took the delivery over: its result was dropped)."""

    status: str
    retry_in: float | None = None
    follow_ups: tuple[int, ...] = ()
    pause: float | None = None  # the partner failed (unreachable, 5xx, 429): send it nothing for this long


NOOP = DeliveryOutcome("NOOP")
LOST = DeliveryOutcome("LOST")


def _retry_after(value: str | None) -> float | None:
    """The seconds a partner's Retry-After asks for (delay-seconds or an HTTP-date); None when it says nothing usable.

    At most the retry window: a delivery that must wait longer is a dead letter anyway (`_retry`), and the partner's
    pause ends then. Unbounded, `Retry-After: 1e12` or `inf` made `now + timedelta(seconds=...)` overflow (the
    push task failed with OverflowError on every attempt), and an HTTP-date in 9999 paused the partner until the
    end of the calendar and overflowed its hold (`until + lease`). A value that is no number (`nan`) is ignored.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - timezone.now()).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), settings.OCPI_PUSH_RETRY_WINDOW_SECONDS)


def _backoff(attempts: int) -> float:
    base = settings.OCPI_PUSH_RETRY_BASE_SECONDS
    return float(min(base * 2 ** max(0, attempts - 1), settings.OCPI_PUSH_RETRY_MAX_SECONDS))


def _claim(delivery_id: int, now: datetime) -> str | None:
    """Take the delivery for this worker with a conditional UPDATE, so two workers never send the same row at once.

    Returns how: "due" (a pending delivery whose time has come) or "takeover" (the worker holding it let its lease
    run out: it died or hung); None when there is nothing to do."""
    lease = now + timedelta(seconds=settings.OCPI_PUSH_LEASE_SECONDS)
    claim = {"status": Delivery.Status.IN_FLIGHT, "lease_until": lease, "attempts": F("attempts") + 1}
    rows = Delivery.objects.filter(pk=delivery_id)
    if rows.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(**claim):
        return "due"
    if rows.filter(status=Delivery.Status.IN_FLIGHT, lease_until__lt=now).update(**claim):
        return "takeover"
    return None


def _held(delivery: Delivery) -> QuerySet[Delivery]:
    """The row while this worker still holds it: a worker that lost its lease must not overwrite the new holder."""
    return Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.IN_FLIGHT, attempts=delivery.attempts)


def _parents(path: str) -> list[str]:
    """The paths of an object's parents: LOC1/EVSE1/1 -> LOC1/EVSE1, LOC1."""
    return [path.rsplit("/", depth)[0] for depth in range(1, path.count("/") + 1)]


def _blocked_by(delivery: Delivery) -> Delivery | None:
    """What must reach the partner first: an older open change of the same object, or any open change of a parent
    (an EVSE PATCH must not overtake the PUT that creates its Location at the partner)."""
    path = delivery.object_path
    return (
        Delivery.objects.filter(
            Q(object_path=path, pk__lt=delivery.pk) | Q(object_path__in=_parents(path)),
            status__in=Delivery.OPEN,
            **_same_object(delivery),
        )
        .order_by("pk")
        .first()
    )


def _wake_waiting(delivery: Delivery) -> tuple[int, ...]:
    """Deliveries that waited for this one (later changes of the object, changes of its children): due now."""
    now = timezone.now()
    path = delivery.object_path
    waiting = Delivery.objects.filter(
        Q(object_path=path, pk__gt=delivery.pk) | Q(object_path__startswith=f"{path}/"),
        status=Delivery.Status.PENDING,
        next_attempt_at__gt=now,
        **_same_object(delivery),
    )
    ids = tuple(waiting.order_by("pk").values_list("pk", flat=True)[:_WAKE_LIMIT])
    if ids:
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(next_attempt_at=now)
    return ids


_WAKE_LIMIT = 500  # more than that waiting behind one delivery: the rest wait for their own time or the sweep


def _routing(partner: Partner, delivery: Delivery, spec: PushModule) -> Routing:
    """from = the owner of the object (our party); to = the party the object is for (the token's eMSP of a session
    or CDR), else the partner's party that receives the module (REFERENCE §2.10: to = the receiving party)."""
    addressee = (
        spec.addressee(country_code=delivery.country_code, party_id=delivery.party_id, object_path=delivery.object_path)
        if spec.addressee is not None
        else None
    )
    if addressee is None:
        to = next((p for p in partner.parties.all() if p.role in spec.receiver_roles), None)
        addressee = (to.country_code, to.party_id) if to else ("", "")
    return Routing(
        from_country_code=delivery.country_code,
        from_party_id=delivery.party_id,
        to_country_code=addressee[0],
        to_party_id=addressee[1],
    )


_TERMINAL = (Delivery.Status.DELIVERED, Delivery.Status.FAILED, Delivery.Status.SUPERSEDED)


# False while a batch knows that none of its partner's deliveries waits for another (saves a query per delivery)
_may_wait: ContextVar[bool] = ContextVar("push_may_wait", default=True)


def _finish(delivery: Delivery, status: str, **changes: Any) -> DeliveryOutcome:
    changes.setdefault("lease_until", None)
    if not _held(delivery).update(status=status, **changes):
        return LOST
    delivery_finished(delivery, status)
    woken = _wake_waiting(delivery) if status in _TERMINAL and _may_wait.get() else ()
    return DeliveryOutcome(status, follow_ups=woken)


def _retry(delivery: Delivery, delay: float, *, reason: str, hand_over: bool = True, **changes: Any) -> DeliveryOutcome:
    """Try again in `delay` seconds, unless a newer change of the object is already queued (it takes this one's
    place) or the retry window would be over by then (a dead letter)."""
    now = timezone.now()
    if hand_over:
        newer = (
            Delivery.objects.filter(
                object_path=delivery.object_path,
                status=Delivery.Status.PENDING,
                pk__gt=delivery.pk,
                **_same_object(delivery),
            )
            .order_by("-pk")
            .first()
        )
        if newer is not None:
            method = _merge_method(delivery.method, newer.method)
            fields = sorted(set(delivery.fields) | set(newer.fields)) if method == Delivery.Method.PATCH else []
            Delivery.objects.filter(pk=newer.pk, status=Delivery.Status.PENDING).update(method=method, fields=fields)
            return _finish(
                delivery, Delivery.Status.SUPERSEDED, superseded_by=newer, last_error=reason[:2000], **changes
            )
    window_end = delivery.window_start + timedelta(seconds=settings.OCPI_PUSH_RETRY_WINDOW_SECONDS)
    if now + timedelta(seconds=delay) > window_end:
        return _finish(
            delivery,
            Delivery.Status.FAILED,
            last_error=f"Gave up after {delivery.attempts} attempts: {reason}"[:2000],
            **changes,
        )
    if not _held(delivery).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=reason[:2000],
        **changes,
    ):
        return LOST
    return DeliveryOutcome(Delivery.Status.PENDING, retry_in=delay)


def _wait_for(delivery: Delivery, blocker: Delivery, now: datetime) -> DeliveryOutcome:
    """Keep per-object order: go after `blocker`. Not an attempt. Woken early when the blocker finishes."""
    delay = settings.OCPI_PUSH_ORDER_DELAY_SECONDS
    wake = now + timedelta(seconds=delay)
    if blocker.status == Delivery.Status.PENDING and blocker.next_attempt_at > now:
        wake = max(wake, blocker.next_attempt_at + timedelta(seconds=delay))  # it is in backoff: no busy polling
    if not _held(delivery).update(
        status=Delivery.Status.PENDING, next_attempt_at=wake, lease_until=None, attempts=F("attempts") - 1
    ):
        return LOST
    return DeliveryOutcome(Delivery.Status.PENDING, retry_in=(wake - now).total_seconds())


def _hold(delivery: Delivery, reason: str, now: datetime) -> DeliveryOutcome:
    """Keep the delivery back while its addressee is unreachable. Not an attempt; a newer change supersedes it."""
    wake = now + timedelta(seconds=settings.OCPI_PUSH_HOLD_RECHECK_SECONDS)
    if not _held(delivery).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=wake,
        lease_until=None,
        attempts=F("attempts") - 1,
        last_error=(HOLD_PREFIX + reason)[:2000],
    ):
        return LOST
    return DeliveryOutcome(Delivery.Status.PENDING)


def outbox_release(*, partners: Iterable[Partner]) -> int:
    """Send the held deliveries to these partners now (their addressee is reachable again), with a fresh retry
    window. A delivery whose addressee is still unreachable is held again when it is tried."""
    now = timezone.now()
    held = Delivery.objects.filter(
        partner__in=list(partners), status=Delivery.Status.PENDING, last_error__startswith=HOLD_PREFIX
    )
    ids = list(held.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(
        window_start=now, next_attempt_at=now, last_error=""
    )
    if ids:
        transaction.on_commit(lambda: _wake_now(ids))
    return len(ids)


def outbox_deliver(*, delivery_id: int) -> DeliveryOutcome:
    """Send one delivery (idempotent: running it twice, or after a crash, is harmless)."""
    now = timezone.now()
    how = _claim(delivery_id, now)
    if how is None:
        return NOOP
    delivery = Delivery.objects.select_related("partner").get(pk=delivery_id)
    return _deliver_claimed(delivery, how, now)


def _render(spec: PushModule, delivery: Delivery) -> dict[str, Any] | None:
    """The delivery's object as it is now (never a stale copy); None when it no longer exists."""
    return spec.render(
        country_code=delivery.country_code,
        party_id=delivery.party_id,
        object_path=delivery.object_path,
        method=delivery.method,
        fields=delivery.fields,
    )


@dataclass
class _Sent:
    """A delivery the partner accepted, whose result the batch has not written yet (it writes them together)."""

    delivery: Delivery
    at: datetime
    http_status: int
    ocpi_status: int
    attempt: DeliveryAttempt | None = None
    started: float = field(default_factory=time.monotonic)


_DELIVERED = DeliveryOutcome(Delivery.Status.DELIVERED)


def _deliver_claimed(
    delivery: Delivery,
    how: str,
    now: datetime,
    *,
    clients: dict[Routing, OcpiClient] | None = None,
    attempts: list[DeliveryAttempt] | None = None,
    holds: dict[Routing, str | None] | None = None,
    blocked_by: Callable[[Delivery], Delivery | None] | None = None,
    render: Callable[[PushModule, Delivery], dict[str, Any] | None] | None = None,
    sent: list[_Sent] | None = None,
) -> DeliveryOutcome:
    """Send a delivery this worker holds (claimed `how`: "due" or "takeover"). A batch passes its partner (prefetched
    endpoints and parties) on `delivery.partner`, a cache of clients, a list collecting the attempt log rows, a
    cache of the hold checks' answers per addressee (for the batch's short life), its order check (`blocked_by`,
    one query for the whole batch), its renderer (the batch's objects rendered together, as they are now) and a
    list collecting the accepted deliveries (`sent`): their result is written by the batch, after the call."""
    if how == "takeover":
        lost = DeliveryAttempt(
            delivery=delivery,
            method=delivery.method,
            url="",
            error="The worker sending it stopped before it finished (its lease ran out); taken over.",
            outcome="LOST",
        )
        if attempts is None:
            lost.save()
        else:
            attempts.append(lost)
        window_end = delivery.window_start + timedelta(seconds=settings.OCPI_PUSH_RETRY_WINDOW_SECONDS)
        if now > window_end:  # a delivery that keeps killing its workers ends too
            return _finish(delivery, Delivery.Status.FAILED, last_error="Gave up: the retry window is over")
    blocker = (blocked_by or _blocked_by)(delivery)
    if blocker is not None:
        return _wait_for(delivery, blocker, now)

    partner = delivery.partner
    if partner.status != Partner.Status.REGISTERED or not partner.push_enabled:
        return _finish(delivery, Delivery.Status.FAILED, last_error=f"Partner is {partner.get_status_display()}")
    spec = _MODULES.get(delivery.module)
    endpoint = partner.endpoint_url(delivery.module, InterfaceRole.RECEIVER)
    if spec is None or endpoint is None:
        return _finish(delivery, Delivery.Status.FAILED, last_error=f"Partner offers no {delivery.module} receiver")

    routing = _routing(partner, delivery, spec)
    if holds is not None and routing in holds:
        hold = holds[routing]
    else:
        hold = _hold_reason(delivery, routing)
        if holds is not None:
            holds[routing] = hold
    if hold is not None:
        return _hold(delivery, hold, now)

    if delivery.method == Delivery.Method.POST:  # POST creates in the partner's collection (CDRs, REFERENCE §8.2)
        url = endpoint
    else:
        url = f"{endpoint.rstrip('/')}/{delivery.country_code}/{delivery.party_id}/{delivery.object_path}"
    started = time.perf_counter()
    method = delivery.method  # as sent (a PATCH the partner does not know becomes a PUT for the next attempt)
    http_status: int | None = None
    ocpi_status: int | None = None
    accepted: _Sent | None = None
    try:
        body = None
        if delivery.method != Delivery.Method.DELETE:
            body = (render or _render)(spec, delivery)  # the object as it is now: never a stale copy
            if body is None:
                return _finish(delivery, Delivery.Status.SUPERSEDED, last_error="The object no longer exists")
        client = clients.get(routing) if clients is not None else None
        if client is None:
            client = OcpiClient.for_partner(partner, routing=routing)
            if clients is not None:
                clients[routing] = client
        result = client.request(delivery.method, url, json=body)
        http_status, ocpi_status = result.http_status, result.status_code
        if spec.delivered is not None:
            spec.delivered(delivery=delivery, result=result)
        if sent is None:
            outcome = _finish(
                delivery,
                Delivery.Status.DELIVERED,
                delivered_at=timezone.now(),
                last_http_status=http_status,
                last_ocpi_status=ocpi_status,
                last_error="",
            )
        else:  # accepted: the batch marks it DELIVERED with the others of the batch (LOST if its lease was lost)
            accepted = _Sent(delivery, timezone.now(), http_status, ocpi_status)
            sent.append(accepted)
            outcome = _DELIVERED
        error = ""
    except PartnerCallError as exc:
        http_status, ocpi_status, error = exc.http_status, exc.ocpi_status_code, exc.message
        pause = _partner_pause(delivery, exc)
        outcome = _after_failure(delivery, exc)
        if pause is not None:
            outcome = replace(outcome, pause=pause)
    except Exception as exc:  # a bug, a time limit, an undecryptable token: never leave the row IN_FLIGHT
        logger.exception("Delivery failed unexpectedly; retrying", extra={"delivery": delivery.pk})
        error = f"{exc.__class__.__name__}: {exc}"
        outcome = _retry(delivery, _backoff(delivery.attempts), reason=error)
    attempt = _attempt_log(delivery, url, http_status, ocpi_status, started, error, outcome, attempts, method=method)
    if accepted is not None:
        accepted.attempt = attempt
    return outcome


def _transient(exc: PartnerCallError) -> bool:
    status = exc.http_status
    return (
        isinstance(exc, PartnerUnreachable)
        or status is None
        or status >= 500
        or status == 408
        or (isinstance(exc, PartnerRefused) and status < 400 and (exc.ocpi_status_code or 0) >= 3000)
        or (isinstance(exc, PartnerBadResponse) and status < 400)
    )


def _partner_pause(delivery: Delivery, exc: PartnerCallError) -> float | None:
    """How long the partner's batch stops after this failure: a 429 asks for it (Retry-After), a partner that is
    unreachable or failing (5xx) gets the delivery's backoff; None when only this delivery is concerned."""
    if isinstance(exc, UnsafeUrl):
        return None
    if exc.http_status == 429:
        delay = _retry_after(exc.headers.get("Retry-After"))
        return delay if delay is not None else _backoff(delivery.attempts)
    if delivery.method == Delivery.Method.PATCH and (exc.http_status == 404 or exc.ocpi_status_code == 2003):
        return None
    return _backoff(delivery.attempts) if _transient(exc) else None


def _after_failure(delivery: Delivery, exc: PartnerCallError) -> DeliveryOutcome:
    status = exc.http_status
    codes: dict[str, Any] = {"last_http_status": status, "last_ocpi_status": exc.ocpi_status_code}
    if isinstance(exc, UnsafeUrl):
        return _finish(delivery, Delivery.Status.FAILED, last_error=exc.message, **codes)
    if delivery.method == Delivery.Method.PATCH and (status == 404 or exc.ocpi_status_code == 2003):
        # The partner does not have the object (2003: unknown location): send the whole top-level object, now
        # (REFERENCE §2.5). A PUT of only the EVSE would be refused too when the partner lost the Location.
        whole = delivery.object_path.split("/", 1)[0]
        outcome = _retry(
            delivery,
            0.0,
            reason=f"{exc.message}: sending the whole object instead",
            hand_over=False,
            method=Delivery.Method.PUT,
            fields=[],
            object_path=whole,
            **codes,
        )
        if outcome is not LOST:  # the row is that PUT now (a batch keeps the order of what it still holds back)
            delivery.method, delivery.fields, delivery.object_path = Delivery.Method.PUT, [], whole
        return outcome
    if status == 429:
        delay = _retry_after(exc.headers.get("Retry-After"))
        return _retry(
            delivery, delay if delay is not None else _backoff(delivery.attempts), reason=exc.message, **codes
        )
    if _transient(exc):
        return _retry(delivery, _backoff(delivery.attempts), reason=exc.message, **codes)
    return _finish(delivery, Delivery.Status.FAILED, last_error=exc.message, **codes)


def _attempt_log(
    delivery: Delivery,
    url: str,
    http_status: int | None,
    ocpi_status: int | None,
    started: float,
    error: str,
    outcome: DeliveryOutcome,
    collect: list[DeliveryAttempt] | None = None,
    *,
    method: str | None = None,
) -> DeliveryAttempt:
    attempt = DeliveryAttempt(
        delivery=delivery,
        method=method or delivery.method,
        url=url,
        http_status=http_status,
        ocpi_status=ocpi_status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        error=error[:2000],
        outcome=outcome.status if outcome.retry_in is None else "RETRY",
    )
    if collect is None:
        attempt.save()
    else:
        collect.append(attempt)
    return attempt


# --- operations ---


def outbox_resend(*, deliveries: Iterable[Delivery]) -> int:
    """Operators' "resend now": failed (or waiting) deliveries get a fresh retry window and go out at once."""
    now = timezone.now()
    ids = [d.pk for d in deliveries]
    resendable = Delivery.objects.filter(pk__in=ids, status__in=(Delivery.Status.FAILED, Delivery.Status.PENDING))
    updated = list(resendable.values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=updated).update(
        status=Delivery.Status.PENDING, window_start=now, next_attempt_at=now, lease_until=None, attempts=0
    )
    if updated:
        transaction.on_commit(lambda: _wake_now(updated))
    return len(updated)


def _wake_now(ids: Sequence[int]) -> None:
    """Operators' resend and a released hold: these go out now, also to a partner paused after failures."""
    partner_ids = set(Delivery.objects.filter(pk__in=list(ids)).values_list("partner_id", flat=True))
    PartnerPushState.objects.filter(partner_id__in=partner_ids).update(paused_until=None)
    outbox_wake(partner_ids)


def outbox_sweep(*, limit: int = 1000) -> int:
    """Wake the partners of deliveries that are overdue (enqueue lost, Redis was down) or whose worker died
    mid-delivery; also when a batch task holds the partner but has not shown life for the grace time (its message
    or its worker is gone). Returns how many deliveries were found."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OCPI_PUSH_SWEEP_GRACE_SECONDS)
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace) | Q(
        status=Delivery.Status.IN_FLIGHT, lease_until__lt=now
    )
    rows = list(Delivery.objects.filter(due).order_by("next_attempt_at").values_list("pk", "partner_id")[:limit])
    # a holder refreshes queued_until (now + lease) at every batch: one that did not within the grace time is stuck
    outbox_wake({partner_id for _, partner_id in rows}, stale_before=now + _hold_for() - grace)
    if rows:
        logger.info("Outbox sweep woke the partners of overdue deliveries", extra={"count": len(rows)})
    return len(rows)


# --- delivering in batches, one task per partner ---


@dataclass
class BatchRun:
    """What one run of a partner's batch task did. `status`: DONE (nothing due any more), CONTINUED (its time was up:
    it enqueued itself again), PAUSED (the partner failed: the batch goes on after the pause), BUSY (another task
    holds the partner, or it is paused), NO_PARTNER."""

    status: str = "DONE"
    outcomes: dict[str, int] | None = None

    def count(self, outcome: DeliveryOutcome) -> None:
        self.outcomes = self.outcomes or {}
        self.outcomes[outcome.status] = self.outcomes.get(outcome.status, 0) + 1


def _due(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.IN_FLIGHT, lease_until__lt=now
    )


def _claim_batch(partner: Partner, limit: int) -> tuple[list[tuple[Delivery, str]], datetime]:
    """Take up to `limit` due deliveries of the partner, oldest first, in three statements whatever their number:
    the candidates, one conditional UPDATE (so two workers never hold the same row), and the rows this worker got,
    recognised by the lease it wrote (unique to this claim)."""
    now = timezone.now()
    due = _due(now)
    candidates = dict(Delivery.objects.filter(due, partner=partner).order_by("pk").values_list("pk", "status")[:limit])
    lease = now + timedelta(seconds=settings.OCPI_PUSH_LEASE_SECONDS, microseconds=1 + secrets.randbelow(999_999))
    if not candidates:
        return [], lease
    Delivery.objects.filter(due, pk__in=list(candidates)).update(
        status=Delivery.Status.IN_FLIGHT, lease_until=lease, attempts=F("attempts") + 1
    )
    claimed = []
    for delivery in Delivery.objects.filter(
        pk__in=list(candidates), status=Delivery.Status.IN_FLIGHT, lease_until=lease
    ).order_by("pk"):
        delivery.partner = partner  # its endpoints and parties are prefetched once per task
        claimed.append((delivery, "takeover" if candidates[delivery.pk] == Delivery.Status.IN_FLIGHT else "due"))
    return claimed, lease


def _unclaim(rows: Sequence[Delivery], lease: datetime) -> None:
    """Give back claimed deliveries this worker did not try (not an attempt); a row another worker took is left."""
    if rows:
        Delivery.objects.filter(
            pk__in=[row.pk for row in rows], status=Delivery.Status.IN_FLIGHT, lease_until=lease
        ).update(status=Delivery.Status.PENDING, lease_until=None, attempts=F("attempts") - 1)


ObjectKey = tuple[str, str, str, str]  # module, country_code, party_id, object_path

_RESULTS_SECONDS = 1.0  # a batch writes the results it holds at least this often (a slow partner)
# A task that has run this long goes on from the back of the queue when another partner's task waits for a worker
# process (fewer processes than busy partners): partners take turns of a fraction of a second, not of
# OCPI_PUSH_BATCH_SECONDS; with a process for every busy partner, a task keeps its turn.
_GIVE_WAY_SECONDS = 0.3
_RENDER_FRESH_SECONDS = 1.0  # objects rendered for a batch are rendered again when older than this at their turn


def _others_wait(partner_id: int) -> bool:
    """Whether another partner's batch task waits for a worker process: that partner is held (its task is queued or
    running) and not paused, but its holder has not refreshed the hold for _GIVE_WAY_SECONDS (a running task does at
    every batch; one in a long call to its partner looks the same, which only costs a turn)."""
    now = timezone.now()
    quiet = now + _hold_for() - timedelta(seconds=_GIVE_WAY_SECONDS)
    held = PartnerPushState.objects.filter(_not_paused(now), queued_until__gt=now, queued_until__lt=quiet)
    return held.exclude(holder="").exclude(partner_id=partner_id).exists()


def _object_key(delivery: Delivery) -> ObjectKey:
    return (delivery.module, delivery.country_code, delivery.party_id, delivery.object_path)


class _BatchOrder:
    """Order per object for a claimed batch, checked with one query instead of one per delivery (`_blocked_by`):
    the open deliveries outside the batch that may have to go first (older changes of the same objects, changes of
    their parents), and the batch's own rows that are still open (not tried yet, waiting, held by another worker)."""

    def __init__(self, partner_id: int, rows: Sequence[Delivery]) -> None:
        self.open: dict[ObjectKey, dict[int, Delivery]] = {}
        paths: dict[tuple[str, str, str], set[str]] = {}
        for row in rows:
            self.open.setdefault(_object_key(row), {})[row.pk] = row
            paths.setdefault((row.module, row.country_code, row.party_id), set()).update(
                [row.object_path, *_parents(row.object_path)]
            )
        where = Q(pk__in=[])
        for (module, country_code, party_id), wanted in paths.items():
            where |= Q(module=module, country_code=country_code, party_id=party_id, object_path__in=sorted(wanted))
        others = (
            Delivery.objects.filter(where, partner_id=partner_id, status__in=Delivery.OPEN)
            .exclude(pk__in=[row.pk for row in rows])
            .only("pk", "module", "country_code", "party_id", "object_path", "status", "next_attempt_at")
            .order_by("pk")
        )
        self.outside: dict[ObjectKey, list[Delivery]] = {}
        for other in others if rows else ():
            self.outside.setdefault(_object_key(other), []).append(other)

    def blocker(self, delivery: Delivery) -> Delivery | None:
        """What must reach the partner first, as `_blocked_by` finds it: the oldest open older change of the same
        object or open change of a parent, in the batch or outside it."""
        key = _object_key(delivery)
        found = [other for other in self.outside.get(key, ()) if other.pk < delivery.pk]
        found += [other for pk, other in self.open.get(key, {}).items() if pk < delivery.pk]
        for parent in _parents(delivery.object_path):
            parent_key = (*key[:3], parent)
            found += self.outside.get(parent_key, ())
            found += self.open.get(parent_key, {}).values()
        return min(found, key=lambda other: other.pk, default=None)

    def tried(self, delivery: Delivery, key: ObjectKey, outcome: DeliveryOutcome, now: datetime) -> None:
        """`delivery` (open under `key` until now) was tried: finished, it holds up nothing any more; still open, it
        does, under its path now (a PATCH the partner did not know is a PUT of the whole object now)."""
        self.open.get(key, {}).pop(delivery.pk, None)
        if outcome.status in _TERMINAL:
            return
        if outcome.status == Delivery.Status.PENDING:
            delivery.status = Delivery.Status.PENDING
            delay = outcome.retry_in  # None: held back (`_hold`) until the hold is checked again
            seconds = settings.OCPI_PUSH_HOLD_RECHECK_SECONDS if delay is None else delay
            delivery.next_attempt_at = now + timedelta(seconds=seconds)
        self.open.setdefault(_object_key(delivery), {})[delivery.pk] = delivery


def _supersede_in_batch(
    claimed: Sequence[tuple[Delivery, str]],
    lease: datetime,
    order: _BatchOrder,
    run: "BatchRun",
    attempts: list[DeliveryAttempt],
) -> list[tuple[Delivery, str]]:
    """Several changes of one object in a batch (an older one whose worker died, and one queued meanwhile): the
    newest carries them, their methods merged as `outbox_add` merges them (PUT wins over PATCH, PATCH fields add
    up); the older ones end SUPERSEDED without a call of their own. Returns the rows left to send."""
    newest = {_object_key(row): row for row, _ in claimed}  # pk order: the last one of an object wins
    if len(newest) == len(claimed):
        return list(claimed)
    kept: list[tuple[Delivery, str]] = []
    merged: dict[int, tuple[str, set[str]]] = {}
    now = timezone.now()
    for row, how in claimed:
        key = _object_key(row)
        top = newest[key]
        if top is row:
            kept.append((row, how))
            continue
        if how == "takeover":
            attempts.append(
                DeliveryAttempt(
                    delivery=row,
                    method=row.method,
                    url="",
                    error="The worker sending it stopped before it finished (its lease ran out); taken over.",
                    outcome="LOST",
                )
            )
        outcome = _finish(
            row,
            Delivery.Status.SUPERSEDED,
            superseded_by=top,
            last_error="A newer change of the object, sent in the same batch, carries it",
        )
        run.count(outcome)
        order.tried(row, key, outcome, now)
        if outcome is not LOST:
            method, fields = merged.get(top.pk, (top.method, set(top.fields)))
            merged[top.pk] = (_merge_method(row.method, method), fields | set(row.fields))
    for row, _ in kept:
        if row.pk in merged:
            method, fields = merged[row.pk]
            row.method, row.fields = method, sorted(fields) if method == Delivery.Method.PATCH else []
            Delivery.objects.filter(pk=row.pk, status=Delivery.Status.IN_FLIGHT, lease_until=lease).update(
                method=row.method, fields=row.fields
            )
    return kept


class _BatchBodies:
    """The objects of a batch rendered together, per module, by its `render_many`, as they are when their turn comes
    (rendered again when older than _RENDER_FRESH_SECONDS: a slow partner); `render`, one by one, for a module
    without it, or when `render_many` fails."""

    def __init__(self, rows: Sequence[Delivery]) -> None:
        self.rows = list(rows)
        self.position = {row.pk: index for index, row in enumerate(self.rows)}
        self.bodies: dict[str, tuple[float, dict[tuple[Any, ...], dict[str, Any] | None]]] = {}  # per module
        self.failed: set[str] = set()

    @staticmethod
    def _key(delivery: Delivery) -> tuple[Any, ...]:
        return (delivery.pk, delivery.method, delivery.object_path, tuple(delivery.fields))

    def render(self, spec: PushModule, delivery: Delivery) -> dict[str, Any] | None:
        if spec.render_many is None or spec.module in self.failed or delivery.pk not in self.position:
            return _render(spec, delivery)
        key = self._key(delivery)
        rendered_at, bodies = self.bodies.get(spec.module, (0.0, {}))
        if key not in bodies or time.monotonic() - rendered_at > _RENDER_FRESH_SECONDS:
            bodies = self._render_rest(spec, spec.render_many, delivery)
        return bodies[key] if key in bodies else _render(spec, delivery)

    def _render_rest(
        self, spec: PushModule, render_many: BatchRenderer, delivery: Delivery
    ) -> dict[tuple[Any, ...], dict[str, Any] | None]:
        """Render this delivery's object and those of the batch's later deliveries of the same module."""
        rest = [
            row
            for row in self.rows[self.position[delivery.pk] :]
            if row.module == spec.module and row.method != Delivery.Method.DELETE
        ]
        items = [
            {
                "country_code": row.country_code,
                "party_id": row.party_id,
                "object_path": row.object_path,
                "method": row.method,
                "fields": row.fields,
            }
            for row in rest
        ]
        rendered_at = time.monotonic()
        try:
            bodies = render_many(items=items)
            if len(bodies) != len(rest):
                raise ValueError(f"render_many gave {len(bodies)} bodies for {len(rest)} objects")
        except Exception:  # each delivery renders its own object then (and a broken one retries, as always)
            logger.exception("Rendering a batch failed; rendering one by one", extra={"ocpi_module": spec.module})
            self.failed.add(spec.module)
            return {}
        rendered = {self._key(row): body for row, body in zip(rest, bodies, strict=True)}
        self.bodies[spec.module] = (rendered_at, rendered)
        return rendered


def _per_row(sent: Sequence[_Sent], value: Callable[[_Sent], Any], output_field: Any) -> Any:
    """One value per delivery for an UPDATE of them all (a CASE on the pk; a plain value when they all share it)."""
    values = [value(item) for item in sent]
    if all(v == values[0] for v in values):
        return Value(values[0], output_field=output_field)
    pairs = zip(sent, values, strict=True)
    whens = [When(pk=item.delivery.pk, then=Value(v, output_field=output_field)) for item, v in pairs]
    return Case(*whens, output_field=output_field)


def _write_results(sent: list[_Sent], attempts: list[DeliveryAttempt], lease: datetime, run: "BatchRun") -> None:
    """Write what a batch did, in one transaction: the deliveries the partner accepted become DELIVERED (one
    UPDATE; only after their call succeeded, and only those this worker still holds under the batch's lease: one
    taken over meanwhile is LOST, its new holder's row is not touched) and the attempt log (one INSERT). A worker
    that dies before this leaves them IN_FLIGHT: the sweep takes them over when the lease runs out and sends the
    objects again as they are then. Empties both lists."""
    if not sent:
        DeliveryAttempt.objects.bulk_create(attempts)
        attempts.clear()
        return
    with transaction.atomic():
        held = set(
            Delivery.objects.select_for_update()
            .filter(pk__in=[item.delivery.pk for item in sent], status=Delivery.Status.IN_FLIGHT, lease_until=lease)
            .values_list("pk", flat=True)
        )
        ours = [item for item in sent if item.delivery.pk in held]
        if ours:
            Delivery.objects.filter(pk__in=[item.delivery.pk for item in ours]).update(
                status=Delivery.Status.DELIVERED,
                lease_until=None,
                last_error="",
                delivered_at=_per_row(ours, lambda item: item.at, DateTimeField()),
                last_http_status=_per_row(ours, lambda item: item.http_status, IntegerField()),
                last_ocpi_status=_per_row(ours, lambda item: item.ocpi_status, IntegerField()),
            )
        for item in sent:
            if item.delivery.pk not in held and item.attempt is not None:
                item.attempt.outcome = LOST.status
        DeliveryAttempt.objects.bulk_create(attempts)
    for item in sent:
        run.count(_DELIVERED if item.delivery.pk in held else LOST)
    for item in ours:
        delivery_finished(item.delivery, Delivery.Status.DELIVERED)
    if ours and _may_wait.get():
        _wake_waiting_many([item.delivery for item in ours])
    sent.clear()
    attempts.clear()


def _wake_waiting_many(deliveries: Sequence[Delivery]) -> None:
    """`_wake_waiting` for the deliveries a batch finished: two statements for them all."""
    now = timezone.now()
    where = Q(pk__in=[])
    for delivery in deliveries:
        path = delivery.object_path
        where |= Q(**_same_object(delivery)) & (
            Q(object_path=path, pk__gt=delivery.pk) | Q(object_path__startswith=f"{path}/")
        )
    waiting = Delivery.objects.filter(where, status=Delivery.Status.PENDING, next_attempt_at__gt=now)
    ids = list(waiting.order_by("pk").values_list("pk", flat=True)[:_WAKE_LIMIT])
    if ids:
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(next_attempt_at=now)


def outbox_deliver_partner(*, partner_id: int, holder: str | None = None) -> BatchRun:
    """Send the partner's due deliveries, oldest first, one after the other over the pooled client, in batches of
    OCPI_PUSH_BATCH_SIZE, until none is due (after OCPI_PUSH_BATCH_SECONDS the task enqueues itself again; after
    _GIVE_WAY_SECONDS already when another partner's task waits for a worker process).

    Only the partner's one batch task runs it (PartnerPushState: `holder` is the token `outbox_wake` gave the task;
    None for a timer, which runs only if the partner is free). Every delivery goes through the same steps as
    `outbox_deliver`: lease, order, hold checks, render, retry or dead letter. When the partner fails (unreachable,
    5xx, 429) the rest of the batch is given back and the partner is paused for the backoff or its Retry-After."""
    started = time.monotonic()
    token = _take_one(partner_id, holder)
    if token is None:
        return _busy(partner_id, holder)
    partner = Partner.objects.prefetch_related("endpoints", "parties").filter(pk=partner_id).first()
    if partner is None:
        return BatchRun("NO_PARTNER")
    run = BatchRun()
    clients: dict[Routing, OcpiClient] = {}
    holds: dict[Routing, str | None] = {}
    wake_in: float | None = None
    lease_seconds = settings.OCPI_PUSH_LEASE_SECONDS
    batches = 0  # a task sends at least one batch per turn
    while True:
        running = time.monotonic() - started
        if running > settings.OCPI_PUSH_BATCH_SECONDS or (
            batches
            and running > _GIVE_WAY_SECONDS
            and _others_wait(partner_id)
            and Delivery.objects.filter(_due(timezone.now()), partner=partner).exists()
        ):
            run.status = "CONTINUED"  # others' turn: go on from the back of the queue
            try:
                _partner_task(partner_id, token)
            except Exception:  # the sweep wakes the partner
                logger.warning("Could not enqueue the push batch again; the outbox sweep will send", exc_info=True)
                _let_go(partner_id, token)
            break
        claimed, lease = _claim_batch(partner, settings.OCPI_PUSH_BATCH_SIZE)
        claimed_at = time.monotonic()
        batches += 1
        if not claimed:
            _let_go(partner_id, token)
            # a change committed while we let go found the partner held and enqueued nothing: take it up again
            if not Delivery.objects.filter(_due(timezone.now()), partner=partner).exists():
                break
            token = _take_one(partner_id, None) or ""
            if not token:
                break  # another task has it now
            continue
        if not PartnerPushState.objects.filter(partner_id=partner_id, holder=token).update(
            queued_until=timezone.now() + _hold_for()
        ):
            _unclaim([row for row, _ in claimed], lease)
            return BatchRun("BUSY")  # the sweep gave the partner to another task (this one looked stuck)
        attempts: list[DeliveryAttempt] = []
        sent: list[_Sent] = []
        pause: float | None = None
        holds.clear()  # hold checks are asked again for every batch
        # whether a delivery of the partner waits (for its turn or a retry) and may have to be woken; a wait that
        # begins in this batch is this task's own (`_wait_for`); one begun by another worker has its own timer
        waiting = Delivery.objects.filter(
            partner=partner, status=Delivery.Status.PENDING, next_attempt_at__gt=timezone.now()
        ).exists()
        may_wait = _may_wait.set(waiting)
        try:
            order = _BatchOrder(partner_id, [row for row, _ in claimed])  # one query for the whole batch
            rows = _supersede_in_batch(claimed, lease, order, run, attempts)
            bodies = _BatchBodies([row for row, _ in rows])
            for index, (delivery, how) in enumerate(rows):
                if time.monotonic() - claimed_at > lease_seconds / 2:  # the lease runs low: claim afresh
                    _unclaim([row for row, _ in rows[index:]], lease)
                    break
                key = _object_key(delivery)
                now = timezone.now()
                outcome = _deliver_claimed(
                    delivery,
                    how,
                    now,
                    clients=clients,
                    attempts=attempts,
                    holds=holds,
                    blocked_by=order.blocker,
                    render=bodies.render,
                    sent=sent,
                )
                order.tried(delivery, key, outcome, now)
                if outcome is not _DELIVERED:  # an accepted delivery is counted once its result is written
                    run.count(outcome)
                if outcome.retry_in is not None:
                    _may_wait.set(True)
                if outcome.pause is not None:
                    _unclaim([row for row, _ in rows[index + 1 :]], lease)
                    pause = outcome.pause
                    break
                if outcome.retry_in:  # waits for its turn: look again then (woken earlier when the turn comes)
                    wake_in = outcome.retry_in if wake_in is None else min(wake_in, outcome.retry_in)
                if sent and time.monotonic() - sent[0].started > _RESULTS_SECONDS:  # a slow partner
                    _write_results(sent, attempts, lease, run)
        finally:
            try:
                _write_results(sent, attempts, lease, run)
            finally:
                _may_wait.reset(may_wait)
        if pause is not None:
            run.status = "PAUSED"
            _pause(partner_id, token, pause)
            break
    if wake_in is not None and run.status == "DONE":
        outbox_timer(partner_id, wake_in)
    logger.debug("Push batch", extra={"partner": partner_id, "status": run.status, "outcomes": run.outcomes})
    return run


def _pause(partner_id: int, holder: str, seconds: float) -> None:
    """Send the partner nothing for `seconds`; this task, still holding it, goes on then."""
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    PartnerPushState.objects.filter(partner_id=partner_id, holder=holder).update(
        paused_until=until, queued_until=until + _hold_for()
    )
    try:
        _partner_task(partner_id, holder, countdown=seconds)
    except Exception:  # the sweep wakes it once the pause and the hold are over
        logger.warning("Could not enqueue the paused push batch; the outbox sweep will send", exc_info=True)


def _busy(partner_id: int, holder: str | None) -> BatchRun:
    """The partner is held by another task or paused. The holder of a pause that comes a moment early (a timer's
    precision) waits for the pause's end again."""
    if holder:
        state = PartnerPushState.objects.filter(partner_id=partner_id, holder=holder).first()
        now = timezone.now()
        if state is not None and state.paused_until is not None and state.paused_until > now:
            try:
                _partner_task(partner_id, holder, countdown=(state.paused_until - now).total_seconds())
            except Exception:  # the sweep wakes the partner once the pause and the hold are over
                logger.warning("Could not enqueue the paused push batch; the outbox sweep will send", exc_info=True)
            return BatchRun("PAUSED")
    return BatchRun("BUSY")
