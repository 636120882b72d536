"""Push in batches (issue #3): one task per partner sends the partner's due deliveries in order, debounced by
PartnerPushState, paused when the partner fails. Called directly here (the memory broker of the test settings
records what is enqueued); with a real worker on Redis in tests/test_push_batch_worker.py."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu import Connection

from config.celery_app import app
from locations.services import Key, evse_status_set, location_object_get, location_patch, location_put
from ocpi_core import push
from ocpi_core.models import Delivery, DeliveryAttempt, Partner, PartnerPushState, TrafficLog
from ocpi_core.push import PushModule, outbox_add, outbox_deliver_partner, outbox_sweep
from ocpi_core.traffic import traffic_log_flush
from tests.partner_server import Answer, PartnerServer, Received, location_body, receiver_partner

pytestmark = pytest.mark.usefixtures("own_parties")

TASK = "ocpi_core.tasks.outbox_deliver_partner_task"


@pytest.fixture(autouse=True)
def _push_settings(settings: Any, monkeypatch: Any) -> None:
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 10.0
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 60.0
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 3600.0
    settings.OCPI_PUSH_LEASE_SECONDS = 60.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0
    settings.OCPI_PUSH_BATCH_SIZE = 3  # several claims per run
    monkeypatch.setattr(push, "_GIVE_WAY_SECONDS", 60.0)  # however slow the machine, unless a test says otherwise


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


def _later(seconds: float = 5) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


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


@override_settings(OCPI_TRAFFIC_LOG_FLUSH_SECONDS=3600.0)  # as in production: the writer thread, not the batch
def test_a_batch_costs_a_few_statements_whatever_its_number_of_deliveries(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.OCPI_PUSH_BATCH_SIZE = 50
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    names = put_locations(24, django_capture_on_commit_callbacks)
    queued()

    with CaptureQueriesContext(connection) as queries:
        run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"DELIVERED": len(names)}
    assert sent_to(server, "a") == [("PUT", name) for name in names]
    statements = [q["sql"] for q in queries]
    # per batch: the holder's refresh, the claim (3), whether any delivery waits, the order check, the hold check
    # (per addressee), the render (render_many: one query), the results (lock, one UPDATE) with the attempt log
    # (one INSERT); per run: take, partner, endpoints, parties, the last claim, let go, the last look for due rows.
    # It was 4 per delivery (order check, render, traffic log, result) and 15 more.
    assert len(statements) <= 22, "\n".join(sql[:120] for sql in statements)
    assert sum(sql.startswith('SELECT "locations_location"') for sql in statements) == 1
    assert sum(sql.startswith('UPDATE "ocpi_core_delivery"') for sql in statements) == 2  # the claim, the results
    assert not any("ocpi_core_trafficlog" in sql for sql in statements)
    assert traffic_log_flush() == len(names)  # the calls' log rows, written by the writer thread in production
    rows = TrafficLog.objects.filter(direction=TrafficLog.Direction.OUT, partner=partner)
    assert list(rows.values_list("http_status", flat=True)) == [200] * len(names)


def test_the_results_of_a_batch_are_all_recorded_row_by_row(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.OCPI_PUSH_BATCH_SIZE = 50
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    server.rule = lambda request: Answer(400, 2001) if request.key[2] == "LOC3" else None  # refused: a dead letter
    put_locations(5, django_capture_on_commit_callbacks)
    queued()
    before = timezone.now()

    run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"DELIVERED": 4, "FAILED": 1}
    rows = list(partner.deliveries.order_by("pk"))
    assert [(row.object_path, row.status, row.attempts) for row in rows] == [
        ("LOC1", "DELIVERED", 1),
        ("LOC2", "DELIVERED", 1),
        ("LOC3", "FAILED", 1),
        ("LOC4", "DELIVERED", 1),
        ("LOC5", "DELIVERED", 1),
    ]
    delivered = [row for row in rows if row.status == "DELIVERED"]
    assert all((row.last_http_status, row.last_ocpi_status, row.lease_until) == (200, 1000, None) for row in delivered)
    assert (rows[2].last_http_status, rows[2].last_ocpi_status, rows[2].lease_until) == (400, 2001, None)
    stamps = [row.delivered_at for row in delivered]
    assert all(stamp is not None and stamp >= before for stamp in stamps)
    assert stamps == sorted(stamps)  # each one's own time, in the order they were sent
    assert len(set(stamps)) == len(stamps)
    outcomes = [(a.delivery.object_path, a.outcome, a.http_status) for a in DeliveryAttempt.objects.order_by("pk")]
    assert outcomes == [
        ("LOC1", "DELIVERED", 200),
        ("LOC2", "DELIVERED", 200),
        ("LOC3", "FAILED", 400),
        ("LOC4", "DELIVERED", 200),
        ("LOC5", "DELIVERED", 200),
    ]


@pytest.mark.parametrize("render_many_fails", [False, True])
def test_a_batch_renders_each_modules_objects_together_or_else_one_by_one(
    server: PartnerServer,
    queued: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    monkeypatch: Any,
    render_many_fails: bool,
) -> None:
    settings.OCPI_PUSH_BATCH_SIZE = 50
    calls: list[tuple[str, list[str]]] = []

    def render(**item: Any) -> dict[str, Any]:
        calls.append(("render", [item["object_path"]]))
        return {"id": item["object_path"]}

    def render_many(*, items: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        calls.append(("render_many", [item["object_path"] for item in items]))
        if render_many_fails:
            raise RuntimeError("a bug in render_many")
        return [{"id": item["object_path"]} for item in items]

    widgets = PushModule(module="widgets", receiver_roles=("EMSP",), render=render, render_many=render_many)
    monkeypatch.setitem(push._MODULES, "widgets", widgets)
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    partner.endpoints.create(identifier="widgets", role="RECEIVER", url=f"{server.url}/a/ocpi/2.2.1/widgets")
    server.rule = lambda request: Answer(200) if "/widgets/" in request.path else None
    for name in ("LOC1", "LOC2"):  # the modules take turns in the batch
        with django_capture_on_commit_callbacks(execute=True):
            location_put(partner=None, key=Key("NL", "OWN", name), data=location_body(name))
        with django_capture_on_commit_callbacks(execute=True):
            outbox_add(module="widgets", country_code="NL", party_id="OWN", object_path=f"W{name[-1]}", method="PUT")
    queued()

    with CaptureQueriesContext(connection) as queries:
        run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert run.outcomes == {"DELIVERED": 4}
    assert [(r.method, r.path.rsplit("/", 2)[-2:]) for r in server.requests()] == [
        ("PUT", ["OWN", "LOC1"]),
        ("PUT", ["OWN", "W1"]),
        ("PUT", ["OWN", "LOC2"]),
        ("PUT", ["OWN", "W2"]),
    ]
    assert [r.body["id"] for r in server.requests()] == ["LOC1", "W1", "LOC2", "W2"]
    if render_many_fails:
        assert calls == [("render_many", ["W1", "W2"]), ("render", ["W1"]), ("render", ["W2"])]
    else:
        assert calls == [("render_many", ["W1", "W2"])]
    assert sum(q["sql"].startswith('SELECT "locations_location"') for q in queries) == 1  # both locations


def test_two_changes_of_one_object_in_a_batch_send_its_newest_state_once(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    put_locations(1, django_capture_on_commit_callbacks)
    older = Delivery.objects.get()
    # its worker died while sending it: still IN_FLIGHT, so the next change of the object does not supersede it
    gone = timezone.now() - timedelta(seconds=1)
    Delivery.objects.filter(pk=older.pk).update(status="IN_FLIGHT", attempts=1, lease_until=gone)
    with django_capture_on_commit_callbacks(execute=True):
        location_patch(partner=None, key=Key("NL", "OWN", "LOC1"), data={"name": "Renamed", "last_updated": _later()})
    newer = Delivery.objects.get(status="PENDING")
    assert newer.method == "PATCH"
    queued()

    run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    [request] = server.requests()
    assert (request.method, request.key[2], request.body["name"]) == ("PUT", "LOC1", "Renamed")  # whole: PUT wins
    assert server.locations[("NL", "OWN", "LOC1")] == location_object_get(key=Key("NL", "OWN", "LOC1"), partner=None)
    assert run.outcomes == {"SUPERSEDED": 1, "DELIVERED": 1}
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, older.superseded_by_id, older.lease_until) == ("SUPERSEDED", newer.pk, None)
    assert (newer.status, newer.method, newer.fields) == ("DELIVERED", "PUT", [])
    assert list(older.attempt_log.values_list("outcome", flat=True)) == ["LOST"]  # its dead worker's attempt
    assert list(newer.attempt_log.values_list("method", "outcome")) == [("PUT", "DELIVERED")]


def test_a_patch_that_becomes_a_put_holds_back_the_next_change_below_it_in_the_same_batch(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.OCPI_PUSH_BATCH_SIZE = 50
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    evses = (("EVSE1", "AVAILABLE"), ("EVSE2", "AVAILABLE"))
    with django_capture_on_commit_callbacks(execute=True):
        location_put(partner=None, key=Key("NL", "OWN", "LOC1"), data=location_body("LOC1", evses=evses))
    Delivery.objects.update(status="DELIVERED")  # sent once; the partner has lost it since
    for uid in ("EVSE1", "EVSE2"):
        with django_capture_on_commit_callbacks(execute=True):
            evse_status_set(key=Key("NL", "OWN", "LOC1", uid), status="CHARGING")
    queued()

    run = outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    # the first PATCH is answered 404 and becomes a PUT of the location: the second PATCH, in the same batch,
    # waits for it (it would be answered 404 too), and goes once the PUT is through
    assert [(r.method, "/".join(r.key[2:]), r.answered) for r in server.requests()] == [
        ("PATCH", "LOC1/EVSE1", 404),
        ("PUT", "LOC1", 200),
        ("PATCH", "LOC1/EVSE2", 200),
    ]
    assert run.status == "DONE"
    assert set(partner.deliveries.values_list("status", flat=True)) == {"DELIVERED"}
    assert server.locations[("NL", "OWN", "LOC1")] == location_object_get(key=Key("NL", "OWN", "LOC1"), partner=None)


def test_a_worker_that_dies_before_writing_a_batchs_results_loses_nothing(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    names = put_locations(3, django_capture_on_commit_callbacks)
    queued()

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("the worker is killed after the calls, before their results are written")

    with monkeypatch.context() as patched:
        patched.setattr(push, "_write_results", killed)
        with pytest.raises(SystemExit):
            outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner))

    assert sent_to(server, "a") == [("PUT", name) for name in names]
    rows = partner.deliveries.order_by("pk")
    assert set(rows.values_list("status", flat=True)) == {"IN_FLIGHT"}  # not marked before: never wrongly
    holder = holder_of(partner)  # its task's message goes to another worker (acks_late), with the same holder
    assert outbox_deliver_partner(partner_id=partner.pk, holder=holder).status == "DONE"
    assert len(sent_to(server, "a")) == 3  # a live lease: nothing is sent again

    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # the lease runs out
    assert outbox_deliver_partner(partner_id=partner.pk).status == "DONE"  # the sweep's task, or a timer

    assert sent_to(server, "a") == [("PUT", name) for name in names] * 2  # the same objects, as they are now
    assert list(rows.values_list("status", "attempts")) == [("DELIVERED", 2)] * 3
    for row in rows:
        assert list(row.attempt_log.order_by("pk").values_list("outcome", flat=True)) == ["LOST", "DELIVERED"]


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


def test_a_429_asking_for_year_9999_pauses_the_partner_for_the_retry_window(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # the pause's end, 9999-12-31T23:59:59, plus the lease overflowed (OverflowError in the batch task)
    partner = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    server.plan(Answer(429, 2000, retry_after="Fri, 31 Dec 9999 23:59:59 GMT"))
    put_locations(3, django_capture_on_commit_callbacks)
    queued()

    assert outbox_deliver_partner(partner_id=partner.pk, holder=holder_of(partner)).status == "PAUSED"

    state = PartnerPushState.objects.get(partner=partner)
    assert state.paused_until is not None
    assert timedelta(seconds=3599) <= state.paused_until - timezone.now() <= timedelta(seconds=3601)
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
    assert list(second.attempt_log.values_list("outcome", flat=True)) == ["LOST"]
    first = Delivery.objects.get(object_path="LOC1")
    assert (first.status, first.last_http_status, first.lease_until) == ("DELIVERED", 200, None)


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


def test_a_task_gives_way_after_a_batch_when_another_partners_task_waits_for_a_worker(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(push, "_GIVE_WAY_SECONDS", 0.0)
    a = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    b = receiver_partner(server.endpoint("b"), name="b", party=("DE", "BBB"))
    names = put_locations(5, django_capture_on_commit_callbacks)  # batches of 3
    tasks = {args[0]: args[1] for _, args, _ in queued()}  # both queued; one worker process runs a's first

    assert outbox_deliver_partner(partner_id=a.pk, holder=tasks[a.pk]).status == "CONTINUED"

    assert sent_to(server, "a") == [("PUT", name) for name in names[:3]]  # one batch: then b's turn
    [(task, (partner_id, holder), eta)] = queued()  # a goes on from the back of the queue, still holding the partner
    assert (task, partner_id, holder, eta) == (TASK, a.pk, tasks[a.pk], None)
    assert holder_of(a) == tasks[a.pk]
    assert outbox_deliver_partner(partner_id=b.pk, holder=tasks[b.pk]).status == "CONTINUED"  # a waits now
    assert sent_to(server, "b") == [("PUT", name) for name in names[:3]]
    assert outbox_deliver_partner(partner_id=a.pk, holder=holder).status == "DONE"
    assert sent_to(server, "a") == [("PUT", name) for name in names]
    [(_, (partner_id, holder), _)] = queued()
    assert outbox_deliver_partner(partner_id=partner_id, holder=holder).status == "DONE"
    assert sent_to(server, "b") == [("PUT", name) for name in names]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"DELIVERED"}
    assert queued() == []


def test_a_task_keeps_its_turn_while_no_other_partners_task_waits_for_a_worker(
    server: PartnerServer, queued: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(push, "_GIVE_WAY_SECONDS", 0.0)
    a = receiver_partner(server.endpoint("a"), name="a", party=("DE", "AAA"))
    b = receiver_partner(server.endpoint("b"), name="b", party=("DE", "BBB"))
    names = put_locations(7, django_capture_on_commit_callbacks)  # batches of 3
    queued()
    # b failed: its task waits for the end of b's pause, not for a worker process
    PartnerPushState.objects.filter(partner=b).update(paused_until=timezone.now() + timedelta(seconds=60))

    assert outbox_deliver_partner(partner_id=a.pk, holder=holder_of(a)).status == "DONE"

    assert sent_to(server, "a") == [("PUT", name) for name in names]
    assert queued() == []


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
