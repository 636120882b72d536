"""The self-test in the back-office, through Django's test client logged in as staff: the partner action starts a
run (tasks run eagerly here; test_worker.py runs one on a real worker), the run page shows its checks with outcome
filters, and "Run self-test again" starts another."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from pytest_httpserver import HTTPServer

from config.celery_app import app
from ocpi_core.models import Partner
from selftest.models import SelfTestRun
from selftest.tests.sender_partner import SenderPartner, location, sender_partner_registered

pytestmark = pytest.mark.django_db

PARTNERS = reverse("admin:ocpi_core_partner_changelist")
RUNS = reverse("admin:selftest_selftestrun_changelist")
CHECKS = reverse("admin:selftest_selftestcheck_changelist")


@pytest.fixture
def eager() -> Iterator[None]:
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


@pytest.fixture
def staff() -> Client:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_partner", "change_partner", "view_selftestrun", "view_selftestcheck"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def partner(httpserver: HTTPServer) -> Partner:
    bad = location(2)
    bad["id"] = "X" * 37
    platform = SenderPartner(server=httpserver, lists={"locations": [location(1), bad, location(3)]}).start()
    return sender_partner_registered(platform)


def test_partner_action_runs_the_selftest_and_the_report_is_readable(
    staff: Client, partner: Partner, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            PARTNERS,
            {"action": "run_selftest", "_selected_action": [partner.pk], "_return": "change"},
            follow=True,
        )

    run = SelfTestRun.objects.get()
    assert response.redirect_chain[-1][0] == reverse("admin:ocpi_core_partner_change", args=[partner.pk])
    page = response.content.decode()
    run_url = reverse("admin:selftest_selftestrun_change", args=[run.pk])
    assert "conformance self-test started" in page
    assert run_url in page
    assert 'value="run_selftest"' in page  # the button on the partner's page
    assert (run.status, run.failed) == (SelfTestRun.Status.FAILED, 1)
    assert ">RUNNING</span>" in page
    assert "all self-test runs" in page
    page = staff.get(reverse("admin:ocpi_core_partner_change", args=[partner.pk])).content.decode()
    assert ">FAILED</span>" in page
    assert ">1 fail</span>" in page

    report = staff.get(run_url)
    content = report.content.decode()
    assert report.status_code == 200
    assert "Refresh" not in report
    assert "locations.objects" in content
    assert "auth.wrong_token.module" in content
    assert ">FAIL</span>" in content
    assert ">PASS</span>" in content
    assert "must be at most 36 characters" in content
    failed_only = staff.get(run_url, {"outcome": "FAIL"}).content.decode()
    assert "locations.objects" in failed_only
    assert "auth.wrong_token.module" not in failed_only
    assert 'value="run_again"' in content

    listing = staff.get(RUNS, {"status__exact": "FAILED"})
    assert [r.pk for r in listing.context["cl"].result_list] == [run.pk]
    checks = staff.get(CHECKS, {"outcome__exact": "FAIL"})
    assert [c.rule for c in checks.context["cl"].result_list] == ["locations.objects"]
    assert (
        staff.get(reverse("admin:selftest_selftestcheck_change", args=[run.checks.earliest("pk").pk])).status_code
        == 200
    )


def test_run_again_starts_a_new_run(
    staff: Client, partner: Partner, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(PARTNERS, {"action": "run_selftest", "_selected_action": [partner.pk]})
    first = SelfTestRun.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            RUNS, {"action": "run_again", "_selected_action": [first.pk], "_return": "change"}, follow=True
        )

    second = SelfTestRun.objects.exclude(pk=first.pk).get()
    assert response.redirect_chain[-1][0] == reverse("admin:selftest_selftestrun_change", args=[second.pk])
    assert second.status == SelfTestRun.Status.FAILED
    assert second.checks.count() == first.checks.count()


def test_running_run_page_refreshes_and_shows_progress(staff: Client, partner: Partner) -> None:
    run = SelfTestRun.objects.create(partner=partner, progress="locations list", requests=7)

    response = staff.get(reverse("admin:selftest_selftestrun_change", args=[run.pk]))

    assert response["Refresh"] == "3"
    assert "locations list (7 requests)" in response.content.decode()
    assert staff.get(RUNS)["Refresh"] == "3"


def test_view_only_staff_cannot_start_a_selftest(partner: Partner) -> None:
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_partner", "view_selftestrun"]))
    client = Client()
    client.force_login(user)

    page = client.get(reverse("admin:ocpi_core_partner_change", args=[partner.pk])).content.decode()
    response = client.post(PARTNERS, {"action": "run_selftest", "_selected_action": [partner.pk]})

    assert 'value="run_selftest"' not in page
    assert "never run" in page
    assert response.status_code in (200, 302)
    assert not SelfTestRun.objects.exists()
    run = SelfTestRun.objects.create(partner=partner)
    report = client.get(reverse("admin:selftest_selftestrun_change", args=[run.pk]))
    assert report.status_code == 200
    assert not re.search(r'value="run_again"', report.content.decode())
