"""The EVSE status hook: called by locations.services wherever an EVSE's status is written, inside its transaction."""

from datetime import datetime

from dashboard.models import EvseStatusChange
from dashboard.rollup import RollupRow, status_change_add
from locations.models import Evse

_UNSET = object()


def evse_status_record(
    evse: Evse, at: datetime, *, new: object = _UNSET, pending: list[RollupRow] | None = None
) -> None:
    """Record the EVSE's status from `at` when it changed.

    With `new` (a PATCH, called before the change is applied: `evse.status` is still the old one): a row only when
    `new` is a status other than the current one, so the hot path costs one INSERT on a change and nothing otherwise.
    Without it (a PUT, called after the row is saved): a row unless the status equals the last one recorded.
    `pending`: as for `status_change_add` (the rollup rows left to the caller to write).
    """
    if new is not _UNSET:
        if isinstance(new, str) and new and new != evse.status:
            status_change_add(evse.pk, new, at, pending=pending)
        return
    if evse.pk is None or not evse.status:
        return
    last = EvseStatusChange.objects.filter(evse_id=evse.pk).order_by("-since", "-pk").values_list("status", flat=True)
    if last.first() != evse.status:
        status_change_add(evse.pk, evse.status, at, pending=pending)
