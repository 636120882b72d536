"""Push in batches with a real Celery worker consuming from a real Redis (issue #3): a burst of changes is sent by one
task per partner, in order; a failing partner is paused without holding up another. Fixtures and helpers are those
of tests/test_push_worker.py."""

from collections.abc import Iterator
from typing import Any

import pytest
from celery import signals

from locations.services import Key, location_put
from ocpi_core.models import Delivery, DeliveryAttempt, PartnerPushState
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from tests.partner_server import Answer, PartnerServer, location_body, receiver_partner
from tests.test_push_worker import (  # noqa: F401  (fixtures)
    _fast_push,
    _sqlite_waits_for_locks,
    delivered,
    hanging,
    push_worker,
    wait_until,
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_parties", "redis_broker"),
]

PARTNER_TASK = "ocpi_core.tasks.outbox_deliver_partner_task"
SINGLE_TASK = "ocpi_core.tasks.outbox_deliver_task"


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    partner_server = PartnerServer().start()
    yield partner_server
    partner_server.stop()


@pytest.fixture
def task_runs() -> Iterator[list[tuple[str, Any, Any]]]:
    """(task name, args, return value) of every task the worker finished."""
    runs: list[tuple[str, Any, Any]] = []

    def on_postrun(sender: Any = None, args: Any = None, retval: Any = None, **kwargs: Any) -> None:
        if sender is not None:
            runs.append((sender.name, list(args or ()), retval))

    signals.task_postrun.connect(on_postrun, weak=False)
    yield runs
    signals.task_postrun.disconnect(on_postrun)


def put(name: str) -> None:
    location_put(partner=None, key=Key("NL", "OWN", name), data=location_body(name))


def paths(server: PartnerServer, partner: str) -> list[tuple[str, str, int]]:
    return [(r.method, "/".join(r.key[2:]), r.answered) for r in server.requests() if r.path.startswith(f"/{partner}/")]


def test_a_burst_of_changes_is_sent_in_order_by_one_task_per_partner(
    server: PartnerServer, task_runs: list[tuple[str, Any, Any]]
) -> None:
    a = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    b = receiver_partner(server.endpoint("b"), name="b", party=("DE", "BBB"))
    names = [f"LOC{i}" for i in range(1, 13)]
    for name in names:  # 12 committed changes, 24 deliveries, before any worker runs
        put(name)

    with push_worker():
        wait_until(delivered(24), "every change reached both partners")

        # a burst while the task is busy with the partner: the same task sends it too
        server.plan(Answer(200, hang=True))
        put("LOC13")
        server.wait_for(hanging)
        for name in ("LOC14", "LOC15", "LOC16"):
            put(name)
        server.release()
        wait_until(delivered(32), "the second burst reached both partners")

    for partner in ("a", "b"):
        assert paths(server, partner) == [("PUT", f"LOC{i}", 200) for i in range(1, 17)]
    assert not any(name == SINGLE_TASK for name, _, _ in task_runs)
    first_burst = [args[0] for name, args, _ in task_runs[:2]]
    assert sorted(first_burst) == sorted([a.pk, b.pk])  # one task per partner for 12 changes each
    partner_runs = [args[0] for name, args, status in task_runs if name == PARTNER_TASK and status != "BUSY"]
    assert len(partner_runs) <= 6, task_runs  # 32 deliveries; a task per delivery before
    assert DeliveryAttempt.objects.count() == 32
    assert set(PartnerPushState.objects.values_list("holder", flat=True)) == {""}  # both free again


def test_a_failing_partner_is_paused_and_does_not_hold_up_another(
    server: PartnerServer, task_runs: list[tuple[str, Any, Any]]
) -> None:
    failing = receiver_partner(server.endpoint("failing"), name="failing", party=("DE", "AAA"))
    receiver_partner(server.endpoint("healthy"), name="healthy", party=("DE", "BBB"))
    server.rule = lambda request: Answer(503, 3000) if request.path.startswith("/failing/") else None
    names = [f"LOC{i}" for i in range(1, 6)]

    with push_worker():
        for name in names:
            put(name)
        wait_until(lambda: len(paths(server, "failing")) >= 3, "three attempts at the failing partner")
        wait_until(lambda: len(paths(server, "healthy")) == 5, "the healthy partner got everything")
        # the failing partner's batch stopped at its first delivery: the others were not tried
        assert {(m, path) for m, path, _ in paths(server, "failing")} == {("PUT", "LOC1")}
        assert PartnerPushState.objects.get(partner=failing).paused_until is not None

        server.rule = None  # the partner is back
        wait_until(delivered(10), "everything reached the partner that failed, after its pause")

    failed_then = paths(server, "failing")
    tries = len(failed_then) - 5
    assert failed_then == [("PUT", "LOC1", 503)] * tries + [("PUT", name, 200) for name in names]
    assert paths(server, "healthy") == [("PUT", name, 200) for name in names]
    statuses = {status for name, _, status in task_runs if name == PARTNER_TASK}
    assert "PAUSED" in statuses
    assert Delivery.objects.filter(status="DELIVERED").count() == 10
    # only the first delivery was tried while the partner failed: the others were given back untried each time
    attempts = dict(failing.deliveries.values_list("object_path", "attempts"))
    assert attempts == {"LOC1": tries + 1, "LOC2": 1, "LOC3": 1, "LOC4": 1, "LOC5": 1}
