"""Prometheus metrics (issue #6): what the platform counts, and the protected `/metrics` view that serves them.

One registry per deployment, whatever the process layout:

* PROMETHEUS_MULTIPROC_DIR set (gunicorn workers, Celery workers): every process writes its samples to memory-mapped
  files in that folder, and a scrape of any web worker aggregates all files (prometheus_client's multiprocess mode).
  File names carry host name and pid, so containers sharing the folder (docker-compose.yml) never write the same file.
* unset: the samples live in this process (development server, tests).

The hot path costs one counter increment and one histogram observation; the only database work is the outbox depth,
one GROUP BY at scrape time. Label values are bounded: the partner's name (or `unknown` before authentication,
`unregistered` for calls to a party not registered yet), the OCPI module taken from the URL (never the raw path),
the HTTP method from a fixed set, HTTP and OCPI status codes.
"""

import hmac
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ocpi_core.traffic import module_of_path

if TYPE_CHECKING:
    from ocpi_core.models import Delivery

logger = logging.getLogger(__name__)

MULTIPROC_DIR: str = getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "") or ""

if MULTIPROC_DIR:
    try:
        os.makedirs(MULTIPROC_DIR, exist_ok=True)
    except OSError as exc:  # e.g. the container's folder outside a container: this process keeps its own samples
        logger.warning("PROMETHEUS_MULTIPROC_DIR unusable; metrics stay per process", extra={"error": str(exc)})
        MULTIPROC_DIR = ""
if MULTIPROC_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = MULTIPROC_DIR  # where prometheus_client's value files go
    _HOST = socket.gethostname().replace("_", "-")  # '_' separates the parts of a file name
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"{_HOST}-{os.getpid()}")
else:  # an empty variable would make prometheus_client write into the working folder
    values.ValueClass = values.MutexValue

# The metrics of this process. In multiprocess mode their values go to the files; a scrape reads those instead.
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DELIVERY_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 24 * 3600.0)
_SYNC_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

INBOUND_REQUESTS = Counter(
    "ocpi_inbound_requests",
    "OCPI requests partners made to us.",
    ["partner", "module", "method", "http_status", "ocpi_status"],
    registry=REGISTRY,
)
INBOUND_LATENCY = Histogram(
    "ocpi_inbound_request_duration_seconds",
    "Time to answer an OCPI request of a partner.",
    ["partner", "module", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
OUTBOUND_REQUESTS = Counter(
    "ocpi_outbound_requests",
    "OCPI requests we made to partners (http_status and ocpi_status 'none' when no answer came).",
    ["partner", "module", "method", "http_status", "ocpi_status"],
    registry=REGISTRY,
)
OUTBOUND_LATENCY = Histogram(
    "ocpi_outbound_request_duration_seconds",
    "Time a partner took to answer an OCPI request of ours (or to fail).",
    ["partner", "module", "method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "ocpi_push_delivery_latency_seconds",
    "Outbox: time from a change (Delivery created) to its delivery to the partner.",
    ["module"],
    buckets=_DELIVERY_BUCKETS,
    registry=REGISTRY,
)
SYNC_DURATION = Histogram(
    "ocpi_sync_duration_seconds",
    "Pull sync runs (one partner, one module) by outcome.",
    ["module", "outcome"],
    buckets=_SYNC_BUCKETS,
    registry=REGISTRY,
)
COMMAND_RESULTS = Counter(
    "ocpi_command_results",
    "CommandResults recorded: direction RECEIVED (we are the CPO) or SENT (we are the eMSP), by type and result.",
    ["direction", "command_type", "result"],
    registry=REGISTRY,
)


def _method(method: str | None) -> str:
    method = (method or "").upper()
    return method if method in _METHODS else "OTHER"


def _ocpi_status(code: Any) -> str:
    if isinstance(code, int) and not isinstance(code, bool):
        return str(code) if 1000 <= code <= 4999 else "invalid"
    return "none"


def _partner_name(partner: Any, default: str) -> str:
    name = getattr(partner, "name", None) if partner is not None else None
    return str(name)[:100] if name else default


# --------------------------------------------------------------------------------------------------- recording


def observe_inbound(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    """One OCPI request of a partner (OcpiMiddleware). No database access: the partner is already on the request."""
    try:
        partner = _partner_name(getattr(request, "ocpi_partner", None), "unknown")
        module = module_of_path(request.path_info) or "none"
        method = _method(request.method)
        ocpi_status = _ocpi_status(getattr(response, "ocpi_status_code", None))
        INBOUND_REQUESTS.labels(partner, module, method, str(response.status_code), ocpi_status).inc()
        INBOUND_LATENCY.labels(partner, module, method).observe(seconds)
    except Exception:  # metrics never break the exchange they measure
        logger.exception("Could not record the inbound request metric")


def observe_outbound(
    *, partner: Any, method: str, path: str, http_status: int | None, ocpi_status: Any, seconds: float
) -> None:
    """One OCPI request we made (OcpiClient.request), answered or not."""
    try:
        name = _partner_name(partner, "unregistered")
        module = module_of_path(path) or "none"
        verb = _method(method)
        status = str(http_status) if http_status is not None else "none"
        OUTBOUND_REQUESTS.labels(name, module, verb, status, _ocpi_status(ocpi_status)).inc()
        OUTBOUND_LATENCY.labels(name, module, verb).observe(seconds)
    except Exception:
        logger.exception("Could not record the outbound request metric")


def delivery_finished(delivery: "Delivery", status: str) -> None:
    """A Delivery reached `status` (ocpi_core.push._finish); a DELIVERED one is observed created → delivered."""
    if status != "DELIVERED" or delivery.created_at is None:
        return
    try:
        delay = (timezone.now() - delivery.created_at).total_seconds()
        DELIVERY_LATENCY.labels(delivery.module or "none").observe(max(delay, 0.0))
    except Exception:
        logger.exception("Could not record the delivery latency metric")


def sync_finished(module: str, outcome: str, started: datetime) -> None:
    """A pull sync run ended (ocpi_core.sync.sync_run); `outcome` is the run's status."""
    try:
        SYNC_DURATION.labels(module, str(outcome)).observe(max((timezone.now() - started).total_seconds(), 0.0))
    except Exception:
        logger.exception("Could not record the sync duration metric")


def command_result_recorded(command: Any) -> None:
    """A CommandResult was stored (commands.services); counted once the transaction that stores it commits."""
    labels = (str(command.direction), str(command.command_type), str(command.result or "none"))
    transaction.on_commit(lambda: COMMAND_RESULTS.labels(*labels).inc())


# ------------------------------------------------------------------------------------------------- outbox depth


class OutboxCollector(Collector):
    """Delivery rows by status, read at scrape time with one GROUP BY (nothing is kept between scrapes)."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count

        from ocpi_core.models import Delivery

        family = GaugeMetricFamily("ocpi_push_outbox_deliveries", "Outbox: Delivery rows by status.", labels=["status"])
        try:
            counts = dict(Delivery.objects.order_by().values_list("status").annotate(count=Count("pk")))
        except Exception:  # the database is down: the other metrics are still served, this one says it failed
            logger.warning("Could not read the outbox depth for /metrics", exc_info=True)
            yield GaugeMetricFamily("ocpi_push_outbox_up", "1 when the outbox depth could be read.", value=0)
            return
        for status in Delivery.Status.values:
            family.add_metric([status], counts.get(status, 0))
        yield family
        yield GaugeMetricFamily("ocpi_push_outbox_up", "1 when the outbox depth could be read.", value=1)


def scrape_registry() -> CollectorRegistry:
    """What one scrape serves: every process's samples (multiprocess mode) or this process's, plus the outbox."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=MULTIPROC_DIR)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessLocal())
    registry.register(OutboxCollector())
    return registry


class _ProcessLocal(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


# --------------------------------------------------------------------------------------------------------- view


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: 404 unless OCPI_METRICS_TOKEN is set; then 401 unless `Authorization: Bearer <that token>`."""
    token = settings.OCPI_METRICS_TOKEN
    if not token:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):
        return HttpResponse("Method not allowed\n", status=405, content_type="text/plain", headers={"Allow": "GET"})
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
