"""Commands tasks (queue "commands", so a slow partner push never delays a CommandResult): carry out a received
command through the gateway, POST its CommandResult, and the TIMEOUT watchdog (Celery beat)."""

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)

# Publishing to a broker that is down must not hold a web request: the Command row is the truth, the watchdog
# re-enqueues what was not handed over.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def enqueue(task: Any, *args: Any) -> None:
    """Send a task after the commit; a broker outage is logged, never raised (the watchdog picks the work up)."""
    try:
        task.apply_async(args, retry=True, retry_policy=_PUBLISH_RETRY)
    except Exception:
        logger.warning("Could not enqueue %s; the commands watchdog will", task.name, exc_info=True)


@shared_task(bind=True, queue="commands", soft_time_limit=60, time_limit=90)
def command_execute_task(self: Any, command_id: int) -> str | None:
    """Hand an accepted command to its location's gateway (see commands.services.command_execute)."""
    from commands.services import command_execute

    return command_execute(command_id=command_id)


@shared_task(bind=True, queue="commands", max_retries=5, soft_time_limit=30, time_limit=45)
def command_result_send_task(self: Any, command_id: int) -> None:
    """POST a CommandResult to the eMSP's response_url; a connection failure is retried a few times, briefly."""
    from commands.services import command_result_send

    if command_result_send(command_id=command_id, attempt=self.request.retries + 1):
        raise self.retry(countdown=2 * 2**self.request.retries)


@shared_task(bind=True, queue="commands", max_retries=5, soft_time_limit=30, time_limit=45)
def reservation_canceled_send_task(self: Any, reservation_id: int, message: str | None = None) -> None:
    """POST CANCELED_RESERVATION to the original RESERVE_NOW's response_url (the CPO cancelled a reservation)."""
    from commands.services import reservation_canceled_send

    if reservation_canceled_send(reservation_id=reservation_id, message=message, attempt=self.request.retries + 1):
        raise self.retry(countdown=2 * 2**self.request.retries)


@shared_task(queue="commands", soft_time_limit=60, time_limit=90)
def command_watchdog_task() -> int:
    """Every 15 s (beat): TIMEOUT for commands the gateway never answered; mark sent commands never answered."""
    from commands.services import command_watchdog

    return command_watchdog()
