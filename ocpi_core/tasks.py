"""Periodic housekeeping of the protocol core."""

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=240, time_limit=300)
def traffic_log_purge_task(batch_size: int = 5000) -> int:
    """Delete traffic log entries older than OCPI_TRAFFIC_LOG_RETENTION_DAYS, in batches. Returns how many."""
    from ocpi_core.models import TrafficLog

    cutoff = timezone.now() - timedelta(days=settings.OCPI_TRAFFIC_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(TrafficLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted += TrafficLog.objects.filter(pk__in=ids).delete()[0]
    logger.info("Traffic log purged", extra={"deleted": deleted, "cutoff": cutoff.isoformat()})
    return deleted


@shared_task(bind=True, acks_late=True, queue="push", soft_time_limit=60, time_limit=90)
def outbox_deliver_task(self: Any, delivery_id: int) -> str:
    """Send one outbox delivery to one partner. Running it twice is harmless (see push.outbox_deliver). Deliveries
    now go in batches (outbox_deliver_partner_task); this stays for messages queued before an upgrade."""
    from ocpi_core.models import Delivery
    from ocpi_core.push import outbox_deliver, outbox_timer, outbox_wake

    outcome = outbox_deliver(delivery_id=delivery_id)
    if outcome.follow_ups or outcome.retry_in is not None:
        partner_id = Delivery.objects.filter(pk=delivery_id).values_list("partner_id", flat=True).first()
        if partner_id is not None and outcome.follow_ups:  # deliveries that waited for this one may go now
            outbox_wake([partner_id])
        if partner_id is not None and outcome.retry_in is not None:
            outbox_timer(partner_id, outcome.pause or outcome.retry_in)
    return outcome.status


@shared_task(bind=True, acks_late=True, queue="push", soft_time_limit=150, time_limit=180)
def outbox_deliver_partner_task(self: Any, partner_id: int, holder: str | None = None) -> str:
    """Send one partner's due deliveries in order, in batches (see push.outbox_deliver_partner). At most one runs per
    partner: `holder` is the token outbox_wake took the partner with; None for a timer. Running it twice is harmless."""
    from ocpi_core.push import outbox_deliver_partner

    return outbox_deliver_partner(partner_id=partner_id, holder=holder).status


@shared_task(queue="push", soft_time_limit=50, time_limit=60)
def outbox_sweep_task() -> int:
    """Every minute: wake the partners of overdue deliveries (lost enqueues, dead workers, a Redis outage)."""
    from ocpi_core.push import outbox_sweep

    return outbox_sweep()


@shared_task(queue="sync", soft_time_limit=3000, time_limit=3600)
def sync_partner_task(partner_id: int, module: str, full: bool = False) -> str:
    """Pull one module from one partner (see ocpi_core.sync)."""
    from ocpi_core.exceptions import InvalidParameters
    from ocpi_core.models import Partner
    from ocpi_core.sync import SyncBusy, sync_run

    partner = Partner.objects.filter(pk=partner_id).first()
    if partner is None:
        return "NO_PARTNER"
    try:
        return sync_run(partner=partner, module=module, full=full).status
    except SyncBusy:
        logger.info("Sync already running", extra={"partner": partner.name, "ocpi_module": module})
        return "BUSY"
    except InvalidParameters as exc:  # a module nobody registered (e.g. a task queued before a deployment)
        logger.error("Sync of an unknown module", extra={"ocpi_module": module, "error": exc.message})
        return "UNKNOWN_MODULE"


@shared_task(queue="sync", soft_time_limit=50, time_limit=60)
def sync_all_task(full: bool = False) -> int:
    """Scheduled: one sync task per registered partner and pullable module it offers."""
    from ocpi_core.sync import sync_targets

    targets = sync_targets()
    for partner, module in targets:
        sync_partner_task.delay(partner.pk, module, full=full)
    return len(targets)
