"""Pull sync: partners' Sender lists into our receiver tables (DESIGN.md Flows, issue #3).

Incremental runs ask for `date_from` = the start of the last successful run and follow Link headers (the client
survives broken ones); a full run has no date filter and afterwards treats every object of the partner that was not
returned as no longer valid (the module decides what that means: EVSEs REMOVED, tariffs deleted). One run per
partner and module at a time; progress (pages, objects, errors) is saved after every page.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ocpi_core.client import OcpiClient, PartnerCallError
from ocpi_core.constants import InterfaceRole
from ocpi_core.envelope import format_datetime
from ocpi_core.exceptions import InvalidParameters, OcpiError
from ocpi_core.models import Partner, SyncRun, SyncState

logger = logging.getLogger(__name__)

_STALE_RUN = timedelta(hours=2)  # a run "running" longer than this died with its worker
_MAX_MESSAGES = 20


@dataclass(frozen=True)
class PullModule:
    """How one module's partner objects are pulled.

    `upsert(partner=, data=)` stores one pulled object (validating it and checking the partner owns it) and returns
    its key; `remove_missing(partner=, keep=)` handles, after a full run, the partner's objects not returned.
    """

    module: str
    upsert: Callable[..., Any]
    remove_missing: Callable[..., int]


_MODULES: dict[str, PullModule] = {}


def pull_module_register(module: PullModule) -> None:
    """Called by module apps (AppConfig.ready) to make their partner objects pullable."""
    _MODULES[module.module] = module


def pull_modules() -> list[str]:
    return sorted(_MODULES)


class SyncBusy(InvalidParameters):
    """Another sync of the same partner and module is running."""


def _acquire(partner: Partner, module: str) -> SyncState:
    now = timezone.now()
    with transaction.atomic():
        state, _ = SyncState.objects.select_for_update().get_or_create(partner=partner, module=module)
        if state.running_since is not None and now - state.running_since < _STALE_RUN:
            raise SyncBusy(f"A {module} sync with {partner} is running since {format_datetime(state.running_since)}")
        state.running_since = now
        state.save(update_fields=["running_since"])
    return state


def sync_run(*, partner: Partner, module: str, full: bool = False) -> SyncRun:
    """Pull one module from one partner. Returns the finished SyncRun (SUCCEEDED or FAILED)."""
    spec = _MODULES[module]
    state = _acquire(partner, module)
    started = timezone.now()
    incremental_from = None if full else state.last_success_at
    run = SyncRun.objects.create(
        partner=partner,
        module=module,
        kind=SyncRun.Kind.FULL if full else SyncRun.Kind.INCREMENTAL,
        date_from=incremental_from,
    )
    messages: list[str] = []
    try:
        endpoint = partner.endpoint_url(module, InterfaceRole.SENDER)
        if partner.status != Partner.Status.REGISTERED or endpoint is None:
            raise InvalidParameters(f"{partner} is not registered or offers no {module} sender")
        params = {"date_from": format_datetime(incremental_from)} if incremental_from else {}
        client = OcpiClient.for_partner(partner)
        seen: set[Any] = set()
        for page in client.iter_pages(endpoint, params=params, limit=partner.page_size):
            run.pages += 1
            if run.total is None:
                try:
                    run.total = int(page.headers.get("X-Total-Count", ""))
                except ValueError:
                    run.total = None
            for data in page.data:
                try:
                    seen.add(spec.upsert(partner=partner, data=data))
                    run.received += 1
                except OcpiError as exc:  # one bad object does not stop the others (REFERENCE §2.5)
                    run.errors += 1
                    if len(messages) < _MAX_MESSAGES:
                        messages.append(exc.message[:300])
            run.message = "\n".join(messages)
            run.save(update_fields=["pages", "total", "received", "errors", "message"])
        if full:
            run.removed = spec.remove_missing(partner=partner, keep=seen)
        run.status = SyncRun.Status.SUCCEEDED
        state.last_success_at = started  # changes made while we pulled come again next time (date_from inclusive)
        if full:
            state.last_full_at = started
    except (PartnerCallError, OcpiError) as exc:
        run.status = SyncRun.Status.FAILED
        messages.insert(0, exc.message[:1000])
        logger.warning("Sync failed", extra={"partner": partner.name, "ocpi_module": module, "error": exc.message})
    finally:
        state.running_since = None
        state.save(update_fields=["running_since", "last_success_at", "last_full_at"])
        run.finished_at = timezone.now()
        run.message = "\n".join(messages)
        run.save()
    return run


def sync_targets() -> list[tuple[Partner, str]]:
    """(partner, module) pairs to pull: registered partners offering the SENDER interface of a pullable module."""
    pairs = []
    for partner in Partner.objects.filter(status=Partner.Status.REGISTERED).prefetch_related("endpoints"):
        for module in pull_modules():
            if partner.endpoint_url(module, InterfaceRole.SENDER):
                pairs.append((partner, module))
    return pairs
