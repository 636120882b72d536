"""Celery tasks of the ChargingProfiles module (queue `commands`, next to CommandResult callbacks, STYLE.md §7)."""

from typing import Any

from celery import shared_task

RESULT_RETRIES = 3  # connection failures only; OCPI itself knows no retries (REFERENCE §2.8)


@shared_task(bind=True, queue="commands", max_retries=RESULT_RETRIES, soft_time_limit=60, time_limit=90)
def chargingprofile_result_task(self: Any, request_id: int) -> str:
    """Carry out an accepted received request on the charger and POST the result to the sender's response_url."""
    from chargingprofiles.models import CallbackStatus
    from chargingprofiles.services import chargingprofile_result_send

    status = chargingprofile_result_send(request_id=request_id, final=self.request.retries >= RESULT_RETRIES)
    if status == CallbackStatus.PENDING:
        raise self.retry(countdown=2**self.request.retries)
    return status


@shared_task(queue="commands", soft_time_limit=30, time_limit=45)
def active_profile_update_task(update_id: int) -> str:
    """PUT one unsolicited ActiveChargingProfile to the sender that set a profile on the session."""
    from chargingprofiles.services import active_profile_update_send

    return active_profile_update_send(update_id=update_id)
