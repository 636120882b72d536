"""Scheduled pull sync end to end: beat's task on a real Celery worker (Redis broker, the `sync` queue) pulls from
partner platforms on local HTTP servers (ocpi_core/tests/test_sync.py has the partner and the detailed cases)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from config.celery_app import app
from locations.models import Evse
from ocpi_core.constants import InterfaceRole
from ocpi_core.models import SyncRun, SyncState
from ocpi_core.sync import pull_modules
from ocpi_core.tasks import sync_all_task, sync_partner_task
from ocpi_core.tests.test_sync import LOCATIONS, TARIFFS, Senders
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_broker")]


@pytest.fixture
def senders() -> Iterator[Senders]:
    partners = Senders()
    yield partners
    partners.close()


@pytest.fixture
def task_results() -> Iterator[list[tuple[str, str, Any]]]:
    """(task name, state, return value) of every task the worker finishes."""
    results: list[tuple[str, str, Any]] = []

    def on_postrun(sender: Any = None, state: str = "", retval: Any = None, **kwargs: Any) -> None:
        if sender is not None:
            results.append((sender.name, state, retval))

    signals.task_postrun.connect(on_postrun, weak=False)
    yield results
    signals.task_postrun.disconnect(on_postrun)


@contextmanager
def sync_worker() -> Iterator[Any]:
    """A worker thread consuming the `sync` queue. Celery remembers the queue selection on the app
    (`app.amqp.queues`); it is put back afterwards so later workers in this process consume what they expect."""
    queues = app.amqp.queues
    selected = queues._consume_from  # type: ignore[attr-defined]
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=["sync"]) as worker:
            yield worker
    finally:
        queues._consume_from = selected  # type: ignore[attr-defined]


def wait_for(results: list[tuple[str, str, Any]], count: int, what: str) -> None:
    deadline = time.monotonic() + 60
    while len(results) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not finish {what} within 60 s (task results: {results})")
        time.sleep(0.1)


def test_scheduled_syncs_run_on_a_real_worker_for_every_partner_offering_a_sender(senders, task_results):
    first = senders(LOCATIONS, count=9, name="cpo-first")  # three pages of four
    second = senders(LOCATIONS, count=3, name="cpo-second", party=("FR", "SEC"))
    receiver_only = senders(LOCATIONS, count=2, name="emsp-only", party=("FR", "EMS"))
    receiver_only.partner.endpoints.filter(identifier=LOCATIONS.module).update(role=InterfaceRole.RECEIVER)
    pulling = [first, second]
    if TARIFFS.module in pull_modules():
        pulling.append(senders(TARIFFS, count=5, name="cpo-tariffs", party=("FR", "TAR")))
    dispatched = [(sync_all_task.name, "SUCCESS", len(pulling))]

    with sync_worker() as worker:
        assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
        assert not app.conf.task_always_eager

        # beat's incremental entry: sync_all_task() queues one sync per partner and module, the worker runs them
        sync_all_task.delay()
        wait_for(task_results, 1 + len(pulling), "the incremental sync")
        incremental = list(task_results)

        # the first partner stops listing a location; beat's nightly entry: sync_all_task(full=True)
        first.drop("LOC002")
        task_results.clear()
        sync_all_task.delay(full=True)
        wait_for(task_results, 1 + len(pulling), "the full sync")
        full = list(task_results)

        # a sync of the second partner that is (still) running: the task answers BUSY and pulls nothing
        SyncState.objects.filter(partner=second.partner).update(running_since=timezone.now())
        second.requests.clear()
        task_results.clear()
        sync_partner_task.delay(second.partner.pk, LOCATIONS.module)
        wait_for(task_results, 1, "the refused sync")
        busy = list(task_results)

    assert incremental[0] == dispatched[0]
    assert sorted(incremental[1:]) == [(sync_partner_task.name, "SUCCESS", "SUCCEEDED")] * len(pulling)
    assert full[0] == dispatched[0]
    assert sorted(full[1:]) == [(sync_partner_task.name, "SUCCESS", "SUCCEEDED")] * len(pulling)
    assert busy == [(sync_partner_task.name, "SUCCESS", "BUSY")]
    assert second.requests == []
    # every object arrived, as the partner sent it; the vanished location's EVSEs are REMOVED by the full sync
    for partner in pulling:
        stored = partner.case.stored(partner.partner)
        if partner is first:
            assert set(
                Evse.objects.filter(location__partner=first.partner, location__ocpi_id="LOC002").values_list(
                    "status", flat=True
                )
            ) == {"REMOVED"}
            stored.pop("LOC002")
        assert stored == partner.by_id()
    assert receiver_only.requests == []
    assert not SyncRun.objects.filter(partner=receiver_only.partner).exists()
    runs = SyncRun.objects.filter(partner=first.partner).order_by("started_at")
    assert [(r.kind, r.status, r.pages, r.received, r.removed) for r in runs] == [
        ("INCREMENTAL", "SUCCEEDED", 3, 9, 0),
        ("FULL", "SUCCEEDED", 2, 8, 1),
    ]
