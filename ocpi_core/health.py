"""Liveness and readiness probes for load balancers and orchestrators."""

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering."""
    return JsonResponse({"status": "ok"})


def _broker_ok() -> tuple[bool, str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", ""))
        from pathlib import Path

        return Path(folder).is_dir(), "embedded file-system broker"
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(client.ping()), "redis"
        finally:
            client.close()
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return True, conn.transport_cls if isinstance(conn.transport_cls, str) else "broker"


def readyz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachable: 200, else 503 naming what is down."""
    checks: dict[str, str] = {}
    ready = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        ready, checks["database"] = False, f"error: {exc.__class__.__name__}"
    try:
        ok, kind = _broker_ok()
        checks["broker"] = "ok" if ok else f"unavailable ({kind})"
        ready = ready and ok
    except Exception as exc:
        ready, checks["broker"] = False, f"error: {exc.__class__.__name__}"
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
