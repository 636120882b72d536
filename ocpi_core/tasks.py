"""Periodic housekeeping of the protocol core."""

import logging
from datetime import timedelta

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
