"""Push end to end: own locations changed through the services, delivered by a real Celery worker consuming from a
real Redis to partners served by local HTTP servers (tests/partner_server.py). The clocks are never asserted on,
except that a retry does not come before the time it was due (arrival times recorded by the partner)."""

import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import OperationalError, connection, transaction
from django.db.backends.signals import connection_created
from django.utils import timezone

from config.celery_app import app
from conftest import REPO
from locations.services import Key, evse_status_set, location_object_get, location_patch, location_put
from ocpi_core.models import Delivery, DeliveryAttempt, Partner
from ocpi_core.push import outbox_resend, outbox_sweep
from ocpi_core.tasks import outbox_sweep_task
from ocpi_core.tests.test_tasks import REDIS_URL, _drop_broker_pools, redis_broker  # noqa: F401  (redis_broker: a fixture)
from tests.partner_server import Answer, PartnerServer, Received, location_body, receiver_partner

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_parties", "redis_broker"),
]

LOC1 = Key("NL", "OWN", "LOC1")
EVSE1 = Key("NL", "OWN", "LOC1", "EVSE1")
WAIT = 30.0


@pytest.fixture(autouse=True)
def _fast_push(settings: Any) -> None:
    """Retries in fractions of a second. The worker runs in a thread of this process: it sees these settings."""
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 0.2
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 2.0
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 120.0
    settings.OCPI_PUSH_LEASE_SECONDS = 30.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0
    settings.OCPI_PUSH_ORDER_DELAY_SECONDS = 0.2


@pytest.fixture(autouse=True)
def _sqlite_waits_for_locks() -> Iterator[None]:
    """On SQLite the test database lives in memory, shared by this thread and the worker's with table locks SQLite
    does not wait for (a file database, as the embedded default uses, waits: its busy timeout). Make statements that
    met such a lock wait and try again, as they would on a file. PostgreSQL needs nothing."""
    if connection.vendor != "sqlite":
        yield
        return

    def retry_locked(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        deadline = time.monotonic() + 10
        while True:
            try:
                return execute(sql, params, many, context)
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def install(sender: Any = None, connection: Any = connection, **kwargs: Any) -> None:
        if retry_locked not in connection.execute_wrappers:
            connection.execute_wrappers.append(retry_locked)

    connection_created.connect(install, weak=False)
    install()
    yield
    connection_created.disconnect(install)
    connection.execute_wrappers.remove(retry_locked)


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    partner_server = PartnerServer().start()
    yield partner_server
    partner_server.stop()


@pytest.fixture
def partner(server: PartnerServer) -> Partner:
    return receiver_partner(server.endpoint())


@contextmanager
def push_worker() -> Iterator[Any]:
    """A real Celery worker consuming the push queue from Redis (the `redis_broker` fixture points the app there)."""
    with start_worker(app, pool="solo", queues=["push"], perform_ping_check=False, shutdown_timeout=30) as worker:
        assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
        yield worker


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            rows = list(Delivery.objects.values_list("pk", "object_path", "method", "status", "attempts", "last_error"))
            pytest.fail(f"{what}: not within {timeout} s; deliveries: {rows}")
        time.sleep(0.05)


def delivered(count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        return Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() >= count and not (
            Delivery.objects.filter(status__in=Delivery.OPEN).exists()
        )

    return check


def hanging(requests: list[Received]) -> bool:
    return any(r.answered == 0 for r in requests)


def calls(server: PartnerServer) -> list[tuple[str, str, int]]:
    """(method, object path, HTTP status answered) of every request the partner got."""
    return [(r.method, "/".join(r.key[2:]), r.answered) for r in server.requests()]


def ours(key: Key = LOC1) -> dict[str, Any]:
    return location_object_get(key=key, partner=None)


def later(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# --- the happy path and who gets it ---


def test_a_change_reaches_registered_receiving_partners_only(server: PartnerServer) -> None:
    receiving = receiver_partner(server.endpoint("receives"), name="receives", party=("DE", "AAA"))
    receiver_partner(server.endpoint("sender-only"), name="sender-only", party=("DE", "BBB"), receiver=False)
    receiver_partner(server.endpoint("suspended"), name="suspended", party=("DE", "CCC"), status="SUSPENDED")
    receiver_partner(server.endpoint("gone"), name="gone", party=("DE", "DDD"), status="UNREGISTERED")
    receiver_partner(server.endpoint("push-off"), name="push-off", party=("DE", "EEE"), push_enabled=False)

    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        as_put = ours()
        wait_until(delivered(1), "the location PUT reached the partner")
        evse_status_set(key=EVSE1, status="CHARGING")
        wait_until(delivered(2), "the status PATCH reached the partner")

    put, patch = server.requests()
    assert (put.method, put.path, put.answered) == ("PUT", "/receives/ocpi/2.2.1/locations/NL/OWN/LOC1", 200)
    assert put.body == as_put
    assert (patch.method, patch.path) == ("PATCH", "/receives/ocpi/2.2.1/locations/NL/OWN/LOC1/EVSE1")
    assert patch.body == {"status": "CHARGING", "last_updated": ours(EVSE1)["last_updated"]}
    for request in (put, patch):
        assert request.headers["Authorization"] == "Token " + _b64(receiving.token_out())
        assert (request.headers["OCPI-from-country-code"], request.headers["OCPI-from-party-id"]) == ("NL", "OWN")
        assert (request.headers["OCPI-to-country-code"], request.headers["OCPI-to-party-id"]) == ("DE", "AAA")
    assert set(Delivery.objects.values_list("partner__name", flat=True)) == {"receives"}
    assert server.locations[("NL", "OWN", "LOC1")] == ours()  # the partner's copy is ours


def _b64(token: str) -> str:
    import base64

    return base64.b64encode(token.encode()).decode()


def test_a_rolled_back_change_is_never_delivered(server: PartnerServer, partner: Partner) -> None:
    def change_then_fail() -> None:
        with transaction.atomic():
            location_put(partner=None, key=Key("NL", "OWN", "GHOST"), data=location_body("GHOST"))
            raise RuntimeError("the caller fails after the change")

    with push_worker():
        with pytest.raises(RuntimeError):
            change_then_fail()
        location_put(partner=None, key=LOC1, data=location_body())  # a later change: delivered (FIFO after any)
        wait_until(delivered(1), "the committed change was delivered")

    assert calls(server) == [("PUT", "LOC1", 200)]
    assert list(Delivery.objects.values_list("object_path", flat=True)) == ["LOC1"]


# --- retries ---


def test_a_partner_down_then_back_gets_the_change(server: PartnerServer, partner: Partner) -> None:
    server.stop()
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(lambda: DeliveryAttempt.objects.count() >= 3, "three failed attempts at the partner down")
        server.start()
        wait_until(delivered(), "delivered once the partner is back")

    delivery = Delivery.objects.get()
    log = list(delivery.attempt_log.order_by("pk"))
    assert len(log) == delivery.attempts >= 4
    assert [a.outcome for a in log] == ["RETRY"] * (len(log) - 1) + ["DELIVERED"]
    for attempt in log[:-1]:
        assert attempt.http_status is None
        assert "cannot reach" in attempt.error
    assert calls(server) == [("PUT", "LOC1", 200)]
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


def test_5xx_answers_are_retried_with_growing_delays(server: PartnerServer, partner: Partner, settings: Any) -> None:
    server.plan(Answer(503, 3000), Answer(502, 3000), Answer(500, 3000))
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(delivered(), "delivered after three 5xx")

    assert calls(server) == [("PUT", "LOC1", 503), ("PUT", "LOC1", 502), ("PUT", "LOC1", 500), ("PUT", "LOC1", 200)]
    arrivals = [r.at for r in server.requests()]
    base = settings.OCPI_PUSH_RETRY_BASE_SECONDS
    for index, (earlier, later_) in enumerate(itertools.pairwise(arrivals)):
        assert later_ - earlier >= timedelta(seconds=base * 2**index)  # not before its backoff: 0.2, 0.4, 0.8 s
    delivery = Delivery.objects.get()
    assert list(delivery.attempt_log.order_by("pk").values_list("http_status", "outcome")) == [
        (503, "RETRY"),
        (502, "RETRY"),
        (500, "RETRY"),
        (200, "DELIVERED"),
    ]


def test_429_retry_after_is_honoured(server: PartnerServer, partner: Partner) -> None:
    server.plan(Answer(429, 2000, retry_after="1"))  # 1 s, five times our backoff base
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(delivered(), "delivered after the 429")

    first, second = server.requests()
    assert (first.answered, second.answered) == (429, 200)
    assert second.at - first.at >= timedelta(seconds=1)


@pytest.mark.parametrize(("http", "ocpi"), [(400, 2001), (200, 2001)])
def test_a_refused_change_is_a_dead_letter_until_resent(
    server: PartnerServer, partner: Partner, http: int, ocpi: int
) -> None:
    server.plan(Answer(http, ocpi))
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.FAILED).exists(), "a dead letter")
        delivery = Delivery.objects.get()
        assert (delivery.attempts, delivery.last_http_status, delivery.last_ocpi_status) == (1, http, ocpi)
        assert str(ocpi) in delivery.last_error
        assert outbox_sweep() == 0  # not retried
        assert calls(server) == [("PUT", "LOC1", http)]

        assert outbox_resend(deliveries=[delivery]) == 1  # the admin's "resend now"
        wait_until(delivered(), "delivered after the resend")

    assert calls(server) == [("PUT", "LOC1", http), ("PUT", "LOC1", 200)]
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


def test_retries_stop_after_the_window(server: PartnerServer, partner: Partner, settings: Any) -> None:
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 1.0
    server.rule = lambda request: Answer(503, 3000)
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.FAILED).exists(), "a dead letter")

    delivery = Delivery.objects.get()
    assert delivery.last_error.startswith(f"Gave up after {delivery.attempts} attempts")
    assert delivery.attempts >= 2
    outcomes = list(delivery.attempt_log.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["RETRY"] * (delivery.attempts - 1) + ["FAILED"]
    assert len(server.requests()) == delivery.attempts
    assert outbox_sweep() == 0


# --- crashes and outages ---


def test_a_delivery_held_by_a_dead_worker_is_delivered_after_the_sweep(server: PartnerServer, partner: Partner) -> None:
    location_put(partner=None, key=LOC1, data=location_body())
    with app.connection_for_write() as conn:  # the message died with the worker that had taken it
        conn.default_channel.queue_purge("push")  # type: ignore[attr-defined]
    Delivery.objects.update(
        status=Delivery.Status.IN_FLIGHT, attempts=1, lease_until=timezone.now() - timedelta(seconds=1)
    )

    with push_worker():
        outbox_sweep_task.delay()  # what beat runs every minute
        wait_until(delivered(), "delivered after the sweep")

    delivery = Delivery.objects.get()
    assert delivery.attempts == 2
    assert list(delivery.attempt_log.order_by("pk").values_list("outcome", flat=True)) == ["LOST", "DELIVERED"]
    assert calls(server) == [("PUT", "LOC1", 200)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_change_committed_while_redis_is_down_is_delivered_by_the_sweep(
    server: PartnerServer, partner: Partner, caplog: pytest.LogCaptureFixture
) -> None:
    app.conf.update(broker_url=f"redis://127.0.0.1:{_closed_port()}/0")  # the broker is down at commit time
    _drop_broker_pools()
    with caplog.at_level(logging.WARNING, logger="ocpi_core.push"):
        location_put(partner=None, key=LOC1, data=location_body())  # the caller does not notice
    assert "Could not enqueue" in caplog.text
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("PENDING", 0)

    app.conf.update(broker_url=REDIS_URL)  # Redis is back
    _drop_broker_pools()
    with push_worker():
        outbox_sweep_task.delay()
        wait_until(delivered(), "delivered after the sweep")

    assert calls(server) == [("PUT", "LOC1", 200)]


def _database_url() -> str:
    conf = connection.settings_dict
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf.get("PASSWORD") else "")
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


_WORKER = """
import os, django
django.setup()
from config.celery_app import app
app.conf.update(broker_url=os.environ["PUSH_TEST_BROKER"],
                broker_transport_options={"global_keyprefix": os.environ["PUSH_TEST_PREFIX"]})
app.worker_main(["worker", "--pool=solo", "--queues=push", "--loglevel=WARNING",
                 "--without-heartbeat", "--without-mingle", "--without-gossip"])
"""


def test_a_worker_killed_mid_delivery_loses_nothing(server: PartnerServer, partner: Partner, tmp_path: Any) -> None:
    """A separate worker process is SIGKILLed while the partner holds its request; the sweep hands the delivery to
    another worker once the dead one's lease has run out."""
    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a database it can share with the test (PostgreSQL)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OCPI_", "CELERY_", "TEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        TEST_DATABASE_URL=_database_url(),
        PUSH_TEST_BROKER=REDIS_URL,
        PUSH_TEST_PREFIX=app.conf.broker_transport_options["global_keyprefix"],
        OCPI_PUSH_LEASE_SECONDS="2",
    )
    server.plan(Answer(200, hang=True))
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen([sys.executable, "-c", _WORKER], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        location_put(partner=None, key=LOC1, data=location_body())
        server.wait_for(hanging, timeout=60)  # the worker process is sending it
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("IN_FLIGHT", 1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()
    server.release()  # its answer goes nowhere

    with push_worker():
        wait_until(
            lambda: Delivery.objects.filter(lease_until__lt=timezone.now()).exists(), "the dead worker's lease ran out"
        )
        outbox_sweep_task.delay()
        wait_until(delivered(), "delivered by the other worker")

    delivery = Delivery.objects.get()
    assert delivery.attempts == 2
    assert list(delivery.attempt_log.order_by("pk").values_list("outcome", flat=True)) == ["LOST", "DELIVERED"]
    assert [(method, path) for method, path, _ in calls(server)] == [("PUT", "LOC1"), ("PUT", "LOC1")]
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


# --- what is sent ---


def test_a_newer_change_supersedes_an_undelivered_older_one(server: PartnerServer, partner: Partner) -> None:
    # no worker yet: four changes pile up
    location_put(partner=None, key=LOC1, data=location_body())
    location_patch(partner=None, key=LOC1, data={"name": "Renamed", "last_updated": later(1)})
    evse_status_set(key=EVSE1, status="CHARGING", at=timezone.now() + timedelta(seconds=2))
    evse_status_set(key=EVSE1, status="BLOCKED", at=timezone.now() + timedelta(seconds=3))
    assert list(Delivery.objects.filter(status="PENDING").order_by("pk").values_list("method", "object_path")) == [
        ("PUT", "LOC1"),  # PUT wins over the PATCH that followed it
        ("PATCH", "LOC1/EVSE1"),
    ]

    with push_worker():
        wait_until(delivered(2), "both objects delivered")

    put, patch = server.requests()
    assert (put.method, put.body["name"], put.body["evses"][0]["status"]) == ("PUT", "Renamed", "BLOCKED")
    assert (patch.method, patch.body["status"]) == ("PATCH", "BLOCKED")
    assert Delivery.objects.filter(status=Delivery.Status.SUPERSEDED).count() == 2
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


def test_a_patch_the_partner_does_not_know_becomes_a_put(server: PartnerServer, partner: Partner) -> None:
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        wait_until(delivered(1), "the location reached the partner")
        server.locations.clear()  # the partner lost it
        evse_status_set(key=EVSE1, status="CHARGING")
        wait_until(delivered(2), "the status change reached the partner")

    assert calls(server) == [("PUT", "LOC1", 200), ("PATCH", "LOC1/EVSE1", 404), ("PUT", "LOC1", 200)]
    assert server.requests()[-1].body == ours()
    assert server.locations[("NL", "OWN", "LOC1")]["evses"][0]["status"] == "CHARGING"


def test_an_evse_patch_is_not_sent_before_the_put_of_its_location(server: PartnerServer, partner: Partner) -> None:
    server.plan(Answer(503, 3000, hang=True))  # the first PUT is held, then fails
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        server.wait_for(hanging)
        evse_status_set(key=EVSE1, status="CHARGING")  # queued while its location's PUT is in flight
        server.release()
        wait_until(delivered(2), "both delivered")

    assert calls(server) == [("PUT", "LOC1", 503), ("PUT", "LOC1", 200), ("PATCH", "LOC1/EVSE1", 200)]
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


def test_a_retry_sends_the_object_as_it_is_at_that_moment(server: PartnerServer, partner: Partner) -> None:
    server.plan(Answer(503, 3000, hang=True))
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())  # EVSE1 AVAILABLE
        server.wait_for(hanging)
        evse_status_set(key=EVSE1, status="CHARGING")  # changes while the first attempt is with the partner
        server.release()
        wait_until(delivered(2), "delivered")

    first, retry, patch = server.requests()
    assert (first.answered, first.body["evses"][0]["status"]) == (503, "AVAILABLE")  # rendered before the change
    assert (retry.method, retry.answered, retry.body["evses"][0]["status"]) == ("PUT", 200, "CHARGING")
    assert (patch.method, patch.body["status"]) == ("PATCH", "CHARGING")
    assert server.locations[("NL", "OWN", "LOC1")] == ours()


def test_a_change_made_while_the_older_one_is_in_flight_takes_its_place(
    server: PartnerServer, partner: Partner
) -> None:
    server.plan(Answer(503, 3000, hang=True))
    with push_worker():
        location_put(partner=None, key=LOC1, data=location_body())
        server.wait_for(hanging)
        location_patch(partner=None, key=LOC1, data={"name": "Renamed", "last_updated": later(1)})
        server.release()
        wait_until(delivered(1), "delivered")

    assert calls(server) == [("PUT", "LOC1", 503), ("PUT", "LOC1", 200)]  # once more, whole: not PUT then PATCH
    assert server.requests()[-1].body == ours()
    assert server.requests()[-1].body["name"] == "Renamed"
    older, newer = Delivery.objects.order_by("pk")
    assert (older.status, older.superseded_by_id, newer.method) == ("SUPERSEDED", newer.pk, "PUT")
