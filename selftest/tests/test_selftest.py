"""The conformance self-test against fake partner platforms on local HTTP servers: a conformant one passes every
check, a broken one fails exactly the checks it breaks, with evidence."""

import json
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pytest_httpserver import HTTPServer
from werkzeug import Response

from ocpi_core.models import TrafficLog
from selftest.checks import Prober
from selftest.models import SelfTestCheck, SelfTestRun
from selftest.services import selftest_execute, selftest_start
from selftest.tests.sender_partner import SenderPartner, location, sender_partner_registered, tariff, token

pytestmark = pytest.mark.django_db


def conformant(httpserver: HTTPServer) -> SenderPartner:
    return SenderPartner(
        server=httpserver,
        lists={
            "locations": [location(n) for n in range(1, 6)],  # 5 objects: three pages of 2
            "tariffs": [tariff(n) for n in range(1, 4)],
            "tokens": [token(n) for n in range(1, 3)],  # exactly one page
        },
    ).start()


def run_against(platform: SenderPartner) -> SelfTestRun:
    partner = sender_partner_registered(platform)
    return selftest_execute(run=selftest_start(partner=partner))


def outcomes(run: SelfTestRun, outcome: str) -> set[str]:
    return set(run.checks.filter(outcome=outcome).values_list("rule", flat=True))


def test_conformant_partner_passes_every_check(httpserver: HTTPServer) -> None:
    platform = conformant(httpserver)

    run = run_against(platform)

    assert run.status == SelfTestRun.Status.PASSED, list(run.checks.exclude(outcome="PASS").values("rule", "evidence"))
    assert outcomes(run, "FAIL") == set()
    assert outcomes(run, "WARN") == set()
    assert outcomes(run, "SKIP") == {"sessions.offered", "cdrs.offered"}
    passed = outcomes(run, "PASS")
    for rule in (
        "versions.envelope",
        "versions.data",
        "details.envelope",
        "details.data",
        "auth.token_accepted",
        "auth.wrong_token.versions",
        "auth.wrong_token.module",
        "credentials.get",
        "credentials.object",
    ):
        assert rule in passed
    for module in ("locations", "tariffs", "tokens"):
        for check in ("envelope", "headers", "link", "paging", "date_from_future", "date_to", "date_from", "objects"):
            assert f"{module}.{check}" in passed
    assert (run.failed, run.warnings, run.skipped, run.passed) == (0, 0, 2, len(run.checks.filter(outcome="PASS")))
    assert run.finished_at is not None
    assert run.requests == len(platform.received)
    # the Link was followed: three pages of locations with limit=2, then the date-filter probes
    location_gets = [r for r in platform.received if r["path"].endswith("/locations")]
    offsets = [r["args"].get("offset") for r in location_gets if not {"date_from", "date_to"} & set(r["args"])]
    assert offsets[:4] == [None, None, "2", "4"]  # the wrong-token probe, then the walk
    # read-only: only GETs went out, all logged
    assert {r["method"] for r in platform.received} == {"GET"}
    assert TrafficLog.objects.filter(direction=TrafficLog.Direction.OUT).count() == run.requests


def test_broken_partner_fails_exactly_the_broken_rules_with_evidence(httpserver: HTTPServer) -> None:
    bad_location = location(3)
    del bad_location["country_code"]
    bad_location["id"] = "L" * 40
    platform = SenderPartner(
        server=httpserver,
        lists={
            "locations": [location(1), location(2), bad_location, location(4)],
            "tariffs": [tariff(n) for n in range(1, 4)],
            "sessions": [],
            "tokens": [token(n) for n in range(1, 3)],
        },
        quirks={
            "*": {"accept_any_token"},
            "locations": {"no_total"},
            "tariffs": {"link_loop", "ignore_dates"},
            "sessions": {"bad_envelope"},
        },
    ).start()

    run = run_against(platform)

    assert run.status == SelfTestRun.Status.FAILED
    assert outcomes(run, "FAIL") == {
        "auth.wrong_token.versions",
        "auth.wrong_token.module",
        "locations.headers",
        "locations.objects",
        "tariffs.paging",
        "tariffs.date_from_future",
        "tariffs.date_to",
        "tariffs.date_from",
        "sessions.envelope",
    }
    assert outcomes(run, "SKIP") == {
        "cdrs.offered",
        "sessions.headers",
        "sessions.link",
        "sessions.paging",
        "sessions.date_filters",
    }
    for rule in ("locations.envelope", "locations.link", "locations.paging", "tariffs.objects", "tokens.objects"):
        assert rule in outcomes(run, "PASS")

    def check(rule: str, **lookup: Any) -> SelfTestCheck:
        return run.checks.get(rule=rule, outcome="FAIL", **lookup)

    wrong = check("auth.wrong_token.versions")
    assert (wrong.http_status, wrong.ocpi_status_code) == (200, 1000)
    assert "a random token was accepted" in wrong.evidence
    assert wrong.url.endswith("/ocpi/versions")
    headers = check("locations.headers")
    assert "X-Total-Count is missing" in headers.evidence
    assert "X-Total-Count: (absent)" in headers.evidence
    missing = check("locations.objects", field_path="country_code")
    assert missing.title.endswith("None/FKC/" + "L" * 40)
    assert "is required" in missing.evidence
    too_long = check("locations.objects", field_path="id")
    assert "must be at most 36 characters" in too_long.evidence
    assert "/locations" in too_long.url
    loop = check("tariffs.paging")
    assert "Link loops back to a page already fetched" in loop.evidence
    assert 'rel="next"' in loop.evidence
    future = check("tariffs.date_from_future")
    assert "date_from=" in future.url
    assert "object(s) returned, e.g. DE/FKC/T1" in future.evidence
    assert "outside the window" in check("tariffs.date_to").evidence
    assert "outside the window" in check("tariffs.date_from").evidence
    envelope = check("sessions.envelope")
    assert envelope.http_status == 200
    assert "timestamp is missing" in envelope.evidence
    assert run.failed == run.checks.filter(outcome="FAIL").count()


def test_wrong_version_details_are_reported_by_field(httpserver: HTTPServer) -> None:
    platform = conformant(httpserver)
    platform.versions = ["2.1.1"]

    run = run_against(platform)

    assert outcomes(run, "FAIL") == {"versions.data"}
    assert "2.2.1 is not listed" in run.checks.get(rule="versions.data").evidence
    # without 2.2.1 the stored endpoints are used: the module checks still run
    assert outcomes(run, "SKIP") >= {"details.envelope"}
    assert "locations.objects" in outcomes(run, "PASS")


def test_version_details_with_an_invalid_role_fail_with_its_path(httpserver: HTTPServer) -> None:
    platform = conformant(httpserver)
    platform.extra_endpoints.append({"identifier": "tariffs", "role": "PUBLISHER", "url": "http://x/ocpi/t"})
    platform.extra_endpoints.append({"identifier": "nltnm-tokens", "role": "SENDER", "url": "http://x/ocpi/n"})

    run = run_against(platform)

    assert outcomes(run, "FAIL") == {"details.data"}
    failure = run.checks.get(rule="details.data", outcome="FAIL")
    assert failure.field_path == "data.endpoints[4].role"
    assert "InterfaceRole" in failure.evidence
    assert outcomes(run, "WARN") == {"details.custom_modules"}


def test_unreachable_partner_fails_and_unsafe_urls_are_not_called(httpserver: HTTPServer, settings: Any) -> None:
    platform = conformant(httpserver)
    partner = sender_partner_registered(platform)
    settings.OCPI_ALLOW_PRIVATE_URLS = False  # the SSRF guard refuses the loopback partner: nothing is called

    run = selftest_execute(run=selftest_start(partner=partner))

    assert run.status == SelfTestRun.Status.FAILED
    assert platform.received == []
    assert "not called" in run.checks.get(rule="versions.envelope").evidence


def test_response_bodies_are_bounded(httpserver: HTTPServer, settings: Any) -> None:
    settings.OCPI_SELFTEST_MAX_RESPONSE_BYTES = 100
    platform = conformant(httpserver)

    run = run_against(platform)

    versions = run.checks.get(rule="versions.envelope")
    assert versions.outcome == "FAIL"
    assert "exceeds 100; not read" in versions.evidence


def test_unregistered_partner_is_an_error(httpserver: HTTPServer) -> None:
    partner = sender_partner_registered(conformant(httpserver))
    partner.status = partner.Status.SUSPENDED
    partner.save()

    run = selftest_execute(run=selftest_start(partner=partner))

    assert run.status == SelfTestRun.Status.ERROR
    assert "Suspended" in run.message
    assert run.finished_at is not None
    assert not run.checks.exists()


def test_command_prints_json_and_exits_1_on_failure(httpserver: HTTPServer) -> None:
    platform = conformant(httpserver)
    platform.quirks = {"locations": {"no_total"}}
    sender_partner_registered(platform)
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("ocpi_selftest", partner="sender", stdout=out)

    assert failure.value.returncode == 1
    report = json.loads(out.getvalue())
    assert (report["ok"], report["status"], report["partner"]) == (False, "FAILED", "sender")
    assert [c["rule"] for c in report["checks"] if c["outcome"] == "FAIL"] == ["locations.headers"]
    assert report["counts"] == dict(Counter(c["outcome"].lower() for c in report["checks"])) | {"warn": 0}


def test_command_exits_0_when_all_pass(httpserver: HTTPServer) -> None:
    sender_partner_registered(conformant(httpserver))
    out = StringIO()

    call_command("ocpi_selftest", partner="sender", stdout=out)

    report = json.loads(out.getvalue())
    assert report["ok"] is True
    assert report["status"] == "PASSED"
    assert report["counts"]["fail"] == 0


def test_streamed_bodies_stop_at_the_bound(httpserver: HTTPServer, settings: Any) -> None:
    settings.OCPI_SELFTEST_MAX_RESPONSE_BYTES = 1000
    partner = sender_partner_registered(conformant(httpserver))
    chunks = (b"x" * 100 for _ in range(10_000))  # about 1 MB, chunked: no Content-Length to refuse it early
    httpserver.clear()
    httpserver.expect_request("/huge").respond_with_handler(lambda request: Response(chunks))

    with Prober(partner=partner).session() as prober:
        answer = prober.get(httpserver.url_for("/huge"))

    assert answer.error == "HTTP 200, body larger than 1000 bytes; stopped reading"
    assert answer.body == b""
    assert prober.requests == 1
