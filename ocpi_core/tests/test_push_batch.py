"""Push in batches (issue #3): one task per partner sends the partner's due deliveries in order, debounced by
PartnerPushState, paused when the partner fails. Called directly here (the memory broker of the test settings
records what is enqueued); with a real worker on Redis in tests/test_push_batch_worker.py."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu import Connection

from config.celery_app import app
from locations.services import Key, evse_status_set, location_put
from ocpi_core.models import Delivery, DeliveryAttempt, Partner, PartnerPushState
from ocpi_core.push import outbox_deliver_partner, outbox_sweep
from tests.partner_server import Answer, PartnerServer, Received, location_body, receiver_partner

pytestmark = pytest.mark.usefixtures("own_parties")

TASK = "ocpi_core.tasks.outbox_deliver_partner_task"


@pytest.fixture(autouse=True)
def _push_settings(settings: Any) -> None:
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 10.0
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 60.0
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 3600.0
    settings.OCPI_PUSH_LEASE_SECONDS = 60.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0
    settings.OCPI_PUSH_BATCH_SIZE = 3  # several claims per run


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    partner_server = PartnerServer().start()
    yield partner_server
    partner_server.stop()


@pytest.fixture
def queued() -> Iterator[Any]:
    """Drains the memory broker's push queue: [(task name, args, countdown or None)]."""
    assert app.conf.broker_url.startswith("memory://")
    with Connection(app.conf.broker_url) as conn:
        queue = conn.SimpleQueue("push")

        def drain() -> list[tuple[str, list[Any], Any]]:
            found = []
            while queue.qsize():
                message = queue.get(timeout=1)
                message.ack()
                found.append((message.headers["task"], message.payload[0], message.headers.get("eta")))
            return found

        drain()
        yield drain
        queue.close()


def put_locations(count: int, capture: Any) -> list[str]:
    names = [f"LOC{i}" for i in range(1, count + 1)]
    for name in names:
        with capture(execute=True):  # each change commits on its own, as a web request would
            location_put(partner=None, key=Key("NL", "OWN", name), data=location_body(name))
    return names


def sent_to(server: PartnerServer, name: str) -> list[tuple[str, str]]:
    return [(r.method, "/".join(r.key[2:])) for r in server.requests() if r.path.startswith(f"/{name}/")]


def holder_of(partner: Partner) -> str:
    return PartnerPushState.objects.get(partner=partner).holder


def test_many_changes_make_one_task_per_partner_which_sends_them_all_in_order(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    a = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    b = receiver_partner(server.endpoint("b"), name="b", party=("DE", "BBB"))

    names = put_locations(8, django_capture_on_commit_callbacks)

    tasks = queued()
    assert sorted((task, args[0]) for task, args, _ in tasks) == [(TASK, a.pk), (TASK, b.pk)]  # not 16
    for _, (partner_id, holder), _ in tasks:
        assert PartnerPushState.objects.get(partner_id=partner_id).holder == holder
        assert outbox_deliver_partner(partner_id=partner_id, holder=holder).status == "DONE"

    assert sent_to(server, "a") == sent_to(server, "b") == [("PUT", name) for name in names]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"DELIVERED"}
    assert DeliveryAttempt.objects.filter(outcome="DELIVERED").count() == 16
    assert queued() == []  # nothing due: no timer, no follow-up task
    # the partners are free again: the next change enqueues a task again
    assert set(PartnerPushState.objects.values_list("holder", flat=True)) == {""}
    with django_capture_on_commit_callbacks(execute=True):
        evse_status_set(key=Key("NL", "OWN", "LOC1", "EVSE1"), status="CHARGING")
    assert sorted(args[0] for _, args, _ in queued()) == [a.pk, b.pk]


def test_a_batch_costs_few_statements_per_delivery(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.OCPI_PUSH_BATCH_SIZE = 50
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    names = put_locations(12, django_capture_on_commit_callbacks)
    queued()

    with CaptureQueriesContext(connection) as queries:
        run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"DELIVERED": len(names)}
    assert sent_to(server, "a") == [("PUT", name) for name in names]
    # per delivery: the order check, the render, the traffic log (unbatched in tests), the result (it was 11); per
    # batch: the claim (3), whether any delivery waits, the hold check (per addressee), the attempt log (one INSERT),
    # the holder's refresh; per run: take, partner, endpoints, parties, let go, the last look for due rows
    assert len(queries) <= 4 * len(names) + 15, "\n".join(q["sql"][:120] for q in queries)


def test_a_failing_partner_pauses_its_own_batch_only(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    failing = receiver_partner(server.endpoint("failing"), name="failing", party=("DE", "AAA"))
    healthy = receiver_partner(server.endpoint("healthy"), name="healthy", party=("DE", "BBB"))
    server.rule = lambda request: Answer(503, 3000) if request.path.startswith("/failing/") else None
    put_locations(5, django_capture_on_commit_callbacks)
    queued()

    run = outbox_deliver_partner(partner_id=failing.pk, holder=holder_of(failing))

    assert run.status == "PAUSED"
    assert sent_to(server, "failing") == [("PUT", "LOC1")]  # the rest of the batch was not sent
    rows = list(failing.deliveries.order_by("pk").values_list("status", "attempts"))
    assert rows == [("PENDING", 1)] + [("PENDING", 0)] * 4  # given back untried: not attempts
    state = PartnerPushState.objects.get(partner=failing)
    assert state.paused_until is not None
    assert state.paused_until >= timezone.now() + timedelta(seconds=9)  # the backoff (base 10 s)
    [(task, (partner_id, holder), eta)] = queued()  # the same task goes on after the pause, still holding it
    assert (task, partner_id, holder) == (TASK, failing.pk, state.holder)
    assert eta is not None

    # meanwhile: the healthy partner gets everything, and changes for the paused one start no task
    assert outbox_deliver_partner(partner_id=healthy.pk, holder=holder_of(healthy)).status == "DONE"
    assert sent_to(server, "healthy") == [("PUT", f"LOC{i}") for i in range(1, 6)]
    with django_capture_on_commit_callbacks(execute=True):
        evse_status_set(key=Key("NL", "OWN", "LOC5", "EVSE1"), status="CHARGING")
    assert [args[0] for _, args, _ in queued()] == [healthy.pk]
    assert outbox_deliver_partner(partner_id=failing.pk).status == "BUSY"  # a timer during the pause
    assert outbox_deliver_partner(partner_id=failing.pk, holder=state.holder).status == "PAUSED"  # a bit early
    queued()

    # the pause is over and the partner is back: its task sends all, in order
    server.rule = None
    PartnerPushState.objects.filter(partner=failing).update(paused_until=timezone.now())
    Delivery.objects.filter(partner=failing, status="PENDING").update(next_attempt_at=timezone.now())
    assert outbox_deliver_partner(partner_id=failing.pk, holder=state.holder).status == "DONE"
    assert sent_to(server, "failing") == [("PUT", "LOC1")] + [("PUT", f"LOC{i}") for i in range(1, 6)] + [
        ("PATCH", "LOC5/EVSE1")  # after its location's PUT
    ]
    delivered = failing.deliveries.exclude(status="SUPERSEDED")
    assert set(delivered.values_list("status", flat=True)) == {"DELIVERED"}


def test_429_pauses_the_partner_for_the_time_it_asks(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    server.plan(Answer(429, 2000, retry_after="30"))
    put_locations(3, django_capture_on_commit_callbacks)
    queued()

    assert outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner)).status == "PAUSED"

    state = PartnerPushState.objects.get(partner=partner)
    assert state.paused_until is not None
    assert timedelta(seconds=29) <= state.paused_until - timezone.now() <= timedelta(seconds=31)
    first = partner.deliveries.order_by("pk").first()
    assert first is not None
    assert first.next_attempt_at >= timezone.now() + timedelta(seconds=29)
    assert len(server.requests()) == 1


def test_a_batch_keeps_the_order_of_an_object_and_its_parent(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    put_locations(1, django_capture_on_commit_callbacks)
    put = Delivery.objects.get()
    lease = timezone.now() + timedelta(seconds=60)
    Delivery.objects.filter(pk=put.pk).update(status="IN_FLIGHT", attempts=1, lease_until=lease)  # another worker
    with django_capture_on_commit_callbacks(execute=True):
        evse_status_set(key=Key("NL", "OWN", "LOC1", "EVSE1"), status="CHARGING")
    queued()

    run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"PENDING": 1}  # the EVSE's PATCH waits for its location's PUT
    assert server.requests() == []
    put.refresh_from_db()
    assert (put.status, put.attempts, put.lease_until) == ("IN_FLIGHT", 1, lease)  # a live lease is not taken
    [(task, (partner_id, holder), eta)] = queued()  # a timer looks again after the order delay
    assert (task, partner_id, holder) == (TASK, partner.pk, None)
    assert eta is not None

    # the other worker died: its lease runs out, the batch takes the PUT over and sends it before the PATCH
    Delivery.objects.filter(pk=put.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    Delivery.objects.filter(status="PENDING").update(next_attempt_at=timezone.now())
    assert outbox_deliver_partner(partner_id=partner.pk).status == "DONE"  # the timer: the partner is free now

    assert sent_to(server, "a") == [("PUT", "LOC1"), ("PATCH", "LOC1/EVSE1")]
    put.refresh_from_db()
    assert (put.status, put.attempts) == ("DELIVERED", 2)
    assert list(put.attempt_log.order_by("pk").values_list("outcome", flat=True)) == ["LOST", "DELIVERED"]


@pytest.mark.django_db(transaction=True)  # the partner's server thread writes through its own connection
def test_a_batch_that_lost_a_lease_does_not_overwrite_the_new_holder(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    put_locations(2, django_capture_on_commit_callbacks)
    queued()
    second = Delivery.objects.get(object_path="LOC2")
    taken = timezone.now() + timedelta(seconds=60)

    def take_over(request: Received) -> Answer | None:
        if request.key[2] == "LOC1":  # while LOC1 is with the partner, another worker takes LOC2 over
            Delivery.objects.filter(pk=second.pk).update(attempts=7, lease_until=taken, status="IN_FLIGHT")
        return None

    server.rule = take_over
    run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"DELIVERED": 1, "LOST": 1}
    second.refresh_from_db()
    assert (second.status, second.attempts, second.lease_until) == ("IN_FLIGHT", 7, taken)


@pytest.mark.django_db(transaction=True)  # the change is made by the partner's server thread, on its own connection
def test_a_change_while_the_task_holds_the_partner_is_sent_by_that_task(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    put_locations(1, django_capture_on_commit_callbacks)
    [(_, (_, holder), _)] = queued()

    def change_during_the_request(request: Received) -> Answer | None:
        if request.key[2] == "LOC1" and not Delivery.objects.filter(object_path="LOC2").exists():
            location_put(partner=None, key=Key("NL", "OWN", "LOC2"), data=location_body("LOC2"))
        return None

    server.rule = change_during_the_request
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_deliver_partner(partner_id=partner.pk, holder=holder).status == "DONE"

    assert sent_to(server, "a") == [("PUT", "LOC1"), ("PUT", "LOC2")]
    assert queued() == []  # the new change found the partner held: no second task


def test_the_sweep_wakes_a_partner_whose_task_is_lost_but_not_one_that_runs(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 30.0
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    put_locations(1, django_capture_on_commit_callbacks)
    queued()  # the task's message is lost (Redis lost it, its worker died)
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=40))  # overdue
    PartnerPushState.objects.update(queued_until=timezone.now() + timedelta(seconds=55))  # refreshed 5 s ago

    assert outbox_sweep() == 1
    assert queued() == []  # its holder showed life within the grace time: it is running

    PartnerPushState.objects.update(queued_until=timezone.now() + timedelta(seconds=20))  # 40 s without life
    assert outbox_sweep() == 1
    [(task, (partner_id, holder), _)] = queued()
    assert (task, partner_id, holder) == (TASK, partner.pk, holder_of(partner))
    assert outbox_deliver_partner(partner_id=partner.pk, holder=holder).status == "DONE"
    assert sent_to(server, "a") == [("PUT", "LOC1")]
