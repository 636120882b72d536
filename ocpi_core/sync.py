"""Pull sync: partners' Sender lists into our receiver tables (DESIGN.md Flows, issue #3).

Incremental runs ask for `date_from` = the start of the last successful run and follow Link headers (the client
survives broken ones); a full run has no date filter and afterwards treats every object of the partner that was not
returned as no longer valid (the module decides what that means: EVSEs REMOVED, tariffs deleted). One run per
partner and module at a time; progress (pages, objects, errors) is saved after every page. A failed run leaves
`last_success_at` where it was, so the next run asks again for everything the failed one may have missed.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from ocpi_core.client import OcpiClient, PartnerCallError
from ocpi_core.constants import InterfaceRole, Role
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import InvalidParameters, OcpiError
from ocpi_core.metrics import sync_finished
from ocpi_core.models import Partner, Party, SyncRun, SyncState
from ocpi_core.routing import Routing

logger = logging.getLogger(__name__)

# A run "running" longer than this died with its worker and may be taken over; longer than the task's time limit.
SYNC_STALE_AFTER = timedelta(hours=2)
_MAX_MESSAGES = 20
# Errors storing one object that are about that object's data (one bad object does not stop the others).
_OBJECT_ERRORS = (DataError, IntegrityError, ValueError, TypeError, KeyError, AttributeError)


def ocpi_object_key(data: Any) -> tuple[str, str, str] | None:
    """(COUNTRY_CODE, PARTY_ID, ID) of a top-level OCPI object, upper-cased (CiString); None when it has none."""
    if not isinstance(data, dict):
        return None
    parts = (data.get("country_code"), data.get("party_id"), data.get("id"))
    if not all(isinstance(part, str) and part for part in parts):
        return None
    return tuple(str(part).upper() for part in parts)  # type: ignore[return-value]


@dataclass(frozen=True)
class PullModule:
    """How one module's partner objects are pulled.

    `upsert(partner=, data=)` stores one pulled object (validating it and checking the partner owns it; an
    `OcpiError` says why it was refused) and returns its key; `remove_missing(partner=, keep=)` handles, after a full
    run, the partner's objects whose keys are not in `keep`. `key(data)` gives the key of a listed object even when
    it is invalid (so a full run does not retire an object the partner still lists); it must agree with what `upsert`
    returns.
    """

    module: str
    upsert: Callable[..., Any]
    remove_missing: Callable[..., int]
    key: Callable[[Any], Any] = ocpi_object_key
    sender_role: str = Role.CPO  # the partner's party serving the list (OCPI-to-*)
    receiver_role: str = Role.EMSP  # our party asking for it (OCPI-from-*)


_MODULES: dict[str, PullModule] = {}


def pull_module_register(module: PullModule) -> None:
    """Called by module apps (AppConfig.ready) to make their partner objects pullable."""
    _MODULES[module.module] = module


def pull_modules() -> list[str]:
    return sorted(_MODULES)


class SyncBusy(InvalidParameters):
    """Another sync of the same partner and module is running."""


def _acquire(partner: Partner, module: str) -> SyncState:
    """Mark the (partner, module) pair as running, or raise SyncBusy. A stale mark (its worker died) is taken over
    and the runs it left RUNNING are closed as FAILED."""
    now = timezone.now()
    with transaction.atomic():
        state, _ = SyncState.objects.select_for_update().get_or_create(partner=partner, module=module)
        if state.running_since is not None:
            if now - state.running_since < SYNC_STALE_AFTER:
                raise SyncBusy(
                    f"A {module} sync with {partner} is running since {format_datetime(state.running_since)}"
                )
            abandoned = f"Abandoned: still running after {SYNC_STALE_AFTER}, taken over by a new run"
            SyncRun.objects.filter(partner=partner, module=module, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED, finished_at=now, message=abandoned
            )
            logger.warning("Taking over a stale sync", extra={"partner": partner.name, "ocpi_module": module})
        state.running_since = now
        state.save(update_fields=["running_since"])
    return state


def _routing(partner: Partner, spec: PullModule) -> Routing:
    """Routing headers of a Sender list GET (REFERENCE §2.10): from = our party receiving the module, to = the
    partner's party serving it, or the hub ("GET All via hub"). A side with several such parties leaves its pair out
    (one pull asks for all of them; naming one could narrow the list to it)."""

    def single(parties: list[Party]) -> tuple[str, str]:
        return (parties[0].country_code, parties[0].party_id) if len(parties) == 1 else ("", "")

    ours = single(list(Party.objects.filter(partner__isnull=True, role=spec.receiver_role)))
    theirs = list(partner.parties.filter(role=spec.sender_role)) or list(partner.parties.filter(role=Role.HUB))
    return Routing(*ours, *single(theirs))


def _describe(spec: PullModule, data: Any, page: int, index: int) -> str:
    """How an operator finds a refused object: its owner and id (a token's uid), else its place in the list."""
    key = spec.key(data)
    if isinstance(key, tuple) and len(key) >= 3 and all(isinstance(part, str) and part for part in key[:3]):
        return f"{key[0]}*{key[1]} {key[2]}"
    return f"object {index + 1} of page {page}"


def _message(failure: str, errors: list[str], error_count: int) -> str:
    """SyncRun.message: the failure reason first, then the first refused objects."""
    lines = [f"Failed: {failure}"] if failure else []
    lines += errors
    if error_count > len(errors):
        lines.append(f"... and {error_count - len(errors)} more refused objects")
    return "\n".join(lines)


def sync_run(*, partner: Partner, module: str, full: bool = False) -> SyncRun:
    """Pull one module from one partner. Returns the finished SyncRun (SUCCEEDED or FAILED); raises SyncBusy when
    a sync of the same partner and module is running, InvalidParameters for a module nobody registered."""
    spec = _MODULES.get(module)
    if spec is None:
        raise InvalidParameters(f"{module!r} is not a pullable module (known: {', '.join(pull_modules())})")
    state = _acquire(partner, module)
    started = timezone.now()
    incremental_from = None if full else state.last_success_at
    run = SyncRun.objects.create(
        partner=partner,
        module=module,
        kind=SyncRun.Kind.FULL if full else SyncRun.Kind.INCREMENTAL,
        date_from=incremental_from,
    )
    errors: list[str] = []
    failure = ""
    try:
        endpoint = partner.endpoint_url(module, InterfaceRole.SENDER)
        if partner.status != Partner.Status.REGISTERED or endpoint is None:
            raise InvalidParameters(f"{partner} is not registered or offers no {module} sender")
        params = {"date_from": format_datetime(incremental_from)} if incremental_from else {}
        client = OcpiClient.for_partner(partner, routing=_routing(partner, spec))
        seen: set[Any] = set()
        for page in client.iter_pages(endpoint, params=params, limit=partner.page_size):
            run.pages += 1
            if run.total is None:
                total = page.headers.get("X-Total-Count", "")
                run.total = int(total) if total.isdigit() else None
            for index, data in enumerate(page.data):
                try:
                    seen.add(spec.upsert(partner=partner, data=data))
                    run.received += 1
                except (OcpiError, *_OBJECT_ERRORS) as exc:  # one bad object does not stop the others (§2.5)
                    if not isinstance(exc, OcpiError):
                        logger.exception("Storing a pulled object failed", extra={"partner": partner.name})
                    listed = spec.key(data)
                    if listed is not None:
                        seen.add(listed)  # listed, even if refused: a full run must not retire it
                    run.errors += 1
                    if len(errors) < _MAX_MESSAGES:
                        reason = exc.message if isinstance(exc, OcpiError) else f"{exc.__class__.__name__}: {exc}"
                        errors.append(f"{_describe(spec, data, run.pages, index)}: {reason}"[:300])
            run.message = _message("", errors, run.errors)
            run.save(update_fields=["pages", "total", "received", "errors", "message"])
        if full:
            run.removed = spec.remove_missing(partner=partner, keep=seen)
        run.status = SyncRun.Status.SUCCEEDED
        state.last_success_at = started  # changes made while we pulled come again next time (date_from inclusive)
        if full:
            state.last_full_at = started
    except (PartnerCallError, OcpiError) as exc:
        run.status = SyncRun.Status.FAILED
        failure = exc.message[:1000]
        logger.warning("Sync failed", extra={"partner": partner.name, "ocpi_module": module, "error": exc.message})
    except Exception as exc:  # a bug or the database: the run must not stay RUNNING, nor count as a success
        run.status = SyncRun.Status.FAILED
        failure = f"unexpected {exc.__class__.__name__}: {exc}"[:1000]
        logger.exception("Sync failed unexpectedly", extra={"partner": partner.name, "ocpi_module": module})
    finally:
        state.running_since = None
        state.save(update_fields=["running_since", "last_success_at", "last_full_at"])
        run.finished_at = timezone.now()
        run.message = _message(failure, errors, run.errors)
        run.save()
    sync_finished(module, run.status, started)
    logger.info(
        "Sync finished",
        extra={
            "partner": partner.name,
            "ocpi_module": module,
            "kind": run.kind,
            "status": run.status,
            "pages": run.pages,
            "received": run.received,
            "errors": run.errors,
            "removed": run.removed,
        },
    )
    return run


def sync_targets() -> list[tuple[Partner, str]]:
    """(partner, module) pairs to pull: registered partners offering the SENDER interface of a pullable module."""
    pairs = []
    for partner in Partner.objects.filter(status=Partner.Status.REGISTERED).prefetch_related("endpoints"):
        for module in pull_modules():
            if partner.endpoint_url(module, InterfaceRole.SENDER):
                pairs.append((partner, module))
    return pairs
