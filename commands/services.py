"""Commands services: the only writers of Command and Reservation (STYLE.md §4).

CPO side (REFERENCE §11.1, §11.3): `command_receive` validates a partner's command, stores it and decides the
immediate CommandResponse; `command_execute` (a Celery task, after the commit) hands it to the charge point gateway;
`command_result_report` records the charger's outcome (from the gateway, the webhook backend's platform API call or
the watchdog's TIMEOUT) and `command_result_send` POSTs the CommandResult to the eMSP's `response_url`.

eMSP side (REFERENCE §11.2): `command_send` POSTs one of the five commands to a partner CPO with a response_url of
its own, `command_result_receive` stores the CommandResult the CPO posts back, the watchdog marks silent ones.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from commands.choices import CommandResponseType, CommandResultType, CommandType
from commands.models import Command, Reservation
from gateway.base import GatewayCommand, gateway_for
from gateway.services import gateway_name_for
from locations.models import Connector, Evse, Location
from ocpi_core.client import OcpiClient, PartnerCallError, PartnerUnreachable, UnsafeUrl, url_check
from ocpi_core.constants import ModuleID, Role
from ocpi_core.envelope import parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound, UnknownLocation
from ocpi_core.metrics import command_result_recorded
from ocpi_core.models import Partner, Party
from ocpi_core.registry import absolute_url
from ocpi_core.routing import Routing
from ocpi_core.selectors import hub_relayed_party, own_parties_for_request, partner_owns_party
from ocpi_core.validation import validate

logger = logging.getLogger(__name__)

# The OCPI object each CommandType carries (REFERENCE §11.4).
REQUEST_TYPES: dict[str, str] = {
    CommandType.START_SESSION: "StartSession",
    CommandType.STOP_SESSION: "StopSession",
    CommandType.RESERVE_NOW: "ReserveNow",
    CommandType.CANCEL_RESERVATION: "CancelReservation",
    CommandType.UNLOCK_CONNECTOR: "UnlockConnector",
}
# EVSE capabilities that announce support of a command (REFERENCE §6.5 Capability), checked when the EVSE lists any.
_CAPABILITY: dict[str, str] = {
    CommandType.START_SESSION: "REMOTE_START_STOP_CAPABLE",
    CommandType.RESERVE_NOW: "RESERVABLE",
    CommandType.UNLOCK_CONNECTOR: "UNLOCK_CAPABLE",
}
RESULT_SEND_ATTEMPTS = 3  # CommandResult POSTs retried on connection failures only (there are no OCPI retries)


def display_text(text: str) -> list[dict[str, str]]:
    """A DisplayText list in English (CommandResponse/CommandResult `message`)."""
    return [{"language": "en", "text": text[:512]}]


def command_response_body(command: Command) -> dict[str, Any]:
    """The CommandResponse of a received command."""
    body: dict[str, Any] = {"result": command.response_result, "timeout": command.response_timeout or 0}
    if command.response_message:
        body["message"] = command.response_message
    return body


def command_result_body(command: Command) -> dict[str, Any]:
    """The CommandResult of a received command."""
    body: dict[str, Any] = {"result": command.result}
    if command.result_message:
        body["message"] = command.result_message
    return body


# --- CPO side: receiving ---


@dataclass(frozen=True)
class Decision:
    """The immediate answer to a received command: what to store and what to answer."""

    result: str
    message: str = ""


def _cpo_location(routing: Routing, location_id: str) -> Location:
    """One of our own CPO locations the request may address (2003 with a REJECTED CommandResponse otherwise)."""
    parties = own_parties_for_request(routing=routing, role=Role.CPO)
    owners = Q(pk__in=[])
    for party in parties:
        owners |= Q(country_code__iexact=party.country_code, party_id__iexact=party.party_id)
    location = Location.objects.filter(owners, partner__isnull=True, ocpi_id__iexact=location_id).first()
    if location is None:
        # HTTP 200: the request is valid JSON and addresses an existing resource (the commands endpoint; the location
        # is only named in the body), so no HTTP error may be returned (status_codes); the OCPI status says 2003.
        raise UnknownLocation(
            f"Unknown location {location_id}",
            http_status=200,
            data={"result": CommandResponseType.REJECTED, "timeout": 0, "message": display_text("Unknown location")},
        )
    return location


def _evse(location: Location, uid: str | None) -> Evse | None:
    return location.evses.filter(uid__iexact=uid).first() if uid else None


def _connector(evse: Evse | None, connector_id: str | None) -> Connector | None:
    if evse is None or not connector_id:
        return None
    return evse.connectors.filter(ocpi_id__iexact=connector_id).first()


def _unsupported(evse: Evse | None, command_type: str) -> bool:
    """Does the EVSE announce capabilities without the one this command needs?"""
    needed = _CAPABILITY.get(command_type)
    capabilities = evse.capabilities if evse is not None else None
    return bool(needed and isinstance(capabilities, list) and capabilities and needed not in capabilities)


def _emsp_party(partner: Partner, routing: Routing, token: dict[str, Any] | None) -> tuple[str, str]:
    """The calling eMSP party: the token's owner (START_SESSION, RESERVE_NOW), else the OCPI-from headers, else the
    partner's only eMSP party."""
    if token:
        return str(token.get("country_code", "")), str(token.get("party_id", ""))
    if routing.has_from:
        return routing.from_country_code, routing.from_party_id
    party = partner.parties.filter(role=Role.EMSP).order_by("pk").first()
    return (party.country_code, party.party_id) if party else ("", "")


def _is_hub(partner: Partner) -> bool:
    return partner.parties.filter(role=Role.HUB).exists()


def _owns_token(partner: Partner, routing: Routing, country_code: str, party_id: str) -> bool:
    """eMSPs may only use their own tokens (REFERENCE §11.3). A hub relays for its members: for the party named in
    `OCPI-from-*` (the requesting party, REFERENCE §2.10) only that party's; naming none or itself, any."""
    if _is_hub(partner):
        relayed = hub_relayed_party(partner=partner, routing=routing)
        return relayed is None or relayed == (country_code.upper(), party_id.upper())
    return partner_owns_party(partner=partner, country_code=country_code, party_id=party_id)


def _check_request(command_type: str, data: Any) -> dict[str, Any]:
    """Field rules of the command object plus the rules the field table cannot express (2001 naming the field)."""
    if command_type not in REQUEST_TYPES:
        raise InvalidParameters(
            f"Unknown command {command_type!r}: expected one of {', '.join(REQUEST_TYPES)}", http_status=404
        )
    validate(REQUEST_TYPES[command_type], data)
    if data.get("connector_id") and not data.get("evse_uid"):
        raise InvalidParameters("evse_uid: is required when connector_id is given")
    if command_type == CommandType.RESERVE_NOW:
        data["_expiry"] = parse_datetime(data["expiry_date"])
    try:
        url_check(data["response_url"])
    except UnsafeUrl as exc:
        raise InvalidParameters(f"response_url: {exc.message}") from exc
    except PartnerUnreachable:
        pass  # a name that does not resolve now may later; the POST of the result retries
    return data


def _find_session(routing: Routing, session_id: str) -> Any:
    """One of our own sessions (sessions_app), by its OCPI id, among the CPO parties addressed."""
    from sessions_app.models import Session

    owners = Q(pk__in=[])
    for party in own_parties_for_request(routing=routing, role=Role.CPO):
        owners |= Q(country_code__iexact=party.country_code, party_id__iexact=party.party_id)
    return Session.objects.filter(owners, partner__isnull=True, ocpi_id__iexact=session_id).first()


def _session_of_partner(partner: Partner, routing: Routing, session: Any) -> bool:
    """Was the session started with a token of this partner (REFERENCE §11.3: STOP only for the caller's own)?"""
    return _owns_token(partner, routing, session.token_country_code, session.token_party_id)


@transaction.atomic
def command_receive(*, partner: Partner, command_type: str, data: Any, routing: Routing) -> Command:
    """CPO Receiver: validate a partner's command, store it, decide the CommandResponse; an accepted command is
    carried out after the commit (command_execute_task). Bad input raises 2001 and stores nothing; an unknown
    location raises 2003 carrying a REJECTED CommandResponse (REFERENCE §11.3)."""
    data = _check_request(command_type, data)
    expiry = data.pop("_expiry", None)
    token = data.get("token") if isinstance(data.get("token"), dict) else None
    location: Location | None = None
    evse: Evse | None = None
    session: Any = None
    decision = Decision(CommandResponseType.ACCEPTED)
    reservation: Reservation | None = None
    emsp_cc, emsp_pid = _emsp_party(partner, routing, token)

    if command_type in (CommandType.START_SESSION, CommandType.RESERVE_NOW, CommandType.UNLOCK_CONNECTOR):
        location = _cpo_location(routing, data["location_id"])
        evse = _evse(location, data.get("evse_uid"))
        if data.get("evse_uid") and evse is None:
            decision = Decision(CommandResponseType.REJECTED, f"Unknown EVSE {data['evse_uid']}")
        elif data.get("connector_id") and _connector(evse, data["connector_id"]) is None:
            decision = Decision(CommandResponseType.REJECTED, f"Unknown connector {data['connector_id']}")
        elif (
            command_type == CommandType.START_SESSION
            and evse is not None
            and "START_SESSION_CONNECTOR_REQUIRED" in (evse.capabilities or [])
            and not data.get("connector_id")
        ):
            raise InvalidParameters("connector_id: is required, the EVSE has START_SESSION_CONNECTOR_REQUIRED")
        elif _unsupported(evse, command_type):
            decision = Decision(CommandResponseType.NOT_SUPPORTED, "The EVSE does not support this command")
        elif token is not None and not _owns_token(partner, routing, emsp_cc, emsp_pid):
            decision = Decision(CommandResponseType.REJECTED, "eMSPs may only use their own tokens")
        elif command_type == CommandType.RESERVE_NOW and expiry is not None and expiry <= timezone.now():
            decision = Decision(CommandResponseType.REJECTED, "expiry_date is in the past")
    elif command_type == CommandType.STOP_SESSION:
        session = _find_session(routing, data["session_id"])
        if session is None:
            decision = Decision(CommandResponseType.UNKNOWN_SESSION, f"Unknown session {data['session_id']}")
        elif not _session_of_partner(partner, routing, session):
            decision = Decision(CommandResponseType.REJECTED, "The session was not started by this eMSP")
        elif session.status not in ("ACTIVE", "PENDING", "RESERVATION"):
            decision = Decision(CommandResponseType.REJECTED, f"The session is {session.status}")
    elif command_type == CommandType.CANCEL_RESERVATION:
        reservation = _reservation_find(partner, routing, data["reservation_id"])
        if reservation is not None:  # the eMSP party that made it (a partner may have several)
            emsp_cc, emsp_pid = reservation.emsp_country_code, reservation.emsp_party_id

    now = timezone.now()
    accepted = decision.result == CommandResponseType.ACCEPTED
    timeout = settings.OCPI_COMMAND_TIMEOUT if accepted else 0
    target_location = location.ocpi_id if location else (session.location_id if session else "")
    if reservation is not None:
        target_location = reservation.location_id
    owner: Any = location or session or reservation  # whose CPO party the command is for
    # The CPO party answering, for the CommandResult's routing headers: the owner's, else (a reservation we do not
    # know) the party the request was addressed to, or our only CPO party.
    cpo_party: Any = owner if owner is not None else _addressed_cpo_party(routing)
    command = Command.objects.create(
        direction=Command.Direction.RECEIVED,
        partner=partner,
        command_type=command_type,
        response_url=data["response_url"],
        request=data,
        cpo_country_code=cpo_party.country_code if cpo_party is not None else "",
        cpo_party_id=cpo_party.party_id if cpo_party is not None else "",
        emsp_country_code=emsp_cc[:2],
        emsp_party_id=emsp_pid[:3],
        location_id=target_location or "",
        evse_uid=data.get("evse_uid") or (session.evse_uid if session else "") or "",
        connector_id=data.get("connector_id") or (session.connector_id if session else "") or "",
        session_id=data.get("session_id") or "",
        reservation_id=data.get("reservation_id") or "",
        authorization_reference=data.get("authorization_reference") or "",
        gateway=gateway_name_for(location_id=target_location, country_code=owner.country_code, party_id=owner.party_id)
        if accepted and owner is not None
        else "",
        state=Command.State.WAITING if accepted else Command.State.CLOSED,
        response_result=decision.result,
        response_timeout=timeout,
        response_message=display_text(decision.message) if decision.message else None,
        responded_at=now,
        deadline_at=now + timedelta(seconds=timeout) if accepted else None,
    )
    # A new reservation's pk is the charge point's reservation number; a replacement keeps it.
    new_reservation = command_type == CommandType.RESERVE_NOW and not _reservations_of(command).exists()
    if accepted and new_reservation and location is not None:
        Reservation.objects.create(
            partner=partner,
            emsp_country_code=emsp_cc,
            emsp_party_id=emsp_pid,
            reservation_id=data["reservation_id"],
            country_code=location.country_code,
            party_id=location.party_id,
            location_id=location.ocpi_id,
            evse_uid=data.get("evse_uid") or "",
            expiry_date=expiry,
            status=Reservation.Status.ENDED,  # becomes ACTIVE when the charger accepts
            command=command,
        )
    if accepted:
        from commands.tasks import command_execute_task, enqueue

        transaction.on_commit(lambda: enqueue(command_execute_task, command.pk))
    return command


def _addressed_cpo_party(routing: Routing) -> Party | None:
    """The own CPO party a request is addressed to (`OCPI-to-*`), or the only one we have; None when it is unclear."""
    parties = list(own_parties_for_request(routing=routing, role=Role.CPO)[:2])
    return parties[0] if len(parties) == 1 else None


def _reservation_find(partner: Partner, routing: Routing, reservation_id: str) -> Reservation | None:
    """A reservation of this partner (and of the calling eMSP party when the routing headers name it): eMSPs never
    reach each other's reservations (REFERENCE §11.3)."""
    queryset = Reservation.objects.filter(partner=partner, reservation_id__iexact=reservation_id)
    if routing.has_from:
        queryset = queryset.filter(
            emsp_country_code__iexact=routing.from_country_code, emsp_party_id__iexact=routing.from_party_id
        )
    return queryset.order_by("-updated_at").first()


# --- CPO side: carrying out ---


def _reservations_of(command: Command) -> Any:
    """The reservation a RESERVE_NOW / CANCEL_RESERVATION is about: this partner's, this eMSP party's, by the eMSP's
    reservation_id (CiString: case-insensitive)."""
    return Reservation.objects.filter(
        partner=command.partner,
        emsp_country_code__iexact=command.emsp_country_code,
        emsp_party_id__iexact=command.emsp_party_id,
        reservation_id__iexact=command.reservation_id,
    )


def gateway_command(command: Command) -> GatewayCommand:
    """The gateway's view of a received command (ids resolved, the reservation number charge-point-unique)."""
    data = command.request
    reservation = None
    if command.command_type in (CommandType.RESERVE_NOW, CommandType.CANCEL_RESERVATION):
        reservation = _reservations_of(command).first()
    expiry = data.get("expiry_date")
    return GatewayCommand(
        command_id=command.pk,
        command_type=command.command_type,
        country_code=command.cpo_country_code,
        party_id=command.cpo_party_id,
        location_id=command.location_id,
        evse_uid=command.evse_uid or None,
        connector_id=command.connector_id or None,
        token=data.get("token") or {},
        authorization_reference=command.authorization_reference or None,
        session_id=command.session_id or (reservation.session_id if reservation else None) or None,
        reservation_id=reservation.pk if reservation else None,
        expiry_date=parse_datetime(expiry) if expiry else None,
    )


def command_execute(*, command_id: int) -> str | None:
    """Hand an accepted command to the gateway serving its location; an immediate outcome is reported at once.
    Returns the outcome (None: it will be reported later, or the watchdog answers TIMEOUT)."""
    claimed = Command.objects.filter(
        pk=command_id, direction=Command.Direction.RECEIVED, state=Command.State.WAITING, dispatched_at__isnull=True
    ).update(dispatched_at=timezone.now())
    command = Command.objects.select_related("partner").get(pk=command_id)
    if not claimed:
        return command.result or None  # already handed over (a task delivered twice), answered or timed out
    if command.command_type == CommandType.CANCEL_RESERVATION:
        reservation = _reservations_of(command).filter(status=Reservation.Status.ACTIVE).first()
        if reservation is None:
            command_result_report(command_id=command.pk, result=CommandResultType.UNKNOWN_RESERVATION)
            return CommandResultType.UNKNOWN_RESERVATION
    request = gateway_command(command)
    gateway = gateway_for(location_id=command.location_id, country_code=request.country_code, party_id=request.party_id)
    if command.command_type == CommandType.START_SESSION:
        outcome = gateway.start_session(command=request)
    elif command.command_type == CommandType.STOP_SESSION:
        from sessions_app.models import Session

        session = Session.objects.filter(
            partner__isnull=True,
            country_code__iexact=command.cpo_country_code,
            party_id__iexact=command.cpo_party_id,
            ocpi_id__iexact=command.session_id,
        ).first()
        outcome = gateway.stop_session(command=request, session=session) if session else CommandResultType.FAILED
    elif command.command_type == CommandType.RESERVE_NOW:
        outcome = gateway.reserve_now(command=request)
    elif command.command_type == CommandType.CANCEL_RESERVATION:
        outcome = gateway.cancel_reservation(command=request)
    else:
        outcome = gateway.unlock_connector(command=request)
    if outcome is not None:
        command_result_report(command_id=command.pk, result=outcome)
    return outcome


@transaction.atomic
def command_result_report(
    *, command_id: int, result: str, message: str | None = None, session_id: str | None = None
) -> bool:
    """Record the charger's outcome of a received command and send it to the eMSP (after the commit). Only the first
    outcome counts: a late answer after TIMEOUT is ignored (returns False). `session_id` lets a gateway name the
    RESERVATION session a RESERVE_NOW created."""
    if result not in CommandResultType.values:
        raise InvalidParameters(f"result: must be one of the CommandResultType values, not {result!r}")
    now = timezone.now()
    updated = Command.objects.filter(
        pk=command_id, direction=Command.Direction.RECEIVED, state=Command.State.WAITING
    ).update(
        state=Command.State.TIMED_OUT if result == CommandResultType.TIMEOUT else Command.State.DONE,
        result=result,
        result_message=display_text(message) if message else None,
        result_at=now,
        result_delivery=Command.Delivery.PENDING,
        updated_at=now,
    )
    if not updated:
        return False
    command = Command.objects.get(pk=command_id)
    command_result_recorded(command)
    _reservation_apply(command, session_id)
    from commands.tasks import command_result_send_task, enqueue

    transaction.on_commit(lambda: enqueue(command_result_send_task, command_id))
    return True


def _reservation_apply(command: Command, session_id: str | None) -> None:
    """An accepted RESERVE_NOW (re)places the reservation; an accepted CANCEL_RESERVATION cancels it."""
    if command.result != CommandResultType.ACCEPTED:
        return
    reservations = _reservations_of(command)
    if command.command_type == CommandType.RESERVE_NOW:
        changes: dict[str, Any] = {
            "status": Reservation.Status.ACTIVE,
            "command": command,
            "country_code": command.cpo_country_code,
            "party_id": command.cpo_party_id,
            "location_id": command.location_id,
            "evse_uid": command.evse_uid,
            "expiry_date": parse_datetime(command.request["expiry_date"]),
            "updated_at": timezone.now(),
        }
        if session_id:
            changes["session_id"] = session_id
        reservations.update(**changes)
    elif command.command_type == CommandType.CANCEL_RESERVATION:
        reservations.update(status=Reservation.Status.CANCELED, updated_at=timezone.now())
    elif command.command_type == CommandType.START_SESSION:
        _reservation_used(command)


def _reservation_used(command: Command) -> None:
    """A START_SESSION accepted for the token of an active reservation at that place ends the reservation (the
    driver arrived; the charger turned the RESERVATION session into the charging one)."""
    uid = str((command.request.get("token") or {}).get("uid", "")).lower()
    candidates = Reservation.objects.filter(
        partner=command.partner,
        emsp_country_code__iexact=command.emsp_country_code,
        emsp_party_id__iexact=command.emsp_party_id,
        location_id__iexact=command.location_id,
        status=Reservation.Status.ACTIVE,
    ).select_related("command")
    for reservation in candidates:
        same_token = str((reservation.command.request.get("token") or {}).get("uid", "")).lower() == uid
        same_evse = not (reservation.evse_uid and command.evse_uid) or (
            reservation.evse_uid.lower() == command.evse_uid.lower()
        )
        if same_token and same_evse:
            Reservation.objects.filter(pk=reservation.pk).update(
                status=Reservation.Status.ENDED, updated_at=timezone.now()
            )


def command_result_send(*, command_id: int, attempt: int = 1) -> bool:
    """POST the CommandResult of a received command to the eMSP's response_url (SSRF-checked by the client).
    Returns True when it should be retried (a connection failure, attempts left); HTTP/OCPI refusals are final."""
    command = Command.objects.select_related("partner").get(pk=command_id)
    if command.result_delivery != Command.Delivery.PENDING:
        return False
    ok, error, retry = _post_result(
        command.partner, command.response_url, command_result_body(command), attempt, _result_routing(command)
    )
    if retry:
        Command.objects.filter(pk=command_id).update(result_attempts=attempt, result_error=error)
        return True
    Command.objects.filter(pk=command_id).update(
        result_delivery=Command.Delivery.DELIVERED if ok else Command.Delivery.FAILED,
        result_attempts=attempt,
        result_error=error,
        result_delivered_at=timezone.now() if ok else None,
        updated_at=timezone.now(),
    )
    return False


def _result_routing(command: Command) -> Routing | None:
    """Routing headers of a CommandResult: from our CPO party to the eMSP party that sent the command (REFERENCE
    §2.10; a hub needs them to forward it)."""
    if not (command.cpo_country_code and command.emsp_country_code):
        return None
    return Routing(command.cpo_country_code, command.cpo_party_id, command.emsp_country_code, command.emsp_party_id)


def _post_result(
    partner: Partner, url: str, body: dict[str, Any], attempt: int, routing: Routing | None = None
) -> tuple[bool, str, bool]:
    """(delivered, error, retry): one POST of a CommandResult through the one OCPI client."""
    try:
        OcpiClient.for_partner(partner).post(url, json=body, routing=routing)
    except PartnerUnreachable as exc:
        logger.warning("CommandResult not delivered", extra={"partner": partner.pk, "attempt": attempt})
        return False, exc.message, attempt < RESULT_SEND_ATTEMPTS
    except PartnerCallError as exc:
        logger.warning("CommandResult refused", extra={"partner": partner.pk, "error": exc.message})
        return False, exc.message, False
    return True, "", False


@transaction.atomic
def reservation_cancel_by_cpo(*, reservation: Reservation, message: str | None = None) -> None:
    """The CPO cancels a reservation itself (e.g. the charger broke): CANCELED_RESERVATION is POSTed to the
    response_url of the original RESERVE_NOW (REFERENCE §11.3)."""
    if reservation.status != Reservation.Status.ACTIVE:
        return
    Reservation.objects.filter(pk=reservation.pk).update(status=Reservation.Status.CANCELED, updated_at=timezone.now())
    request = GatewayCommand(
        command_id=reservation.command_id,
        command_type=CommandType.CANCEL_RESERVATION,
        country_code=reservation.country_code,
        party_id=reservation.party_id,
        location_id=reservation.location_id,
        evse_uid=reservation.evse_uid or None,
        reservation_id=reservation.pk,
        session_id=reservation.session_id or None,
    )
    gateway = gateway_for(
        location_id=reservation.location_id, country_code=reservation.country_code, party_id=reservation.party_id
    )
    gateway.cancel_reservation(command=request)  # free the charger; the eMSP is told whatever it answers
    from commands.tasks import enqueue, reservation_canceled_send_task

    transaction.on_commit(lambda: enqueue(reservation_canceled_send_task, reservation.pk, message))


def reservation_canceled_send(*, reservation_id: int, message: str | None = None, attempt: int = 1) -> bool:
    """POST CANCELED_RESERVATION to the RESERVE_NOW's response_url. Returns True when it should be retried."""
    reservation = Reservation.objects.select_related("command__partner").get(pk=reservation_id)
    body: dict[str, Any] = {"result": CommandResultType.CANCELED_RESERVATION}
    if message:
        body["message"] = display_text(message)
    command = reservation.command
    _ok, _error, retry = _post_result(command.partner, command.response_url, body, attempt, _result_routing(command))
    return retry


def command_watchdog(*, now: Any = None) -> int:
    """TIMEOUT for received commands whose gateway gave no outcome in time; sent commands whose CommandResult never
    came are marked timed out (a minute of grace beyond the CPO's timeout). Returns how many. Also re-enqueues work
    a broker outage kept from the workers (commands never handed to the gateway, results never sent)."""
    from commands.tasks import command_execute_task, command_result_send_task, enqueue

    now = now or timezone.now()
    count = 0
    received = Command.objects.filter(direction=Command.Direction.RECEIVED)
    lost = now - timedelta(seconds=30)  # handed to no worker (the broker was down when it was enqueued)
    for command_id in received.filter(
        state=Command.State.WAITING, dispatched_at__isnull=True, created_at__lt=lost, deadline_at__gte=now
    ).values_list("pk", flat=True)[:500]:
        enqueue(command_execute_task, command_id)
    for command_id in received.filter(
        result_delivery=Command.Delivery.PENDING, result_attempts=0, result_at__lt=lost
    ).values_list("pk", flat=True)[:500]:
        enqueue(command_result_send_task, command_id)
    due = received.filter(state=Command.State.WAITING, deadline_at__lt=now)
    for command_id in due.values_list("pk", flat=True)[:500]:
        count += command_result_report(command_id=command_id, result=CommandResultType.TIMEOUT)
    count += Command.objects.filter(
        direction=Command.Direction.SENT, state=Command.State.WAITING, deadline_at__lt=now - timedelta(minutes=1)
    ).update(state=Command.State.TIMED_OUT, updated_at=now)
    Reservation.objects.filter(status=Reservation.Status.ACTIVE, expiry_date__lt=now).update(
        status=Reservation.Status.ENDED, updated_at=now
    )
    return count


# --- eMSP side ---


def command_send(
    *,
    partner: Partner,
    command_type: str,
    data: dict[str, Any],
    emsp: Party | None = None,
) -> Command:
    """Send a command to a partner CPO's commands Receiver. `data` is the command object without `response_url`:
    ours is added, unique per command. The CommandResponse is stored; the CommandResult arrives later on
    `command_result_receive`. Raises InvalidParameters for a body that breaks the field rules (nothing stored)."""
    if command_type not in REQUEST_TYPES:
        raise InvalidParameters(f"command: unknown command type {command_type!r}")
    base = partner.endpoint_url(ModuleID.COMMANDS, "RECEIVER")
    if not base:
        raise NotFound(f"{partner} offers no commands Receiver")
    command = Command(
        direction=Command.Direction.SENT,
        partner=partner,
        command_type=command_type,
        state=Command.State.WAITING,
    )
    command.response_url = absolute_url(
        reverse("ocpi:emsp-commands-result", kwargs={"command": command_type, "uid": str(command.uid)})
    )
    body = {"response_url": command.response_url, **{k: v for k, v in data.items() if v not in (None, "")}}
    validate(REQUEST_TYPES[command_type], body)
    command.request = body
    command.location_id = body.get("location_id", "")
    command.evse_uid = body.get("evse_uid", "")
    command.connector_id = body.get("connector_id", "")
    command.session_id = body.get("session_id", "")
    command.reservation_id = body.get("reservation_id", "")
    command.authorization_reference = body.get("authorization_reference", "")
    session = _partner_session(partner, body)
    command.emsp_country_code, command.emsp_party_id = _command_emsp(body, emsp, session)
    command.cpo_country_code, command.cpo_party_id = _command_cpo(partner, body, session)
    command.save()
    # from = our eMSP party, to = the CPO party the command is for; no such CPO party (a hub): open routing
    routing = Routing(command.emsp_country_code, command.emsp_party_id, command.cpo_country_code, command.cpo_party_id)
    now = timezone.now()
    try:
        answer = OcpiClient.for_partner(partner).post(f"{base.rstrip('/')}/{command_type}", json=body, routing=routing)
    except PartnerCallError as exc:
        Command.objects.filter(pk=command.pk).update(
            state=Command.State.CLOSED, result_error=exc.message, responded_at=now, updated_at=now
        )
        command.refresh_from_db()
        return command
    response = answer.data if isinstance(answer.data, dict) else {}
    result = response.get("result")
    timeout = response.get("timeout")
    timeout = timeout if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout >= 0 else None
    accepted = result == CommandResponseType.ACCEPTED
    Command.objects.filter(pk=command.pk, state=Command.State.WAITING).update(
        response_result=result if result in CommandResponseType.values else "",
        response_timeout=timeout,
        response_message=response.get("message"),
        responded_at=now,
        state=Command.State.WAITING if accepted else Command.State.CLOSED,
        deadline_at=now + timedelta(seconds=timeout or settings.OCPI_COMMAND_TIMEOUT) if accepted else None,
        updated_at=now,
    )
    command.refresh_from_db()
    return command


def _partner_session(partner: Partner, body: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """The partner's session a command names (STOP_SESSION, as we hold it), read once for both parties: its CPO
    party and its token's eMSP party (country code, party id of each)."""
    from sessions_app.models import Session

    if not body.get("session_id"):
        return None
    return (
        Session.objects.filter(partner=partner, ocpi_id__lower=str(body["session_id"]).lower())
        .values_list("country_code", "party_id", "token_country_code", "token_party_id")
        .first()
    )


def _command_emsp(
    body: dict[str, Any], emsp: Party | None, session: tuple[str, str, str, str] | None
) -> tuple[str, str]:
    """Our eMSP party sending a command: the one chosen, else the token's, else the token owner of the partner's
    session (STOP_SESSION), else our first eMSP party."""
    if emsp is not None:
        return emsp.country_code, emsp.party_id
    token = body.get("token") or {}
    if token.get("country_code") and token.get("party_id"):
        return str(token["country_code"])[:2], str(token["party_id"])[:3]
    if session is not None and session[2]:
        return session[2], session[3]
    own = Party.objects.filter(partner__isnull=True, role=Role.EMSP).order_by("pk").first()
    return (own.country_code, own.party_id) if own is not None else ("", "")


def _command_cpo(partner: Partner, body: dict[str, Any], session: tuple[str, str, str, str] | None) -> tuple[str, str]:
    """The partner's CPO party a command is for: the owner of the location or session it names (as we hold them),
    else the partner's first CPO party; ('', '') for a hub (it routes on the content)."""
    owner: tuple[str, str] | None = None
    if body.get("location_id"):
        owner = (
            Location.objects.filter(partner=partner, ocpi_id__lower=str(body["location_id"]).lower())
            .values_list("country_code", "party_id")
            .first()
        )
    elif session is not None:
        owner = session[0], session[1]
    if owner is not None:
        return owner[0], owner[1]
    cpo = partner.parties.filter(role=Role.CPO).order_by("pk").first()
    return (cpo.country_code, cpo.party_id) if cpo is not None else ("", "")


@transaction.atomic
def command_result_receive(*, partner: Partner, command_type: str, uid: str, data: Any) -> Command:
    """eMSP side: a CPO POSTs the CommandResult of a command we sent to its unique response_url. Only the partner
    we sent it to may answer (404 otherwise); a later result (e.g. CANCELED_RESERVATION) replaces the earlier."""
    validate("CommandResult", data)
    command = (
        Command.objects.select_for_update()
        .filter(direction=Command.Direction.SENT, uid__iexact=uid, command_type=command_type, partner=partner)
        .first()
        if _is_uuid(uid)
        else None
    )
    if command is None:
        raise NotFound(f"No {command_type} command {uid} was sent to this partner")
    now = timezone.now()
    command.result = data["result"]
    command.result_message = data.get("message")
    command.result_at = now
    command.state = Command.State.TIMED_OUT if data["result"] == CommandResultType.TIMEOUT else Command.State.DONE
    command.save(update_fields=["result", "result_message", "result_at", "state", "updated_at"])
    command_result_recorded(command)
    return command


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
