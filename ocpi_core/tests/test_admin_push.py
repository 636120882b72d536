"""The back-office for push and pull (STYLE §8): the outbox list with its filters, failed count and "Resend now";
sync runs with their progress while running; sync states; and the partner's "Pull now" / "Full sync" actions, which
publish sync tasks on the broker (Celery's in-memory broker here: the task's run on a real worker is proven by the
sync tests)."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu import Connection
from kombu.simple import SimpleQueue

from config.celery_app import app
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import (
    Delivery,
    DeliveryAttempt,
    Partner,
    PartnerEndpoint,
    PartnerPushState,
    Party,
    SyncRun,
    SyncState,
)

DELIVERIES = reverse("admin:ocpi_core_delivery_changelist")
RUNS = reverse("admin:ocpi_core_syncrun_changelist")
STATES = reverse("admin:ocpi_core_syncstate_changelist")
PARTNERS = reverse("admin:ocpi_core_partner_changelist")


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:ocpi_core_{name}", args=args)


def results(response: Any) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m.message)) for m in response.context["messages"]]


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ocpi_core", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def partners(own_parties: list[Party]) -> tuple[Partner, Partner]:
    """Two registered partners: `emsp` receives our locations, `cpo` sends us its locations (pullable)."""
    emsp, _ = make_partner(name="emsp", roles=(("DE", "EMS", Role.EMSP),))
    PartnerEndpoint.objects.create(partner=emsp, identifier="locations", role="RECEIVER", url="http://127.0.0.1:9/r")
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    PartnerEndpoint.objects.create(partner=cpo, identifier="locations", role="SENDER", url="http://127.0.0.1:9/s")
    return emsp, cpo


def delivery(partner: Partner, path: str, status: str, **fields: Any) -> Delivery:
    now = timezone.now()
    values: dict[str, Any] = {
        "partner": partner,
        "module": "locations",
        "country_code": "NL",
        "party_id": "OWN",
        "object_path": path,
        "method": Delivery.Method.PUT,
        "status": status,
        "window_start": now - timedelta(hours=7),
        "next_attempt_at": now - timedelta(hours=1),
        **fields,
    }
    return Delivery.objects.create(**values)


@pytest.fixture
def outbox(partners: tuple[Partner, Partner]) -> dict[str, Delivery]:
    emsp, cpo = partners
    failed = delivery(
        emsp,
        "LOC1",
        Delivery.Status.FAILED,
        attempts=9,
        last_http_status=503,
        last_error="Gave up after 9 attempts: HTTP 503 from the partner " + "x" * 100,
    )
    DeliveryAttempt.objects.create(
        delivery=failed, method="PUT", url="http://127.0.0.1:9/r/NL/OWN/LOC1", http_status=503, outcome="RETRY"
    )
    return {
        "failed": failed,
        "pending": delivery(emsp, "LOC2/E1", Delivery.Status.PENDING, method=Delivery.Method.PATCH, fields=["status"]),
        "delivered": delivery(
            emsp, "LOC3", Delivery.Status.DELIVERED, attempts=1, last_http_status=200, last_ocpi_status=1000
        ),
        "refused": delivery(
            cpo, "LOC4", Delivery.Status.FAILED, attempts=1, last_http_status=200, last_ocpi_status=2001
        ),
    }


@pytest.fixture
def broker() -> Iterator[Any]:
    """The in-memory broker the test settings configure; `broker(queue)` drains a queue and returns its messages as
    (task name, args, kwargs)."""
    assert app.conf.broker_url.startswith("memory://")
    with Connection(app.conf.broker_url) as connection:
        queues: dict[str, SimpleQueue] = {}

        def drain(name: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
            queue = queues.setdefault(name, connection.SimpleQueue(name))
            found = []
            while queue.qsize():
                message = queue.get(timeout=1)
                message.ack()
                args, kwargs, _ = message.payload
                found.append((message.headers["task"], args, kwargs))
            return found

        for name in ("sync", "push"):
            drain(name)  # what earlier tests left
        yield drain
        for queue in queues.values():
            queue.close()


# --- the outbox ------------------------------------------------------------------------------------------------------


def test_outbox_list_columns_badges_and_failed_count(admin_client, outbox):
    response = admin_client.get(DELIVERIES)

    content = response.content.decode()
    assert len(results(response)) == 4
    assert response.context["title"] == "Push outbox — 2 failed deliveries"
    level, text = messages_of(response)[0]
    assert level == "warning"
    assert f'<a href="{DELIVERIES}?status__exact=FAILED">show them</a>' in text
    assert "NL/OWN/LOC2/E1" in content  # the object, with its owner
    assert ">FAILED</span>" in content
    assert "background:#c62828" in content  # failed: red
    assert ">DELIVERED</span>" in content
    assert ">2001</span>" in content  # OCPI status of the last answer, as a badge
    assert "Gave up after 9 attempts: HTTP 503 from the partner xxxx" in content
    assert 'value="resend_now"' in content
    assert url("delivery_add") not in content


def test_outbox_list_without_failures_shows_no_warning(admin_client, partners):
    delivery(partners[0], "LOC1", Delivery.Status.DELIVERED)

    response = admin_client.get(DELIVERIES)

    assert response.context["title"] == "Push outbox"
    assert messages_of(response) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "FAILED"}, {"failed", "refused"}),
        ({"status__exact": "PENDING"}, {"pending"}),
        ({"method__exact": "PATCH"}, {"pending"}),
        ({"module": "locations"}, {"failed", "pending", "delivered", "refused"}),
        ({"module": "tariffs"}, set()),
        ({"q": "LOC2"}, {"pending"}),
        ({"q": "HTTP 503"}, {"failed"}),
    ],
    ids=str,
)
def test_outbox_list_filters_and_search(admin_client, outbox, query, expected):
    names = {d.pk: name for name, d in outbox.items()}

    response = admin_client.get(DELIVERIES, query)

    assert {names[d.pk] for d in results(response)} == expected


def test_outbox_list_partner_filter_and_date_hierarchy(admin_client, outbox, partners):
    today = timezone.localdate(outbox["failed"].created_at)

    by_partner = admin_client.get(DELIVERIES, {"partner__id__exact": partners[1].pk})
    by_day = admin_client.get(
        DELIVERIES, {"created_at__year": today.year, "created_at__month": today.month, "created_at__day": today.day}
    )

    assert [d.object_path for d in results(by_partner)] == ["LOC4"]
    assert len(results(by_day)) == 4


def test_outbox_list_query_count_does_not_grow_with_rows(admin_client, partners, django_assert_max_num_queries):
    for index in range(40):
        delivery(partners[index % 2], f"LOC{index}", Delivery.Status.PENDING)

    with django_assert_max_num_queries(12):
        response = admin_client.get(DELIVERIES)

    assert len(results(response)) == 40


def test_delivery_page_is_read_only_with_its_attempts(admin_client, outbox):
    failed = outbox["failed"]

    response = admin_client.get(url("delivery_change", failed.pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert "http://127.0.0.1:9/r/NL/OWN/LOC1" in content  # the attempt inline
    assert "RETRY" in content
    assert admin_client.post(url("delivery_change", failed.pk), {"status": "PENDING"}).status_code == 403
    assert admin_client.get(url("delivery_add")).status_code == 403
    assert admin_client.get(url("delivery_delete", failed.pk)).status_code == 403
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.FAILED


def test_resend_now_resets_failed_deliveries_and_queues_them(
    admin_client, outbox, broker, django_capture_on_commit_callbacks
):
    failed, delivered = outbox["failed"], outbox["delivered"]
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            DELIVERIES, {"action": "resend_now", "_selected_action": [failed.pk, delivered.pk]}, follow=True
        )

    assert ("success", "1 delivery queued to be sent now. 1 left alone (delivered, superseded or being sent).") in (
        messages_of(response)
    )
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.PENDING
    assert failed.attempts == 0
    assert failed.window_start >= before  # a fresh retry window
    assert failed.next_attempt_at >= before
    delivered.refresh_from_db()
    assert delivered.status == Delivery.Status.DELIVERED
    assert Delivery.objects.get(pk=outbox["refused"].pk).status == Delivery.Status.FAILED  # not selected
    # the partner's batch task (one per partner, with the token it holds the partner by), not one per delivery
    [(task, (partner_id, holder), kwargs)] = broker("push")
    assert (task, partner_id, kwargs) == ("ocpi_core.tasks.outbox_deliver_partner_task", failed.partner_id, {})
    assert PartnerPushState.objects.get(partner_id=failed.partner_id).holder == holder


def test_view_only_staff_sees_the_outbox_but_cannot_resend(outbox):
    client = staff_client("view_delivery")
    failed = outbox["failed"]

    page = client.get(DELIVERIES)
    post = client.post(DELIVERIES, {"action": "resend_now", "_selected_action": [failed.pk]})

    assert page.status_code == 200
    assert 'value="resend_now"' not in page.content.decode()
    assert post.status_code in (200, 302)
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.FAILED


# --- sync runs and states --------------------------------------------------------------------------------------------


@pytest.fixture
def runs(partners: tuple[Partner, Partner]) -> dict[str, SyncRun]:
    _, cpo = partners
    done = SyncRun.objects.create(
        partner=cpo,
        module="locations",
        kind=SyncRun.Kind.FULL,
        status=SyncRun.Status.SUCCEEDED,
        pages=10,
        received=498,
        errors=2,
        removed=3,
        total=500,
        message="DE*CPO LOC9: coordinates.latitude: does not match",
    )
    SyncRun.objects.filter(pk=done.pk).update(
        started_at=timezone.now() - timedelta(hours=1), finished_at=timezone.now() - timedelta(minutes=57)
    )
    running = SyncRun.objects.create(
        partner=cpo, module="locations", kind=SyncRun.Kind.INCREMENTAL, pages=3, received=120, total=500
    )
    SyncState.objects.create(
        partner=cpo,
        module="locations",
        last_success_at=timezone.now() - timedelta(hours=1),
        last_full_at=timezone.now() - timedelta(hours=1),
        running_since=running.started_at,
    )
    return {"done": SyncRun.objects.get(pk=done.pk), "running": running}


def test_sync_run_list_shows_progress_and_refreshes_while_running(admin_client, runs):
    response = admin_client.get(RUNS)

    content = response.content.decode()
    assert [r.pk for r in results(response)] == [runs["running"].pk, runs["done"].pk]
    assert response["Refresh"] == "5"
    assert response.context["title"] == "Sync runs — running now, refreshed every 5 s"
    assert "120 of 500 (24%)" in content  # objects received of X-Total-Count
    assert "498 of 500 (99%)" in content
    assert "so far" in content  # the running one's duration
    assert "3m 00s" in content  # the finished one's
    assert ">RUNNING</span>" in content
    assert ">SUCCEEDED</span>" in content
    assert "DE*CPO LOC9: coordinates.latitude" in content
    assert url("syncrun_add") not in content
    page = admin_client.get(url("syncrun_change", runs["running"].pk))
    assert page["Refresh"] == "5"
    assert "120 of 500 (24%)" in page.content.decode()


def test_sync_run_list_stops_refreshing_when_nothing_runs(admin_client, runs):
    SyncRun.objects.filter(pk=runs["running"].pk).update(started_at=timezone.now() - timedelta(hours=3))  # stale

    response = admin_client.get(RUNS)

    assert "Refresh" not in response
    assert response.context["title"] == "Sync runs"
    assert "Refresh" not in admin_client.get(url("syncrun_change", runs["done"].pk))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "RUNNING"}, {"running"}),
        ({"kind__exact": "FULL"}, {"done"}),
        ({"module": "locations"}, {"running", "done"}),
        ({"q": "latitude"}, {"done"}),
        ({"q": "cpo"}, {"running", "done"}),
    ],
    ids=str,
)
def test_sync_run_list_filters_and_search(admin_client, runs, query, expected):
    names = {r.pk: name for name, r in runs.items()}

    response = admin_client.get(RUNS, query)

    assert {names[r.pk] for r in results(response)} == expected


def test_sync_run_page_is_read_only(admin_client, runs):
    run = runs["done"]

    assert admin_client.get(url("syncrun_change", run.pk)).context["has_change_permission"] is False
    assert admin_client.post(url("syncrun_change", run.pk), {"status": "FAILED"}).status_code == 403
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED


def test_sync_state_list_shows_last_run_and_running_since(admin_client, runs, partners):
    response = admin_client.get(STATES)

    content = response.content.decode()
    assert [(s.partner.name, s.module) for s in results(response)] == [("cpo", "locations")]
    assert ">since " in content
    assert url("syncrun_change", runs["running"].pk) in content  # the newest run
    assert "120 of 500 (24%)" in content
    assert len(results(admin_client.get(STATES, {"partner__id__exact": partners[0].pk}))) == 0
    state = SyncState.objects.get()
    assert admin_client.get(url("syncstate_change", state.pk)).status_code == 200


def test_pull_now_from_the_sync_state_list_publishes_a_sync_task(admin_client, runs, partners, broker):
    state = SyncState.objects.get()

    response = admin_client.post(STATES, {"action": "pull_now", "_selected_action": [state.pk]}, follow=True)

    assert broker("sync") == [("ocpi_core.tasks.sync_partner_task", [partners[1].pk, "locations"], {"full": False})]
    assert messages_of(response)[0][0] == "success"


# --- on the partner's page -------------------------------------------------------------------------------------------


def test_partner_pull_now_and_full_sync_publish_one_task_per_pulled_module(admin_client, partners, broker):
    _, cpo = partners

    pull = admin_client.post(PARTNERS, {"action": "pull_now", "_selected_action": [cpo.pk]}, follow=True)
    pulled = broker("sync")
    full = admin_client.post(
        PARTNERS, {"action": "full_sync", "_selected_action": [cpo.pk], "_return": "change"}, follow=True
    )

    assert pulled == [("ocpi_core.tasks.sync_partner_task", [cpo.pk, "locations"], {"full": False})]
    assert broker("sync") == [("ocpi_core.tasks.sync_partner_task", [cpo.pk, "locations"], {"full": True})]
    level, text = messages_of(pull)[0]
    assert (level, text.split(";")[0]) == ("success", "cpo: incremental pull of locations queued")
    assert f"{RUNS}?partner__id__exact={cpo.pk}" in text
    assert full.redirect_chain[-1][0] == url("partner_change", cpo.pk)  # the button on its page returns there
    assert messages_of(full)[0][1].startswith("cpo: full sync of locations queued")


def test_pull_now_refuses_partners_that_send_nothing_or_are_not_registered(
    admin_client, partners, invited_partner, broker
):
    emsp, _ = partners
    invited, _ = invited_partner

    response = admin_client.post(
        PARTNERS, {"action": "pull_now", "_selected_action": [emsp.pk, invited.pk]}, follow=True
    )

    assert sorted(messages_of(response)) == [
        ("error", "emsp: offers no module we pull (no SENDER endpoint)"),
        ("error", "invited: not registered (Invited (token A issued))"),
    ]
    assert broker("sync") == []
    assert not SyncRun.objects.exists()


def test_partner_page_shows_buttons_outbox_counts_and_last_runs(admin_client, outbox, runs, partners):
    emsp, cpo = partners

    emsp_page = admin_client.get(url("partner_change", emsp.pk)).content.decode()
    cpo_page = admin_client.get(url("partner_change", cpo.pk)).content.decode()

    assert 'name="action" value="pull_now"' in cpo_page
    assert 'name="action" value="full_sync"' in cpo_page
    assert ">1 pending</span>" in emsp_page
    assert ">1 failed</span>" in emsp_page
    assert f"{DELIVERIES}?partner__id__exact={emsp.pk}&amp;status__exact=FAILED" in emsp_page
    assert "no module pulled from this partner" in emsp_page
    assert ">0 pending</span>" in cpo_page
    assert ">1 failed</span>" in cpo_page
    assert "<td>locations</td>" in cpo_page
    assert url("syncrun_change", runs["running"].pk) in cpo_page
    assert "120 of 500 (24%)" in cpo_page
