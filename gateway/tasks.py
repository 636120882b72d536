"""Gateway tasks: the simulator's beat, and the webhook backend's command delivery (queue "commands")."""

from typing import Any

from celery import shared_task


@shared_task(queue="commands", soft_time_limit=120, time_limit=150)
def simulator_tick_task() -> int:
    """Every GATEWAY_SIMULATOR_TICK_SECONDS (beat): simulated sessions charge, expired reservations end."""
    from gateway.simulator import simulator_tick

    return simulator_tick()


@shared_task(bind=True, queue="commands", max_retries=4, soft_time_limit=30, time_limit=45)
def webhook_send_task(self: Any, url: str, payload: dict[str, Any]) -> None:
    """POST one signed command to the operator's charge point system; failures retried with a short backoff (the
    command's timeout bounds the whole: the watchdog answers TIMEOUT when no outcome comes)."""
    from gateway.webhook import webhook_send

    if not webhook_send(url=url, payload=payload):
        raise self.retry(countdown=2 * 2**self.request.retries)
