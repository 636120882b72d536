"""The admin's path on a real Celery worker consuming from a real Redis: the run is queued, a worker executes it
against a fake partner on a local HTTP server, and the stored report says what it found."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_httpserver import HTTPServer

from config.celery_app import app
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from selftest.models import SelfTestRun
from selftest.services import selftest_enqueue
from selftest.tests.sender_partner import SenderPartner, sender_partner_registered, tariff


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_broker")
def test_selftest_runs_on_a_real_worker(httpserver: HTTPServer) -> None:
    platform = SenderPartner(server=httpserver, lists={"tariffs": [tariff(n) for n in range(1, 4)]}).start()
    partner = sender_partner_registered(platform)

    with start_worker(app, pool="solo", queues=["sync"], perform_ping_check=False, shutdown_timeout=30) as worker:
        assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
        assert not app.conf.task_always_eager
        run = selftest_enqueue(partner=partner)
        deadline = time.monotonic() + 60
        while SelfTestRun.objects.filter(pk=run.pk, status=SelfTestRun.Status.RUNNING).exists():
            if time.monotonic() > deadline:
                pytest.fail("the worker did not finish the self-test within 60 s")
            time.sleep(0.1)

    run.refresh_from_db()
    assert run.status == SelfTestRun.Status.PASSED, list(run.checks.exclude(outcome="PASS").values("rule", "evidence"))
    assert run.checks.filter(rule="tariffs.paging", outcome="PASS").exists()
    assert run.requests == len(platform.received) > 0
