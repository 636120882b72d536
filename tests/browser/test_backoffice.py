"""The back-office in a real browser (issue #6): Chromium, driven by Playwright, logs in through the admin's login
form on a live server and does what an operator does; partners are local HTTP servers (pytest-httpserver).

1. log in;  2. register with a partner from the "Register with partner" form;  3. set an EVSE status and watch the
push reach the partner on the outbox page (a real Celery worker on Redis sends it);  4. send a command from the
command console, the CPO posts its CommandResult, the command's page shows it;  5. the dashboard's SVG charts."""

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from commands.models import Command
from config.celery_app import app
from conftest import FakePartner, auth_header, envelope_body, make_partner
from locations.models import Evse
from locations.tests.factories import own_location
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from sessions_app.services import session_start, session_stop, session_update
from tests.browser.conftest import screenshot
from tests.partner_server import receiver_partner

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT = 30.0  # seconds for what happens outside the browser (the worker's delivery)


def ocpi_ok(data: Any = None) -> Response:
    return Response(envelope_body(data), mimetype="application/json")


def test_log_in_to_the_back_office(staff_page: Page) -> None:
    page = staff_page
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator('a[href="/admin/dashboard/"]').first).to_be_visible()
    expect(page.locator("a[href='/admin/ocpi_core/partner/']").first).to_be_visible()


def test_register_with_a_partner_from_the_admin(
    staff_page: Page, own_parties: list[Party], fake_partner: FakePartner
) -> None:
    page = staff_page
    fake_partner.accepted_tokens = {"token-a-from-the-partner", fake_partner.credentials_token}

    page.goto("/admin/ocpi_core/partner/")
    page.get_by_role("link", name="Register with partner").click()
    expect(page.locator("h1")).to_have_text("Register with partner")
    page.fill("#id_versions_url", fake_partner.versions_url)
    page.fill("#id_token", "token-a-from-the-partner")
    page.fill("#id_name", "Fake CPO platform")
    page.get_by_role("button", name="Register").click()

    expect(page.locator(".messagelist")).to_contain_text("Registered with Fake CPO platform (OCPI 2.2.1")
    page.goto("/admin/ocpi_core/partner/")
    row = page.locator("#result_list tbody tr", has_text="Fake CPO platform")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-status_badge")).to_have_text("REGISTERED")
    expect(row.locator("td.field-roles")).to_contain_text("DE*FKC")

    partner = Partner.objects.get(name="Fake CPO platform")
    assert partner.status == Partner.Status.REGISTERED
    assert partner.token_out() == fake_partner.credentials_token
    posted = [r for r in fake_partner.received if r["method"] == "POST" and r["path"].endswith("/credentials")]
    assert len(posted) == 1


@pytest.fixture
def push_worker(redis_broker: str, settings: Any) -> Iterator[None]:  # noqa: F811
    """A real Celery worker (a thread of this process) consuming the push queue from Redis, with fast push timings."""
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 0.2
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 2.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0
    settings.OCPI_PUSH_ORDER_DELAY_SECONDS = 0.2
    with start_worker(app, pool="solo", queues=["push"], perform_ping_check=False, shutdown_timeout=30) as worker:
        assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
        yield


def test_an_evse_status_set_in_the_admin_is_delivered_to_a_partner(
    staff_page: Page, own_parties: list[Party], httpserver: HTTPServer, push_worker: None
) -> None:
    page = staff_page
    own_location("LOC1")  # before the partner exists: nothing to deliver yet
    evse = Evse.objects.get(location__ocpi_id="LOC1")
    received: list[tuple[str, str, dict[str, Any]]] = []

    def locations_receiver(request: Request) -> Response:
        received.append((request.method, request.path, orjson.loads(request.data or b"{}")))
        return ocpi_ok()

    httpserver.expect_request(re.compile(r"/ocpi/2\.2\.1/locations/.*")).respond_with_handler(locations_receiver)
    receiver_partner(httpserver.url_for("/ocpi/2.2.1/locations"), name="receiving eMSP")

    page.goto("/admin/locations/evse/")
    page.locator(f"input.action-select[value='{evse.pk}']").check()
    page.select_option("select[name=action]", "set_status")
    page.locator("button[name=index]").click()
    expect(page.locator("h1")).to_have_text("Set EVSE status")
    page.select_option("select[name=status]", "CHARGING")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator(".messagelist")).to_contain_text("Status CHARGING set on 1 EVSE.")

    page.goto("/admin/ocpi_core/delivery/")
    row = page.locator("#result_list tbody tr", has_text=f"NL/OWN/LOC1/{evse.uid}")
    deadline = time.monotonic() + WAIT
    while "DELIVERED" not in (row.locator("td.field-status_badge").all_inner_texts() or [""])[0]:
        if time.monotonic() > deadline:
            rows = list(Delivery.objects.values_list("object_path", "status", "attempts", "last_error"))
            pytest.fail(f"the outbox page did not show DELIVERED within {WAIT} s; deliveries: {rows}")
        page.wait_for_timeout(200)  # polling the page, as an operator pressing F5
        page.reload()
    expect(row.locator("td.field-method")).to_have_text("PATCH", ignore_case=True)
    expect(row.locator("td.field-partner")).to_have_text("receiving eMSP")
    expect(row.locator("td.field-last_result")).to_contain_text("200")

    assert [(method, path) for method, path, _ in received] == [
        ("PATCH", f"/ocpi/2.2.1/locations/NL/OWN/LOC1/{evse.uid}")
    ]
    assert received[0][2]["status"] == "CHARGING"


def test_a_command_sent_from_the_console_gets_its_result(
    staff_page: Page, own_parties: list[Party], httpserver: HTTPServer, ocpi_base_url: str
) -> None:
    page = staff_page
    sent: list[dict[str, Any]] = []

    def commands_receiver(request: Request) -> Response:
        sent.append({"path": request.path, "body": orjson.loads(request.data)})
        return ocpi_ok({"result": "ACCEPTED", "timeout": 30})

    httpserver.expect_request(re.compile(r"/ocpi/2\.2\.1/commands/.*"), method="POST").respond_with_handler(
        commands_receiver
    )
    cpo, cpo_token = make_partner(
        name="Partner CPO", base_url=httpserver.url_for("/ocpi"), roles=(("DE", "CPO", Role.CPO),)
    )
    PartnerEndpoint.objects.create(
        partner=cpo, identifier="commands", role="RECEIVER", url=httpserver.url_for("/ocpi/2.2.1/commands")
    )
    emsp = next(party for party in own_parties if party.role == Role.EMSP)

    page.goto("/admin/commands/command/send/")
    expect(page.locator("h1")).to_have_text("Send command")
    page.select_option("#id_partner", str(cpo.pk))
    page.select_option("#id_command", "START_SESSION")
    page.select_option("#id_emsp", str(emsp.pk))
    page.fill("#id_token_uid", "APPUSER0001")
    page.fill("#id_location_id", "LOC1")
    page.fill("#id_evse_uid", "LOC1-1")
    screenshot(page, "command-console.png", docs=True)
    page.get_by_role("button", name="Send").click()

    expect(page.locator(".messagelist")).to_contain_text("the CPO answered ACCEPTED")
    command = Command.objects.get()
    expect(page).to_have_url(re.compile(rf"/admin/commands/command/{command.pk}/change/$"))
    response_url = page.locator(".field-response_url .readonly").inner_text().strip()
    assert response_url == command.response_url
    assert response_url.startswith(f"{ocpi_base_url}/ocpi/2.2.1/emsp/commands/START_SESSION/")
    assert len(sent) == 1
    assert sent[0]["path"] == "/ocpi/2.2.1/commands/START_SESSION"
    assert sent[0]["body"]["response_url"] == response_url
    assert sent[0]["body"]["token"]["uid"] == "APPUSER0001"
    expect(page.locator(".field-timeline")).to_contain_text("response ACCEPTED")
    expect(page.locator(".field-timeline")).to_contain_text("waiting for the result until")

    # the CPO posts the CommandResult to the response_url it was given, with its credentials token
    answer = httpx.post(
        response_url, json={"result": "ACCEPTED"}, headers={"Authorization": auth_header(cpo_token)}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status_code"] == 1000

    page.reload()
    expect(page.locator(".field-timeline")).to_contain_text("result ACCEPTED")
    expect(page.locator(".field-result_badge")).to_contain_text("ACCEPTED")
    screenshot(page, "command-result.png")
    command.refresh_from_db()
    assert (command.state, command.result) == (Command.State.DONE, "ACCEPTED")


def test_the_dashboard_draws_its_charts_from_sessions(staff_page: Page, own_parties: list[Party]) -> None:
    page = staff_page
    own_location("LOC1", name="Harbour car park")
    own_location("LOC2", name="Station square")
    token = {"country_code": "DE", "party_id": "PRT", "uid": "U1", "type": "RFID", "contract_id": "DE-PRT-C1"}
    now = timezone.now()
    anchor = now - timedelta(hours=6)  # every session has ended before now, whatever the time of day
    for day in range(6):
        for index, location in enumerate(("LOC1", "LOC2")[: 1 + day % 2]):
            start = anchor - timedelta(days=day, hours=2 + index * 3)
            session = session_start(
                location_id=location,
                evse_uid=f"{location}-1",
                connector_id="1",
                cdr_token=token,
                auth_method="WHITELIST",
                start=start,
            )
            kwh = Decimal(8 + 3 * day + 5 * index)
            session_update(session=session, kwh=kwh, at=start + timedelta(minutes=30))
            session_stop(session=session, at=start + timedelta(minutes=45 + 10 * day))

    period = {"from": (now - timedelta(days=9)).date().isoformat(), "to": now.date().isoformat()}
    page.goto(f"/admin/dashboard/?from={period['from']}&to={period['to']}")
    expect(page.locator("h1")).to_contain_text("dashboard", ignore_case=True)
    charts = page.locator("svg.dashboard-chart")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 5
    for chart in ("#chart-location", "#chart-sessions"):
        bars = page.locator(f"{chart} rect.bar")
        expect(bars.first).to_be_visible()
        heights = bars.evaluate_all("rects => rects.map(r => r.getBoundingClientRect().height)")
        assert len(heights) >= 6, chart
        assert all(height > 0 for height in heights), (chart, heights)
    lines = page.locator("svg.dashboard-chart polyline")
    expect(lines.first).to_be_visible()
    lengths = lines.evaluate_all("lines => lines.map(l => l.getTotalLength())")
    assert lengths
    assert all(length > 0 for length in lengths), lengths
    expect(page.locator("svg.dashboard-chart circle.point").first).to_be_visible()
    legend = page.locator("#chart-location")
    expect(legend).to_contain_text("LOC1")
    expect(legend).to_contain_text("LOC2")
    screenshot(page, "dashboard.png", docs=True)
