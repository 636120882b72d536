"""Push: the transactional outbox and its delivery to partners (DESIGN.md Flows, issue #3).

A service that changes one of our own objects calls `outbox_add` inside its transaction; one Delivery row per
partner that receives the module is written with the change, and a Celery task is enqueued after the commit.
`outbox_deliver` renders the object as it is *now* (never a stored copy), sends it through the one OCPI client,
and decides: delivered, retry later (timeouts, 5xx, 3xxx, 429 with Retry-After), or failed (4xx, 2xxx: a dead letter
operators can resend). A PATCH the partner answers with 404 becomes a PUT of the whole object. Rows live in the
database, so nothing is lost when Redis or a worker dies: `outbox_sweep` re-enqueues what is overdue.
"""

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
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
from ocpi_core.models import Delivery, DeliveryAttempt, Partner
from ocpi_core.routing import Routing

logger = logging.getLogger(__name__)

# render(country_code=, party_id=, object_path=, method=, fields=) -> body, or None when the object no longer exists
Renderer = Callable[..., dict[str, Any] | None]


@dataclass(frozen=True)
class PushModule:
    """How one module's own objects are pushed: which partner roles receive them and how a body is rendered."""

    module: str
    receiver_roles: tuple[str, ...]
    render: Renderer


_MODULES: dict[str, PushModule] = {}


def push_module_register(module: PushModule) -> None:
    """Called by module apps (AppConfig.ready) to make their objects pushable."""
    _MODULES[module.module] = module


def push_module(module: str) -> PushModule:
    return _MODULES[module]


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
    tasks are enqueued only after the commit.
    """
    now = timezone.now()
    targets = list(partners) if partners is not None else push_partners(module)
    created: list[Delivery] = []
    for partner in targets:
        older = list(
            Delivery.objects.select_for_update()
            .filter(
                partner=partner,
                module=module,
                country_code=country_code,
                party_id=party_id,
                object_path=object_path,
                status=Delivery.Status.PENDING,
            )
            .order_by("pk")
        )
        merged_method, merged_fields = method, list(fields)
        window_start = now
        for row in older:
            merged_method = _merge_method(row.method, merged_method)
            merged_fields = sorted(set(row.fields) | set(merged_fields))
        if merged_method != Delivery.Method.PATCH:
            merged_fields = []
        delivery = Delivery.objects.create(
            partner=partner,
            module=module,
            country_code=country_code,
            party_id=party_id,
            object_path=object_path,
            method=merged_method,
            fields=merged_fields,
            window_start=window_start,
            next_attempt_at=now,
        )
        if older:
            Delivery.objects.filter(pk__in=[row.pk for row in older]).update(
                status=Delivery.Status.SUPERSEDED, superseded_by=delivery, lease_until=None
            )
        created.append(delivery)
    if created:
        ids = [d.pk for d in created]
        transaction.on_commit(lambda: _enqueue(ids))
    return created


def _enqueue(ids: Sequence[int], countdown: float | None = None) -> None:
    """Hand deliveries to the workers. A broker outage only delays them: the sweep picks them up later."""
    from ocpi_core.tasks import outbox_deliver_task

    for delivery_id in ids:
        try:
            if countdown:
                outbox_deliver_task.apply_async((delivery_id,), countdown=countdown)
            else:
                outbox_deliver_task.delay(delivery_id)
        except Exception:  # the outbox row is the truth; the sweep re-enqueues it
            logger.warning("Could not enqueue a delivery; the sweep will retry", extra={"delivery": delivery_id})


# --- delivering ---


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one delivery task: `retry_in` seconds when it must run again."""

    status: str
    retry_in: float | None = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _backoff(attempts: int) -> float:
    base = settings.OCPI_PUSH_RETRY_BASE_SECONDS
    return float(min(base * 2 ** max(0, attempts - 1), settings.OCPI_PUSH_RETRY_MAX_SECONDS))


def _claim(delivery_id: int, now: datetime) -> bool:
    """Take the delivery for this worker: a conditional UPDATE, so two workers never send the same row at once."""
    lease = now + timedelta(seconds=settings.OCPI_PUSH_LEASE_SECONDS)
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Delivery.Status.IN_FLIGHT, lease_until__lt=now
    )
    return bool(
        Delivery.objects.filter(due, pk=delivery_id).update(
            status=Delivery.Status.IN_FLIGHT, lease_until=lease, attempts=F("attempts") + 1
        )
    )


def _blocked_by(delivery: Delivery) -> Delivery | None:
    """An older open delivery of the same object, or of its parent, to the same partner: it goes first."""
    path = delivery.object_path
    parents = [path.rsplit("/", depth)[0] for depth in range(1, path.count("/") + 1)]
    return (
        Delivery.objects.filter(
            partner_id=delivery.partner_id,
            module=delivery.module,
            country_code=delivery.country_code,
            party_id=delivery.party_id,
            object_path__in=[path, *parents],
            status__in=Delivery.OPEN,
            pk__lt=delivery.pk,
        )
        .order_by("pk")
        .first()
    )


def _routing(partner: Partner, delivery: Delivery, receiver_roles: tuple[str, ...]) -> Routing:
    """from = the owner of the object (our party); to = the partner's party that receives the module."""
    to = next((p for p in partner.parties.all() if p.role in receiver_roles), None)
    return Routing(
        from_country_code=delivery.country_code,
        from_party_id=delivery.party_id,
        to_country_code=to.country_code if to else "",
        to_party_id=to.party_id if to else "",
    )


def _finish(delivery: Delivery, status: str, **changes: Any) -> DeliveryOutcome:
    changes.setdefault("lease_until", None)
    Delivery.objects.filter(pk=delivery.pk).update(status=status, **changes)
    return DeliveryOutcome(status)


def _schedule_retry(delivery: Delivery, delay: float, *, reason: str, **changes: Any) -> DeliveryOutcome:
    now = timezone.now()
    window_end = delivery.window_start + timedelta(seconds=settings.OCPI_PUSH_RETRY_WINDOW_SECONDS)
    if now + timedelta(seconds=delay) > window_end:
        return _finish(
            delivery,
            Delivery.Status.FAILED,
            last_error=f"Gave up after {delivery.attempts} attempts: {reason}"[:2000],
            **changes,
        )
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=reason[:2000],
        **changes,
    )
    return DeliveryOutcome(Delivery.Status.PENDING, retry_in=delay)


def outbox_deliver(*, delivery_id: int) -> DeliveryOutcome:
    """Send one delivery (idempotent: running it twice, or after a crash, is harmless)."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return DeliveryOutcome("NOOP")
    delivery = Delivery.objects.select_related("partner").get(pk=delivery_id)
    blocker = _blocked_by(delivery)
    if blocker is not None:
        # Keep per-object order: the older change (or the parent's) first. Not an attempt.
        delay = settings.OCPI_PUSH_ORDER_DELAY_SECONDS
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now + timedelta(seconds=delay),
            lease_until=None,
            attempts=F("attempts") - 1,
        )
        return DeliveryOutcome(Delivery.Status.PENDING, retry_in=delay)

    partner = delivery.partner
    if partner.status != Partner.Status.REGISTERED or not partner.push_enabled:
        return _finish(delivery, Delivery.Status.FAILED, last_error=f"Partner is {partner.get_status_display()}")
    spec = _MODULES.get(delivery.module)
    endpoint = partner.endpoint_url(delivery.module, InterfaceRole.RECEIVER)
    if spec is None or endpoint is None:
        return _finish(delivery, Delivery.Status.FAILED, last_error=f"Partner offers no {delivery.module} receiver")

    body = None
    if delivery.method != Delivery.Method.DELETE:
        body = spec.render(
            country_code=delivery.country_code,
            party_id=delivery.party_id,
            object_path=delivery.object_path,
            method=delivery.method,
            fields=delivery.fields,
        )
        if body is None:
            return _finish(delivery, Delivery.Status.SUPERSEDED, last_error="The object no longer exists")

    url = f"{endpoint.rstrip('/')}/{delivery.country_code}/{delivery.party_id}/{delivery.object_path}"
    client = OcpiClient.for_partner(partner, routing=_routing(partner, delivery, spec.receiver_roles))
    started = time.perf_counter()
    http_status: int | None = None
    ocpi_status: int | None = None
    try:
        result = client.request(delivery.method, url, json=body)
        http_status, ocpi_status = result.http_status, result.status_code
        outcome = _finish(
            delivery,
            Delivery.Status.DELIVERED,
            delivered_at=timezone.now(),
            last_http_status=http_status,
            last_ocpi_status=ocpi_status,
            last_error="",
        )
        error = ""
    except PartnerCallError as exc:
        http_status, ocpi_status, error = exc.http_status, exc.ocpi_status_code, exc.message
        outcome = _after_failure(delivery, exc)
    _attempt_log(delivery, url, http_status, ocpi_status, started, error, outcome)
    return outcome


def _after_failure(delivery: Delivery, exc: PartnerCallError) -> DeliveryOutcome:
    status = exc.http_status
    codes = {"last_http_status": status, "last_ocpi_status": exc.ocpi_status_code}
    if isinstance(exc, UnsafeUrl):
        return _finish(delivery, Delivery.Status.FAILED, last_error=exc.message, **codes)
    if delivery.method == Delivery.Method.PATCH and status == 404:
        # The partner does not have the object: send it whole, now (REFERENCE §2.5, PATCH failure).
        return _schedule_retry(
            delivery, 0.0, reason="PATCH answered 404: sending the whole object", method="PUT", fields=[], **codes
        )
    if status == 429:
        delay = _retry_after(exc.headers.get("Retry-After"))
        return _schedule_retry(
            delivery, delay if delay is not None else _backoff(delivery.attempts), reason=exc.message, **codes
        )
    transient = (
        isinstance(exc, PartnerUnreachable)
        or status is None
        or status >= 500
        or (isinstance(exc, PartnerRefused) and status < 400 and (exc.ocpi_status_code or 0) >= 3000)
        or (isinstance(exc, PartnerBadResponse) and status < 400)
    )
    if transient:
        return _schedule_retry(delivery, _backoff(delivery.attempts), reason=exc.message, **codes)
    return _finish(delivery, Delivery.Status.FAILED, last_error=exc.message, **codes)


def _attempt_log(
    delivery: Delivery,
    url: str,
    http_status: int | None,
    ocpi_status: int | None,
    started: float,
    error: str,
    outcome: DeliveryOutcome,
) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        method=delivery.method,
        url=url,
        http_status=http_status,
        ocpi_status=ocpi_status,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        error=error[:2000],
        outcome=outcome.status if outcome.retry_in is None else "RETRY",
    )


# --- operations ---


def outbox_resend(*, deliveries: Iterable[Delivery]) -> int:
    """Operators' "resend now": failed (or waiting) deliveries get a fresh retry window and go out at once."""
    now = timezone.now()
    updated = [d.pk for d in deliveries if d.status in (Delivery.Status.FAILED, Delivery.Status.PENDING)]
    Delivery.objects.filter(pk__in=updated).update(
        status=Delivery.Status.PENDING, window_start=now, next_attempt_at=now, lease_until=None, attempts=0
    )
    transaction.on_commit(lambda: _enqueue(updated))
    return len(updated)


def outbox_sweep(*, limit: int = 1000) -> int:
    """Re-enqueue deliveries that are overdue (enqueue lost, Redis was down) or whose worker died mid-delivery."""
    now = timezone.now()
    grace = timedelta(seconds=settings.OCPI_PUSH_SWEEP_GRACE_SECONDS)
    due = Q(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace) | Q(
        status=Delivery.Status.IN_FLIGHT, lease_until__lt=now
    )
    ids = list(Delivery.objects.filter(due).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    _enqueue(ids)
    if ids:
        logger.info("Outbox sweep re-enqueued deliveries", extra={"count": len(ids)})
    return len(ids)
