"""The push outbox at service level: `outbox_add` through the locations services, `outbox_deliver` called directly
against a partner served by pytest-httpserver. What a real worker adds (enqueueing, countdowns, the sweep task, a
dead worker, Redis down) is proven in tests/test_push_worker.py."""

import base64
import json
import threading
from datetime import timedelta
from email.utils import format_datetime as http_date
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import envelope_body
from locations.models import Evse, Location
from locations.services import Key, evse_status_set, location_object_get, location_patch, location_put
from ocpi_core.models import Delivery, DeliveryAttempt, Partner
from ocpi_core.push import PushModule, outbox_add, outbox_deliver, outbox_resend, outbox_sweep, push_module_register
from tests.partner_server import location_body, receiver_partner

pytestmark = pytest.mark.usefixtures("own_parties")

LOC1 = Key("NL", "OWN", "LOC1")
EVSE1 = Key("NL", "OWN", "LOC1", "EVSE1")
BASE = "/ocpi/2.2.1/locations"


@pytest.fixture(autouse=True)
def _push_settings(settings: Any) -> None:
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 10.0
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 60.0
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 3600.0
    settings.OCPI_PUSH_LEASE_SECONDS = 60.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0


@pytest.fixture
def partner(httpserver: HTTPServer) -> Partner:
    """A registered partner receiving Locations at the local server."""
    return receiver_partner(httpserver.url_for(BASE))


def answer(httpserver: HTTPServer, http: int = 200, ocpi: int = 1000, *, method: str | None = None, **headers: str):
    """Every matching request gets this answer (later calls add answers for other methods; first match wins)."""
    kwargs: dict[str, Any] = {"method": method} if method else {}
    httpserver.expect_request(f"{BASE}/NL/OWN/LOC1", **kwargs).respond_with_response(
        Response(envelope_body(status_code=ocpi), http, headers=headers, mimetype="application/json")
    )
    httpserver.expect_request(f"{BASE}/NL/OWN/LOC1/EVSE1", **kwargs).respond_with_response(
        Response(envelope_body(status_code=ocpi), http, headers=headers, mimetype="application/json")
    )


def sent(httpserver: HTTPServer) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, json.loads(r.data) if r.data else None) for r, _ in httpserver.log]


def open_deliveries() -> list[Delivery]:
    return list(Delivery.objects.filter(status__in=Delivery.OPEN).order_by("pk"))


def due_now(delivery: Delivery) -> None:
    """Time passes: the delivery's next attempt is due (instead of sleeping through the backoff)."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def only(status: str | None = None) -> Delivery:
    rows = list(Delivery.objects.filter(**({"status": status} if status else {})))
    assert len(rows) == 1, rows
    return rows[0]


def new_location(**kwargs: Any) -> Delivery:
    location_put(partner=None, key=LOC1, data=location_body(**kwargs))
    return only(Delivery.Status.PENDING)


# --- writing the outbox ---


def test_a_change_queues_one_delivery_per_registered_receiving_partner(db: None, httpserver: HTTPServer) -> None:
    url = httpserver.url_for(BASE)
    receiving = receiver_partner(url, name="receives", party=("DE", "AAA"))
    receiver_partner(url, name="sender-only", party=("DE", "BBB"), receiver=False)
    receiver_partner(url, name="suspended", party=("DE", "CCC"), status=Partner.Status.SUSPENDED)
    receiver_partner(url, name="unregistered", party=("DE", "DDD"), status=Partner.Status.UNREGISTERED)
    receiver_partner(url, name="push-off", party=("DE", "EEE"), push_enabled=False)

    location_put(partner=None, key=LOC1, data=location_body())

    delivery = only()
    assert (delivery.partner, delivery.method, delivery.status) == (receiving, "PUT", "PENDING")
    assert (delivery.module, delivery.country_code, delivery.party_id, delivery.object_path) == (
        "locations",
        "NL",
        "OWN",
        "LOC1",
    )
    assert delivery.next_attempt_at <= timezone.now()


def test_a_partners_own_location_is_not_pushed(db: None, partner: Partner) -> None:
    location_put(
        partner=partner, key=Key("DE", "PRT", "THEIRS"), data=location_body("THEIRS", country_code="DE", party_id="PRT")
    )

    assert Location.objects.filter(ocpi_id="THEIRS").exists()
    assert not Delivery.objects.exists()


def test_a_rolled_back_change_leaves_no_delivery(db: None, partner: Partner) -> None:
    def change_then_fail() -> None:
        with transaction.atomic():
            location_put(partner=None, key=LOC1, data=location_body())
            assert Delivery.objects.count() == 1
            raise RuntimeError("the caller fails after the change")

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert not Delivery.objects.exists()
    assert not Location.objects.exists()


@pytest.mark.parametrize(
    ("changes", "method", "fields"),
    [
        (["put", "patch_name"], "PUT", []),  # PUT wins over a later PATCH
        (["patch_name", "put"], "PUT", []),
        (["patch_name", "patch_address"], "PATCH", ["address", "name"]),  # PATCHes merge their fields
    ],
)
def test_a_newer_change_supersedes_an_undelivered_older_one(
    db: None, partner: Partner, changes, method, fields
) -> None:
    location_put(partner=None, key=LOC1, data=location_body())
    Delivery.objects.update(status=Delivery.Status.DELIVERED)  # the partner has the location
    stamp = iter(range(1, 10))

    def change(kind: str) -> None:
        now = (timezone.now() + timedelta(seconds=next(stamp))).isoformat().replace("+00:00", "Z")
        if kind == "put":
            location_put(partner=None, key=LOC1, data=location_body(name="Replaced", last_updated=now))
        elif kind == "patch_name":
            location_patch(partner=None, key=LOC1, data={"name": "Renamed", "last_updated": now})
        else:
            location_patch(partner=None, key=LOC1, data={"address": "Other street 2", "last_updated": now})

    for kind in changes:
        change(kind)

    newest = open_deliveries()
    assert len(newest) == 1
    assert (newest[0].method, sorted(newest[0].fields)) == (method, fields)
    older = Delivery.objects.get(status=Delivery.Status.SUPERSEDED)
    assert older.superseded_by_id == newest[0].pk


def test_status_changes_of_an_evse_merge_into_one_patch_with_the_newest_status(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    location_put(partner=None, key=LOC1, data=location_body())
    Delivery.objects.update(status=Delivery.Status.DELIVERED)
    answer(httpserver)

    evse_status_set(key=EVSE1, status="CHARGING")
    evse_status_set(key=EVSE1, status="BLOCKED", at=timezone.now() + timedelta(seconds=1))
    delivery = only(Delivery.Status.PENDING)
    outbox_deliver(delivery_id=delivery.pk)

    evse = location_object_get(key=EVSE1, partner=None)
    assert sent(httpserver) == [
        ("PATCH", f"{BASE}/NL/OWN/LOC1/EVSE1", {"status": "BLOCKED", "last_updated": evse["last_updated"]})
    ]
    assert Delivery.objects.filter(status=Delivery.Status.SUPERSEDED).count() == 1


def test_a_location_put_supersedes_pending_changes_of_its_evses(db: None, partner: Partner) -> None:
    location_put(partner=None, key=LOC1, data=location_body())
    Delivery.objects.update(status=Delivery.Status.DELIVERED)
    evse_status_set(key=EVSE1, status="CHARGING")
    patch = only(Delivery.Status.PENDING)

    later = (timezone.now() + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    location_put(partner=None, key=LOC1, data=location_body(name="Whole", last_updated=later))

    put = only(Delivery.Status.PENDING)
    assert (put.method, put.object_path) == ("PUT", "LOC1")
    patch.refresh_from_db()
    assert (patch.status, patch.superseded_by_id) == (Delivery.Status.SUPERSEDED, put.pk)


# --- delivering ---


def test_a_put_carries_the_location_as_it_is_now_with_routing_headers_and_our_token(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    answer(httpserver)
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert outcome.status == Delivery.Status.DELIVERED
    ((request, _),) = httpserver.log
    assert (request.method, request.path) == ("PUT", f"{BASE}/NL/OWN/LOC1")
    assert json.loads(request.data) == location_object_get(key=LOC1, partner=None)
    token = base64.b64encode(partner.token_out().encode()).decode()
    assert request.headers["Authorization"] == f"Token {token}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Request-ID"]
    assert request.headers["X-Correlation-ID"]
    routing = {
        name: request.headers.get(f"OCPI-{name}")
        for name in ("from-country-code", "from-party-id", "to-country-code", "to-party-id")
    }
    assert routing == {"from-country-code": "NL", "from-party-id": "OWN", "to-country-code": "DE", "to-party-id": "PRT"}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_http_status, delivery.last_ocpi_status) == (
        "DELIVERED",
        1,
        200,
        1000,
    )
    assert delivery.delivered_at is not None
    assert delivery.lease_until is None
    (attempt,) = delivery.attempt_log.all()
    assert (attempt.method, attempt.url, attempt.http_status, attempt.outcome) == (
        "PUT",
        httpserver.url_for(f"{BASE}/NL/OWN/LOC1"),
        200,
        "DELIVERED",
    )


def test_the_token_is_sent_as_the_partner_is_configured_to_read_it(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    Partner.objects.filter(pk=partner.pk).update(token_encoding=Partner.TokenEncoding.RAW)
    answer(httpserver)

    outbox_deliver(delivery_id=new_location().pk)

    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == f"Token {partner.token_out()}"


def test_delivering_twice_sends_once(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    answer(httpserver)
    delivery = new_location()

    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED
    assert outbox_deliver(delivery_id=delivery.pk).status == "NOOP"

    assert len(httpserver.log) == 1
    assert DeliveryAttempt.objects.count() == 1


@pytest.mark.parametrize("http", [500, 502, 503])
def test_a_5xx_is_retried_with_exponential_backoff(
    db: None, partner: Partner, httpserver: HTTPServer, settings: Any, http: int
) -> None:
    settings.OCPI_PUSH_RETRY_BASE_SECONDS, settings.OCPI_PUSH_RETRY_MAX_SECONDS = 10.0, 30.0
    answer(httpserver, http, 3000)
    delivery = new_location()

    delays = []
    for _ in range(4):
        before = timezone.now()
        outcome = outbox_deliver(delivery_id=delivery.pk)
        assert outcome.status == Delivery.Status.PENDING
        assert outcome.retry_in is not None
        delays.append(outcome.retry_in)
        delivery.refresh_from_db()
        assert delivery.next_attempt_at >= before + timedelta(seconds=outcome.retry_in)
        assert outbox_deliver(delivery_id=delivery.pk).status == "NOOP"  # not due yet: nothing is sent
        due_now(delivery)

    assert delays == [10.0, 20.0, 30.0, 30.0]  # doubling, capped at OCPI_PUSH_RETRY_MAX_SECONDS
    assert len(httpserver.log) == 4
    assert (delivery.status, delivery.attempts, delivery.last_http_status) == ("PENDING", 4, http)
    assert str(http) in delivery.last_error
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["RETRY"] * 4


def test_an_unreachable_partner_is_retried(db: None, partner: Partner) -> None:
    closed = "http://127.0.0.1:9/ocpi/2.2.1/locations"  # discard port: nothing listens
    partner.endpoints.filter(identifier="locations").update(url=closed)
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert (outcome.status, outcome.retry_in) == (Delivery.Status.PENDING, 10.0)
    delivery.refresh_from_db()
    assert "cannot reach" in delivery.last_error
    assert delivery.last_http_status is None
    (attempt,) = delivery.attempt_log.all()
    assert (attempt.http_status, attempt.outcome) == (None, "RETRY")


@pytest.mark.parametrize("retry_after", ["7", lambda: http_date(timezone.now() + timedelta(seconds=8), usegmt=True)])
def test_429_is_retried_after_the_time_the_partner_asks_for(
    db: None, partner: Partner, httpserver: HTTPServer, retry_after: Any
) -> None:
    value = retry_after() if callable(retry_after) else retry_after
    answer(httpserver, 429, 2000, **{"Retry-After": value})
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert outcome.status == Delivery.Status.PENDING
    assert outcome.retry_in is not None
    assert 5.0 <= outcome.retry_in <= 8.0
    assert outcome.retry_in != 10.0
    delivery.refresh_from_db()
    assert delivery.last_http_status == 429
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=4)


@pytest.mark.parametrize("retry_after", ["1e12", "inf", "99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_429_asking_to_wait_past_the_window_is_a_dead_letter_not_an_overflow(
    db: None, partner: Partner, httpserver: HTTPServer, retry_after: str
) -> None:
    # `now + timedelta(seconds=1e12)` overflowed (OverflowError on every attempt); the wait is bounded by the window
    answer(httpserver, 429, 2000, **{"Retry-After": retry_after})
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert (outcome.status, outcome.pause) == (Delivery.Status.FAILED, 3600.0)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_http_status) == ("FAILED", 429)


def test_a_429_whose_retry_after_is_no_number_gets_the_backoff(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    answer(httpserver, 429, 2000, **{"Retry-After": "nan"})
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert (outcome.status, outcome.retry_in) == (Delivery.Status.PENDING, 10.0)


@pytest.mark.parametrize(
    ("http", "ocpi"),
    [(400, 2001), (401, 2000), (403, 2000), (405, 2000), (200, 2001), (200, 2000), (200, 2003)],
)
def test_4xx_and_ocpi_2xxx_are_dead_letters_that_resend_delivers(
    db: None, partner: Partner, httpserver: HTTPServer, django_capture_on_commit_callbacks: Any, http: int, ocpi: int
) -> None:
    answer(httpserver, http, ocpi)
    delivery = new_location()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert (outcome.status, outcome.retry_in) == (Delivery.Status.FAILED, None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_http_status, delivery.last_ocpi_status) == ("FAILED", http, ocpi)
    assert str(ocpi) in delivery.last_error
    assert delivery.lease_until is None
    assert outbox_sweep() == 0  # a dead letter is not retried by the sweep either
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["FAILED"]

    httpserver.clear()
    answer(httpserver)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_resend(deliveries=[delivery]) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("PENDING", 0)
    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED
    assert [method for method, _, _ in sent(httpserver)] == ["PUT"]


def test_resend_leaves_delivered_and_superseded_deliveries_alone(db: None, partner: Partner) -> None:
    delivery = new_location()
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DELIVERED)
    delivery.refresh_from_db()

    assert outbox_resend(deliveries=[delivery]) == 0
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED


def test_after_the_retry_window_a_delivery_is_a_dead_letter(
    db: None, partner: Partner, httpserver: HTTPServer, settings: Any
) -> None:
    settings.OCPI_PUSH_RETRY_WINDOW_SECONDS = 60.0
    answer(httpserver, 503, 3000)
    delivery = new_location()
    assert outbox_deliver(delivery_id=delivery.pk).retry_in == 10.0  # inside the window: retried

    Delivery.objects.filter(pk=delivery.pk).update(
        window_start=timezone.now() - timedelta(seconds=55), next_attempt_at=timezone.now()
    )
    outcome = outbox_deliver(delivery_id=delivery.pk)  # the next retry would fall after the window

    assert (outcome.status, outcome.retry_in) == (Delivery.Status.FAILED, None)
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("Gave up after 2 attempts")
    assert list(delivery.attempt_log.order_by("pk").values_list("outcome", flat=True)) == ["RETRY", "FAILED"]


@pytest.mark.parametrize(("http", "ocpi"), [(404, 2003), (200, 2003)])
def test_a_patch_the_partner_answers_not_found_becomes_a_put_of_the_whole_location(
    db: None, partner: Partner, httpserver: HTTPServer, http: int, ocpi: int
) -> None:
    location_put(partner=None, key=LOC1, data=location_body())
    Delivery.objects.update(status=Delivery.Status.DELIVERED)
    evse_status_set(key=EVSE1, status="CHARGING")
    delivery = only(Delivery.Status.PENDING)
    answer(httpserver, http, ocpi, method="PATCH")
    answer(httpserver, 200, 1000, method="PUT")

    first = outbox_deliver(delivery_id=delivery.pk)
    assert (first.status, first.retry_in) == (Delivery.Status.PENDING, 0.0)  # again at once, whole
    second = outbox_deliver(delivery_id=delivery.pk)

    assert second.status == Delivery.Status.DELIVERED
    location = location_object_get(key=LOC1, partner=None)
    assert location["evses"][0]["status"] == "CHARGING"
    assert sent(httpserver) == [
        ("PATCH", f"{BASE}/NL/OWN/LOC1/EVSE1", {"status": "CHARGING", "last_updated": location["last_updated"]}),
        ("PUT", f"{BASE}/NL/OWN/LOC1", location),
    ]
    delivery.refresh_from_db()
    assert (delivery.method, delivery.object_path, delivery.fields) == ("PUT", "LOC1", [])


def test_an_evse_patch_waits_for_the_pending_put_of_its_location(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    answer(httpserver)
    put = new_location()
    evse_status_set(key=EVSE1, status="CHARGING")
    patch = Delivery.objects.get(method="PATCH")

    waiting = outbox_deliver(delivery_id=patch.pk)  # its task came first: it must not overtake the PUT

    assert waiting.status == Delivery.Status.PENDING
    assert waiting.retry_in
    assert httpserver.log == []
    patch.refresh_from_db()
    assert (patch.status, patch.attempts) == ("PENDING", 0)  # waiting is not an attempt

    done = outbox_deliver(delivery_id=put.pk)
    assert patch.pk in done.follow_ups  # the PATCH is woken as soon as the PUT is through
    assert outbox_deliver(delivery_id=patch.pk).status == Delivery.Status.DELIVERED
    assert [(method, path) for method, path, _ in sent(httpserver)] == [
        ("PUT", f"{BASE}/NL/OWN/LOC1"),
        ("PATCH", f"{BASE}/NL/OWN/LOC1/EVSE1"),
    ]


def test_a_later_change_to_the_same_object_waits_for_the_one_in_flight(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    answer(httpserver)
    first = new_location()
    Delivery.objects.filter(pk=first.pk).update(
        status=Delivery.Status.IN_FLIGHT, lease_until=timezone.now() + timedelta(seconds=60), attempts=1
    )
    location_patch(partner=None, key=LOC1, data={"name": "Renamed", "last_updated": _later(5)})
    second = Delivery.objects.get(status=Delivery.Status.PENDING)

    assert outbox_deliver(delivery_id=second.pk).status == Delivery.Status.PENDING
    assert httpserver.log == []


def _later(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_each_attempt_sends_the_object_as_it_is_then(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    answer(httpserver, 503, 3000, method="PUT")
    delivery = new_location()
    outbox_deliver(delivery_id=delivery.pk)  # fails while the EVSE is AVAILABLE

    evse_status_set(key=EVSE1, status="CHARGING")  # its own PATCH row; the pending PUT stays as it is
    httpserver.clear()
    answer(httpserver)
    due_now(delivery)
    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED

    ((_, _, body),) = sent(httpserver)
    assert body == location_object_get(key=LOC1, partner=None)
    assert body["evses"][0]["status"] == "CHARGING"


def test_an_object_gone_before_its_delivery_is_not_sent(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    delivery = new_location()
    Location.objects.filter(ocpi_id="LOC1").delete()

    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert outcome.status == Delivery.Status.SUPERSEDED
    assert httpserver.log == []


def test_unpublishing_a_shown_location_tells_partners_and_a_private_one_is_never_pushed(
    db: None, partner: Partner, httpserver: HTTPServer
) -> None:
    delivery = new_location()
    answer(httpserver)
    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED

    # the location goes private: partners that showed it get publish=false
    location_patch(partner=None, key=LOC1, data={"publish": False, "last_updated": "2030-01-01T00:00:00Z"})
    patch = Delivery.objects.filter(method=Delivery.Method.PATCH).get()
    assert patch.fields == ["publish"]
    assert outbox_deliver(delivery_id=patch.pk).status == Delivery.Status.DELIVERED
    assert sent(httpserver)[-1][2] == {"publish": False, "last_updated": "2030-01-01T00:00:00Z"}

    # while private, its changes go nowhere
    evse_uid = Location.objects.get(ocpi_id="LOC1").evses.get().uid
    evse_status_set(key=Key("NL", "OWN", "LOC1", evse_uid), status="CHARGING")
    assert Delivery.objects.count() == 2


def test_a_partner_suspended_after_the_change_gets_nothing(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    delivery = new_location()
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.SUSPENDED)

    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.FAILED
    assert httpserver.log == []
    delivery.refresh_from_db()
    assert "Suspended" in delivery.last_error


# --- crashes and the sweep ---


def test_the_sweep_takes_over_a_delivery_whose_worker_died(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    answer(httpserver)
    delivery = new_location()
    held = timezone.now() + timedelta(seconds=60)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.IN_FLIGHT, lease_until=held, attempts=1)

    assert outbox_sweep() == 0  # a live worker holds it
    assert outbox_deliver(delivery_id=delivery.pk).status == "NOOP"

    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))  # it died
    assert outbox_sweep() == 1
    assert outbox_deliver(delivery_id=delivery.pk).status == Delivery.Status.DELIVERED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 2)


def test_the_sweep_re_enqueues_only_overdue_open_deliveries(db: None, partner: Partner, settings: Any) -> None:
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 30.0
    now = timezone.now()
    delivery = new_location()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(seconds=10))
    assert outbox_sweep() == 0  # not overdue yet: its own task may still come
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now - timedelta(seconds=31))
    assert outbox_sweep() == 1
    for status in (Delivery.Status.DELIVERED, Delivery.Status.FAILED, Delivery.Status.SUPERSEDED):
        Delivery.objects.filter(pk=delivery.pk).update(status=status)
        assert outbox_sweep() == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_does_not_overwrite_the_one_that_took_over(
    own_parties: Any, httpserver: HTTPServer, settings: Any
) -> None:
    """While this worker waits for the partner, its lease runs out and another worker claims the delivery: the
    first one's result must not land on the row the second one now owns."""
    partner = receiver_partner(httpserver.url_for(BASE))
    delivery = new_location()

    def slow_partner(request: Request) -> Response:
        # another worker takes the delivery over while this request is with the partner
        Delivery.objects.filter(pk=delivery.pk).update(
            attempts=2, lease_until=timezone.now() + timedelta(seconds=60), status=Delivery.Status.IN_FLIGHT
        )
        connection.close()
        return Response(envelope_body(status_code=3000), 503, mimetype="application/json")

    httpserver.expect_request(f"{BASE}/NL/OWN/LOC1").respond_with_handler(slow_partner)
    outcome = outbox_deliver(delivery_id=delivery.pk)

    assert outcome.status == "LOST"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("IN_FLIGHT", 2)
    assert delivery.lease_until is not None
    assert delivery.lease_until > timezone.now()
    assert partner.deliveries.count() == 1


@pytest.mark.django_db
def test_a_renderer_that_crashes_does_not_strand_the_delivery(own_parties: Any, httpserver: HTTPServer) -> None:
    calls = threading.Event()

    def broken(**kwargs: Any) -> dict[str, Any]:
        calls.set()
        raise ValueError("renderer bug")

    push_module_register(PushModule(module="crashy", receiver_roles=("EMSP",), render=broken))
    partner = receiver_partner(httpserver.url_for(BASE))
    partner.endpoints.create(identifier="crashy", role="RECEIVER", url=httpserver.url_for("/crashy"))
    try:
        (delivery,) = outbox_add(
            module="crashy", country_code="NL", party_id="OWN", object_path="X1", method=Delivery.Method.PUT
        )
        outcome = outbox_deliver(delivery_id=delivery.pk)
    finally:
        from ocpi_core import push

        push._MODULES.pop("crashy", None)

    assert calls.is_set()
    assert outcome.status == Delivery.Status.PENDING
    assert outcome.retry_in == 10.0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.lease_until) == ("PENDING", None)
    assert "renderer bug" in delivery.last_error
    assert httpserver.log == []


def test_evse_rows_are_unchanged_by_delivery(db: None, partner: Partner, httpserver: HTTPServer) -> None:
    """Delivering reads; it never writes the pushed objects."""
    answer(httpserver, 500, 3000)
    delivery = new_location()
    before = (Location.objects.get().doc, list(Evse.objects.values_list("status", "last_updated")))

    outbox_deliver(delivery_id=delivery.pk)

    assert (Location.objects.get().doc, list(Evse.objects.values_list("status", "last_updated"))) == before
