"""Services of the partner self-test: the only writers of SelfTestRun / SelfTestCheck (STYLE §4)."""

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ocpi_core.models import Partner
from selftest.checks import CheckResult, SelfTest
from selftest.models import SelfTestCheck, SelfTestRun

logger = logging.getLogger(__name__)

_COUNTERS = {
    SelfTestCheck.Outcome.PASS: "passed",
    SelfTestCheck.Outcome.FAIL: "failed",
    SelfTestCheck.Outcome.WARN: "warnings",
    SelfTestCheck.Outcome.SKIP: "skipped",
}


def selftest_start(*, partner: Partner) -> SelfTestRun:
    """A new run of the self-test against `partner`, RUNNING, with no checks yet."""
    return SelfTestRun.objects.create(partner=partner, progress="queued")


def selftest_enqueue(*, partner: Partner) -> SelfTestRun:
    """Start a run and hand it to a Celery worker once the row is committed (the admin action's path).

    When the broker cannot take the task, the run ends in ERROR saying so: nothing is left RUNNING for ever.
    """
    from selftest.tasks import selftest_run_task

    run = selftest_start(partner=partner)

    def send() -> None:
        try:
            selftest_run_task.delay(run.pk)
        except Exception as exc:  # the broker is down: record it on the run the operator is looking at
            logger.exception("Could not queue a self-test", extra={"partner": partner.name})
            _finish(run, SelfTestRun.Status.ERROR, f"could not queue the self-test ({exc.__class__.__name__}: {exc})")

    transaction.on_commit(send)
    return run


def _record(run: SelfTestRun, result: CheckResult) -> None:
    SelfTestCheck.objects.create(
        run=run,
        rule=result.rule[:64],
        title=result.title[:200],
        outcome=result.outcome,
        url=result.url,
        http_status=result.http_status,
        ocpi_status_code=result.ocpi_status_code if result.ocpi_status_code in range(0, 32768) else None,
        field_path=result.field_path[:200],
        evidence=result.evidence,
    )
    counter = _COUNTERS[SelfTestCheck.Outcome(result.outcome)]
    SelfTestRun.objects.filter(pk=run.pk).update(**{counter: F(counter) + 1})


def _finish(run: SelfTestRun, status: str, message: str = "") -> SelfTestRun:
    SelfTestRun.objects.filter(pk=run.pk).update(
        status=status, message=message, finished_at=timezone.now(), progress="finished"
    )
    run.refresh_from_db()
    return run


def selftest_execute(*, run: SelfTestRun) -> SelfTestRun:
    """Run every check of the self-test for `run` (synchronously), storing each result as it comes.

    Read-only towards the partner (GETs only). Ends PASSED when no check failed, FAILED otherwise, ERROR when the
    self-test could not run at all (partner not registered, no token, an unexpected failure). A run already finished
    or already holding checks (a task delivered twice) is left alone.
    """
    if run.is_finished or run.checks.exists():
        return run
    partner = run.partner
    if partner.status != Partner.Status.REGISTERED or not partner.token_out_encrypted:
        return _finish(run, SelfTestRun.Status.ERROR, f"partner is {partner.get_status_display()} with no token to use")

    def progress(step: str, requests: int) -> None:
        SelfTestRun.objects.filter(pk=run.pk).update(progress=step[:200], requests=requests)

    try:
        SelfTest(partner=partner, emit=lambda result: _record(run, result), progress=progress).run()
    except Exception as exc:  # includes Celery's SoftTimeLimitExceeded: the run must not stay RUNNING
        logger.exception("Self-test failed unexpectedly", extra={"partner": partner.name, "run": run.pk})
        return _finish(run, SelfTestRun.Status.ERROR, f"{exc.__class__.__name__}: {exc}")
    run.refresh_from_db()
    status = SelfTestRun.Status.FAILED if run.failed else SelfTestRun.Status.PASSED
    logger.info("Self-test finished", extra={"partner": partner.name, "run": run.pk, "status": status})
    return _finish(run, status)


def selftest_report(run: SelfTestRun) -> dict[str, Any]:
    """A run and its checks as the management command prints them."""
    return {
        "ok": run.status == SelfTestRun.Status.PASSED,
        "run": run.pk,
        "partner": run.partner.name,
        "status": run.status,
        "message": run.message,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "requests": run.requests,
        "counts": {"pass": run.passed, "fail": run.failed, "warn": run.warnings, "skip": run.skipped},
        "checks": [
            {
                "rule": check.rule,
                "title": check.title,
                "outcome": check.outcome,
                "url": check.url,
                "http_status": check.http_status,
                "ocpi_status_code": check.ocpi_status_code,
                "field_path": check.field_path,
                "evidence": check.evidence,
            }
            for check in run.checks.all()
        ],
    }
