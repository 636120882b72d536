"""Celery task of the partner self-test: runs one stored SelfTestRun on a worker (queue `sync`, like pulls)."""

from celery import shared_task


@shared_task(queue="sync", soft_time_limit=600, time_limit=660)
def selftest_run_task(run_id: int) -> str:
    """Execute the self-test run `run_id` (created by `selftest_enqueue`); returns its final status."""
    from selftest.models import SelfTestRun
    from selftest.services import selftest_execute

    run = SelfTestRun.objects.select_related("partner").filter(pk=run_id).first()
    if run is None:
        return "NO_RUN"
    return selftest_execute(run=run).status
