"""Prometheus metrics (issue #6): the protected /metrics endpoint, inbound and outbound request series, outbox depth,
delivery latency, sync and command hooks, and prometheus_client's multiprocess mode across real processes."""

import base64
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import envelope_body, make_partner
from ocpi_core import metrics
from ocpi_core.client import OcpiClient, PartnerRefused, PartnerUnreachable
from ocpi_core.models import Delivery, Partner, Party

REPO = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "metrics-test-token-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition: (name, labels) → value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text_or_samples: Any, name: str, **labels: str) -> float:
    table = samples(text_or_samples) if isinstance(text_or_samples, str) else text_or_samples
    return table.get((name, frozenset(labels.items())), 0.0)


def local(name: str, **labels: str) -> float:
    """A sample of this process's registry (the live server runs in this process)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings: Any) -> str:
    settings.OCPI_METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN


@pytest.fixture
def scrape(live_server: Any, metrics_token: str) -> Iterator[Callable[[], str]]:
    with httpx.Client(base_url=live_server.url, timeout=20) as client:

        def get() -> str:
            response = client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
            assert response.status_code == 200, response.text
            return response.text

        yield get


# ------------------------------------------------------------------------------------------------- the endpoint


def test_metrics_is_not_found_without_a_configured_token(ocpi: Any, settings: Any) -> None:
    settings.OCPI_METRICS_TOKEN = ""
    response = ocpi().get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert "ocpi_" not in response.text


def test_metrics_refuses_requests_without_the_token(ocpi: Any, metrics_token: str) -> None:
    client = ocpi()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Token {metrics_token}"},  # the OCPI scheme is not the metrics one
        {"Authorization": f"Bearer {metrics_token}x"},
        {"Authorization": "Bearer"},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "ocpi_" not in response.text


def test_metrics_serves_the_text_format_with_the_token(ocpi: Any, metrics_token: str) -> None:
    response = ocpi().get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert response.headers["Cache-Control"] == "no-store"
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "ocpi_inbound_requests",
        "ocpi_inbound_request_duration_seconds",
        "ocpi_outbound_requests",
        "ocpi_outbound_request_duration_seconds",
        "ocpi_push_delivery_latency_seconds",
        "ocpi_sync_duration_seconds",
        "ocpi_command_results",
        "ocpi_push_outbox_deliveries",
        "ocpi_push_outbox_up",
    } <= names


# --------------------------------------------------------------------------------------------- inbound requests


def test_an_ocpi_request_increments_its_labelled_series(ocpi: Any, scrape: Callable[[], str], own_parties: Any) -> None:
    _partner, token = make_partner(name="Metrics Partner")
    ok = {"partner": "Metrics Partner", "module": "versions", "method": "GET", "http_status": "200"}
    before = samples(scrape())

    response = ocpi(token).get("/ocpi/versions")
    assert response.status_code == 200
    refused = ocpi("not-a-known-token").get("/ocpi/2.2.1/cpo/locations")
    assert refused.status_code == 401

    after = samples(scrape())
    name = "ocpi_inbound_requests_total"
    assert value(after, name, **ok, ocpi_status="1000") - value(before, name, **ok, ocpi_status="1000") == 1
    unknown = {"partner": "unknown", "module": "locations", "method": "GET", "http_status": "401"}
    assert value(after, name, **unknown, ocpi_status="2000") - value(before, name, **unknown, ocpi_status="2000") == 1
    latency = "ocpi_inbound_request_duration_seconds_count"
    labels = {"partner": "Metrics Partner", "module": "versions", "method": "GET"}
    assert value(after, latency, **labels) - value(before, latency, **labels) == 1
    # Label values come from the module, never from the raw path (bounded cardinality).
    assert not any("/" in v for (_, labelset) in after for (_, v) in labelset)


def test_unknown_paths_and_methods_do_not_create_new_label_values(ocpi: Any, scrape: Callable[[], str]) -> None:
    client = ocpi()
    for index in range(3):
        client.get(f"/ocpi/unknown-{index}/thing")
    client.request("BREW", "/ocpi/versions")
    after = samples(scrape())
    modules = {dict(labels).get("module") for (name, labels) in after if name == "ocpi_inbound_requests_total"}
    methods = {dict(labels).get("method") for (name, labels) in after if name == "ocpi_inbound_requests_total"}
    assert not any(module and module.startswith("unknown-") for module in modules)
    assert "none" in modules
    assert "BREW" not in methods
    assert "OTHER" in methods


# -------------------------------------------------------------------------------------------- outbound requests


def test_an_outbound_call_is_counted(httpserver: HTTPServer, db: None) -> None:
    partner, _ = make_partner(name="Called Partner")
    httpserver.expect_request("/ocpi/2.2.1/locations").respond_with_response(
        Response(envelope_body([]), 200, mimetype="application/json")
    )
    httpserver.expect_request("/ocpi/2.2.1/tariffs").respond_with_response(
        Response(envelope_body(status_code=2001, message="Invalid"), 400, mimetype="application/json")
    )
    ok = {"partner": "Called Partner", "module": "locations", "method": "GET", "http_status": "200"}
    refused = {"partner": "Called Partner", "module": "tariffs", "method": "PUT", "http_status": "400"}
    before_ok = local("ocpi_outbound_requests_total", **ok, ocpi_status="1000")
    before_refused = local("ocpi_outbound_requests_total", **refused, ocpi_status="2001")
    latency = {"partner": "Called Partner", "module": "locations", "method": "GET"}
    before_latency = local("ocpi_outbound_request_duration_seconds_count", **latency)

    client = OcpiClient(token="t0k3n", partner=partner)
    client.get(httpserver.url_for("/ocpi/2.2.1/locations"))
    with pytest.raises(PartnerRefused):
        client.put(httpserver.url_for("/ocpi/2.2.1/tariffs"), json={})

    assert local("ocpi_outbound_requests_total", **ok, ocpi_status="1000") == before_ok + 1
    assert local("ocpi_outbound_requests_total", **refused, ocpi_status="2001") == before_refused + 1
    assert local("ocpi_outbound_request_duration_seconds_count", **latency) == before_latency + 1


def test_an_outbound_call_without_an_answer_is_counted(db: None) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    labels = {"partner": "unregistered", "module": "versions", "method": "GET", "http_status": "none"}
    before = local("ocpi_outbound_requests_total", **labels, ocpi_status="none")
    with pytest.raises(PartnerUnreachable):
        OcpiClient(token="t0k3n").get(f"http://127.0.0.1:{port}/ocpi/versions")
    assert local("ocpi_outbound_requests_total", **labels, ocpi_status="none") == before + 1


# ---------------------------------------------------------------------------------------------------- the outbox


def _delivery(partner: Partner, status: str, **fields: Any) -> Delivery:
    now = timezone.now()
    return Delivery.objects.create(
        partner=partner,
        module="locations",
        country_code="NL",
        party_id="OWN",
        object_path=f"LOC{Delivery.objects.count()}",
        method=Delivery.Method.PUT,
        status=status,
        window_start=now,
        next_attempt_at=now,
        **fields,
    )


def test_outbox_depth_reflects_delivery_rows(scrape: Callable[[], str], ocpi: Any, own_parties: Any) -> None:
    partner, _ = make_partner(name="Outbox Partner")
    before = samples(scrape())
    assert value(before, "ocpi_push_outbox_up") == 1
    for status, count in ((Delivery.Status.PENDING, 3), (Delivery.Status.FAILED, 2), (Delivery.Status.DELIVERED, 1)):
        for _ in range(count):
            _delivery(partner, status)

    after = samples(scrape())
    depth = "ocpi_push_outbox_deliveries"
    assert value(after, depth, status="PENDING") == value(before, depth, status="PENDING") + 3
    assert value(after, depth, status="FAILED") == value(before, depth, status="FAILED") + 2
    assert value(after, depth, status="DELIVERED") == value(before, depth, status="DELIVERED") + 1
    assert value(after, depth, status="IN_FLIGHT") == value(before, depth, status="IN_FLIGHT")  # zero is shown too
    assert (depth, frozenset({("status", "IN_FLIGHT")})) in after


def test_outbox_depth_is_one_query(db: None, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        list(metrics.OutboxCollector().collect())


def test_delivery_latency_is_observed_when_delivered(db: None, own_parties: Any) -> None:
    partner, _ = make_partner(name="Latency Partner")
    delivery = _delivery(partner, Delivery.Status.IN_FLIGHT)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=42))
    delivery.refresh_from_db()
    count = "ocpi_push_delivery_latency_seconds_count"
    total = "ocpi_push_delivery_latency_seconds_sum"
    before_count, before_sum = local(count, module="locations"), local(total, module="locations")

    metrics.delivery_finished(delivery, Delivery.Status.FAILED)  # not delivered: not observed
    assert local(count, module="locations") == before_count
    metrics.delivery_finished(delivery, Delivery.Status.DELIVERED)
    assert local(count, module="locations") == before_count + 1
    assert 42 <= local(total, module="locations") - before_sum < 60


def test_push_marks_a_delivery_delivered_and_observes_its_latency(
    db: None, own_parties: Any, httpserver: HTTPServer
) -> None:
    """Through ocpi_core.push: the hook in _finish sees the DELIVERED transition."""
    from ocpi_core import push

    partner, _ = make_partner(name="Pushed Partner")
    delivery = _delivery(partner, Delivery.Status.IN_FLIGHT, lease_until=timezone.now() + timedelta(seconds=60))
    before = local("ocpi_push_delivery_latency_seconds_count", module="locations")
    outcome = push._finish(delivery, Delivery.Status.DELIVERED, delivered_at=timezone.now())
    assert outcome.status == Delivery.Status.DELIVERED
    assert local("ocpi_push_delivery_latency_seconds_count", module="locations") == before + 1


# ---------------------------------------------------------------------------------------------- sync, commands


def test_sync_duration_is_observed_by_module_and_outcome(db: None, own_parties: Any) -> None:
    from ocpi_core.sync import sync_run

    partner, _ = make_partner(name="Sync Partner")  # offers no locations sender: the run fails
    before = local("ocpi_sync_duration_seconds_count", module="locations", outcome="FAILED")
    run = sync_run(partner=partner, module="locations")
    assert run.status == "FAILED"
    assert local("ocpi_sync_duration_seconds_count", module="locations", outcome="FAILED") == before + 1


def test_command_results_are_counted_when_recorded(
    db: None, own_parties: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from commands.choices import CommandResultType, CommandType
    from commands.models import Command
    from commands.services import command_result_report

    partner, _ = make_partner(name="Command Partner")
    command = Command.objects.create(
        direction=Command.Direction.RECEIVED,
        partner=partner,
        command_type=CommandType.UNLOCK_CONNECTOR,
        response_url="http://127.0.0.1:9/ocpi/commands/UNLOCK_CONNECTOR/1",
        request={},
        state=Command.State.WAITING,
        deadline_at=timezone.now() + timedelta(seconds=30),
    )
    labels = {"direction": "RECEIVED", "command_type": "UNLOCK_CONNECTOR", "result": "ACCEPTED"}
    before = local("ocpi_command_results_total", **labels)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert command_result_report(command_id=command.pk, result=CommandResultType.ACCEPTED)
    assert local("ocpi_command_results_total", **labels) == before  # not before the commit
    for callback in callbacks:
        if getattr(callback, "__qualname__", "").startswith("command_result_recorded"):
            callback()
    assert local("ocpi_command_results_total", **labels) == before + 1
    # A late answer is ignored and not counted.
    with django_capture_on_commit_callbacks(execute=True):
        assert not command_result_report(command_id=command.pk, result=CommandResultType.REJECTED)
    assert local("ocpi_command_results_total", **{**labels, "result": "REJECTED"}) == 0


# ------------------------------------------------------------------------------------------ multiprocess mode


def _subprocess_env(multiproc_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: item for key, item in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        PYTHONPATH=str(REPO),
        DJANGO_SETTINGS_MODULE="config.settings.test",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
        OCPI_METRICS_TOKEN=METRICS_TOKEN,
    )
    env.update(extra)
    return env


WRITER = textwrap.dedent(
    """
    import os, sys, django
    django.setup()
    from ocpi_core import metrics
    assert metrics.MULTIPROC_DIR, "multiprocess mode is off"
    for _ in range(int(sys.argv[1])):
        metrics.observe_outbound(
            partner=None, method="GET", path="/ocpi/2.2.1/locations", http_status=200, ocpi_status=1000, seconds=0.2
        )
    print(os.getpid())
    """
)

SCRAPER = textwrap.dedent(
    """
    import sys, django
    django.setup()
    from django.test import Client
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
    assert response.status_code == 200, response.status_code
    sys.stdout.write(response.content.decode())
    """
)


def test_multiprocess_mode_aggregates_the_samples_of_several_processes(tmp_path: Path, db: None) -> None:
    folder = tmp_path / "metrics"  # created by the first process that needs it
    env = _subprocess_env(folder)
    pids = set()
    for count in (3, 4):
        result = subprocess.run(
            [sys.executable, "-c", WRITER, str(count)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr[-3000:]
        pids.add(result.stdout.strip())
    assert len(pids) == 2
    files = sorted(path.name for path in folder.glob("*.db"))
    assert len([name for name in files if name.startswith("counter_")]) == 2, files
    host = socket.gethostname().replace("_", "-")
    assert all(name.split("_", 1)[1].startswith(host + "-") for name in files), files

    # A third process (what a web worker does on GET /metrics) serves the sum of both.
    result = subprocess.run(
        [sys.executable, "-c", SCRAPER, METRICS_TOKEN], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    labels = {"partner": "unregistered", "module": "locations", "method": "GET", "http_status": "200"}
    assert value(result.stdout, "ocpi_outbound_requests_total", **labels, ocpi_status="1000") == 7
    latency = {"partner": "unregistered", "module": "locations", "method": "GET"}
    assert value(result.stdout, "ocpi_outbound_request_duration_seconds_count", **latency) == 7
    assert value(result.stdout, "ocpi_outbound_request_duration_seconds_bucket", **latency, le="0.25") == 7
    assert value(result.stdout, "ocpi_outbound_request_duration_seconds_bucket", **latency, le="0.1") == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_workers_share_their_metrics(tmp_path: Path, transactional_db: None) -> None:
    """Two gunicorn workers serve OCPI requests; any of them answers /metrics with the total of both."""
    if connection.vendor != "postgresql":
        pytest.skip("the gunicorn processes need the test database on a server (TEST_DATABASE_URL)")
    Party.objects.create(country_code="NL", party_id="OWN", role="CPO", name="Own CPO")
    _partner, token = make_partner(name="Gunicorn Partner")
    database = connection.settings_dict
    url = f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}/"
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = _subprocess_env(
        folder,
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=url + database["NAME"],
        DJANGO_DEBUG="false",
        CELERY_BROKER_URL="memory://",
        OCPI_TRAFFIC_LOG_ENABLED="false",
    )
    port = _free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--no-control-socket"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        # A new connection per request: the arbiter's workers take them in turn as they are free.
        authorization = "Token " + base64.b64encode(token.encode()).decode()

        def call(_: int) -> int:
            response = httpx.get(f"{base}/ocpi/versions", headers={"Authorization": authorization}, timeout=20)
            return response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(call, range(40)))
        assert statuses == [200] * 40
        scraped = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=20)
        assert scraped.status_code == 200, scraped.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    labels = {"partner": "Gunicorn Partner", "module": "versions", "method": "GET", "http_status": "200"}
    assert value(scraped.text, "ocpi_inbound_requests_total", **labels, ocpi_status="1000") == 40
    writers = {path.name.split("_", 1)[1] for path in folder.glob("counter_*.db")}
    assert len(writers) == 2, f"both workers should have served requests: {writers}"
    assert value(scraped.text, "ocpi_push_outbox_up") == 1
