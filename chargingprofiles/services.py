"""ChargingProfiles services: the only writers of ChargingProfileRequest and ActiveProfileUpdate (STYLE.md §4).

CPO Receiver (REFERENCE §12.1): a GET / PUT / DELETE on one of our own sessions is checked (2001 naming the field,
nothing stored), answered at once with a ChargingProfileResponse, and, when ACCEPTED, carried out by the charge point
gateway in a Celery task that POSTs the result to the sender's `response_url`. UNKNOWN_SESSION for a session we do not
have, or that the caller may not control (only the token's eMSP, a contracted SCSP (a partner with an SCSP role) or a
hub relaying for the token's eMSP may: the others must not learn that it exists); REJECTED for a session that is not
ACTIVE; TOO_OFTEN within OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS of the last accepted request for the session;
NOT_SUPPORTED when no gateway serves the location. A sender that set a profile successfully gets the session's
ActiveChargingProfile PUT to its own Sender endpoint whenever it changes (`chargingprofile_active_changed`).

eMSP/SCSP Sender (REFERENCE §12.2): operators (admin, platform API) send requests to a CPO partner; the answer and,
later, the result POSTed to our per-request `response_url` are stored, as are the CPO's unsolicited updates.
"""

import logging
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from chargingprofiles.models import (
    ActiveProfileUpdate,
    CallbackStatus,
    ChargingProfileRequest,
    Direction,
    Kind,
    ResponseType,
    ResultType,
)
from ocpi_core.client import OcpiClient, PartnerCallError, PartnerUnreachable, UnsafeUrl, url_check
from ocpi_core.constants import InterfaceRole, ModuleID, Role
from ocpi_core.exceptions import InvalidParameters, NotFound
from ocpi_core.models import Partner, Party
from ocpi_core.registry import absolute_url
from ocpi_core.routing import Routing
from ocpi_core.selectors import own_parties_for_request
from ocpi_core.validation import validate, validation_errors

logger = logging.getLogger(__name__)

ACTIVE = "ACTIVE"  # SessionStatus.ACTIVE: the only sessions whose charging can be limited
UPDATE_HORIZON = 900  # seconds covered by an unsolicited ActiveChargingProfile (guide: 5-60 minutes, §12.2)
_RESULT_TYPES = {
    Kind.ACTIVE: "ActiveChargingProfileResult",
    Kind.SET: "ChargingProfileResult",
    Kind.CLEAR: "ClearProfileResult",
}
_SESSION_ID = re.compile(r"[\x20-\x7e]{1,36}")
_DURATION = re.compile(r"[0-9]{1,9}")


# --- input checks (2001, naming the field) ---


def _response_url(value: Any, field: str = "response_url") -> str:
    """A response_url the sender gave: present, a URL of at most 255 characters that we may call (SSRF guard)."""
    if not isinstance(value, str) or not value:
        raise InvalidParameters(f"{field}: is required")
    errors = validation_errors(
        "SetChargingProfile", {"charging_profile": {"charging_rate_unit": "W"}, "response_url": value}
    )
    if errors:
        raise InvalidParameters("; ".join(e.replace("response_url", field, 1) for e in errors))
    try:
        url_check(value)
    except UnsafeUrl as exc:
        raise InvalidParameters(f"{field}: {exc.message}") from exc
    except PartnerUnreachable:
        pass  # a name that does not resolve now may resolve later: the result task checks again
    return value


def _duration(value: Any) -> int:
    if value is None or value == "":
        raise InvalidParameters("duration: is required")
    if not (isinstance(value, int) and not isinstance(value, bool)) and not (
        isinstance(value, str) and _DURATION.fullmatch(value)
    ):
        raise InvalidParameters("duration: must be a non-negative integer (seconds)")
    duration = int(value)
    if duration < 0:
        raise InvalidParameters("duration: must be a non-negative integer (seconds)")
    return duration


def _one_decimal(value: Any) -> bool:
    return Decimal(str(value)).as_tuple().exponent >= -1  # type: ignore[operator]


def charging_profile_check(profile: Any, path: str = "charging_profile") -> dict[str, Any]:
    """Field rules of a ChargingProfile (REFERENCE §12.3) beyond cardinality and types: limits and rates are
    non-negative with at most one decimal, durations and start periods non-negative, start periods unique."""
    errors = [
        f"{path}.{e}" if e[0] != "b" else f"{path}: must be a JSON object (ChargingProfile)"
        for e in validation_errors("ChargingProfile", profile)
    ]
    if errors:
        raise InvalidParameters("; ".join(errors))
    if profile.get("duration") is not None and profile["duration"] < 0:
        errors.append(f"{path}.duration: must not be negative")
    rate = profile.get("min_charging_rate")
    if rate is not None and (rate < 0 or not _one_decimal(rate)):
        errors.append(f"{path}.min_charging_rate: must be non-negative with at most one decimal")
    starts: set[int] = set()
    for index, period in enumerate(profile.get("charging_profile_period") or []):
        where = f"{path}.charging_profile_period[{index}]"
        if period["start_period"] < 0:
            errors.append(f"{where}.start_period: must not be negative")
        elif int(period["start_period"]) in starts:
            errors.append(f"{where}.start_period: {period['start_period']} appears twice")
        starts.add(int(period["start_period"]))
        if period["limit"] < 0 or not _one_decimal(period["limit"]):
            errors.append(f"{where}.limit: must be non-negative with at most one decimal")
    if errors:
        raise InvalidParameters("; ".join(errors))
    return profile


def _session_id(value: str) -> str:
    if not _SESSION_ID.fullmatch(value):
        raise InvalidParameters("session_id: must be 1 to 36 printable ASCII characters")
    return value


# --- CPO Receiver ---


def _own_session(session_id: str, routing: Routing, *, lock: bool) -> Any:
    """One of our own sessions, of the CPO parties the request is addressed to, or None."""
    from sessions_app.models import Session

    parties = own_parties_for_request(routing=routing, role=Role.CPO)
    sessions = Session.objects.filter(partner__isnull=True, ocpi_id__lower=session_id.lower())
    if lock:
        sessions = sessions.select_for_update()
    for session in sessions:
        if any(
            p.country_code.lower() == session.country_code.lower() and p.party_id.lower() == session.party_id.lower()
            for p in parties
        ):
            return session
    return None


def _controller(partner: Partner, routing: Routing, session: Any) -> tuple[str, str] | None:
    """The party that may control the session's charging on behalf of the calling partner, or None (REFERENCE §12:
    the token's eMSP, or a party the CPO has a contract with: a registered SCSP; a hub relays for the token's eMSP)."""
    owner = (session.token_country_code.lower(), session.token_party_id.lower())
    parties = list(partner.parties.all())
    if routing.has_from:
        asking = (routing.from_country_code.lower(), routing.from_party_id.lower())
        caller = [p for p in parties if (p.country_code.lower(), p.party_id.lower()) == asking]
        relays = any(p.role == Role.HUB for p in parties)  # a hub speaks for the parties behind it
        token_owner = asking == owner and (bool(caller) or relays)
        scsp = any(p.role == Role.SCSP for p in caller)
        return (routing.from_country_code, routing.from_party_id) if token_owner or scsp else None
    owned = next((p for p in parties if (p.country_code.lower(), p.party_id.lower()) == owner), None)
    if owned is not None:
        return owned.country_code, owned.party_id
    scsp_party = next((p for p in parties if p.role == Role.SCSP), None)
    return (scsp_party.country_code, scsp_party.party_id) if scsp_party is not None else None


def _gateway(session: Any) -> Any | None:
    """The charge point gateway serving the session's location, or None when there is none (NOT_SUPPORTED)."""
    try:
        from gateway.base import gateway_for

        return gateway_for(
            location_id=session.location_id, country_code=session.country_code, party_id=session.party_id
        )
    except Exception:  # no gateway app, or a misconfigured backend: profiles are not supported there
        logger.warning("No gateway for charging profiles", extra={"location": session.location_id}, exc_info=True)
        return None


def _too_often(session: Any) -> bool:
    interval = settings.OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS
    if interval <= 0:
        return False
    return ChargingProfileRequest.objects.filter(
        direction=Direction.RECEIVED,
        session_pk=session.pk,
        response=ResponseType.ACCEPTED,
        created_at__gt=timezone.now() - timedelta(seconds=interval),
    ).exists()


@transaction.atomic
def chargingprofile_receive(
    *,
    partner: Partner,
    routing: Routing,
    session_id: str,
    kind: str,
    response_url: Any,
    duration: Any = None,
    charging_profile: Any = None,
) -> ChargingProfileRequest:
    """A sender's GET (ACTIVE), PUT (SET) or DELETE (CLEAR) on one of our sessions: checked, stored, answered.

    Invalid input raises InvalidParameters before anything is stored. An ACCEPTED request is carried out after the
    commit by `chargingprofile_result_task`.
    """
    _session_id(session_id)
    url = _response_url(response_url)
    seconds = _duration(duration) if kind == Kind.ACTIVE else None
    profile = charging_profile_check(charging_profile) if kind == Kind.SET else None
    session = _own_session(session_id, routing, lock=True)
    controller = _controller(partner, routing, session) if session is not None else None
    if session is None or controller is None:
        response = ResponseType.UNKNOWN_SESSION
    elif session.status != ACTIVE:
        response = ResponseType.REJECTED
    elif _too_often(session):
        response = ResponseType.TOO_OFTEN
    elif _gateway(session) is None:
        response = ResponseType.NOT_SUPPORTED
    else:
        response = ResponseType.ACCEPTED
    sender = controller or (routing.from_country_code, routing.from_party_id)
    request = ChargingProfileRequest.objects.create(
        direction=Direction.RECEIVED,
        kind=kind,
        partner=partner,
        session_id=session_id,
        session_pk=session.pk if session is not None and controller is not None else None,
        sender_country_code=sender[0],
        sender_party_id=sender[1],
        cpo_country_code=session.country_code if session is not None else routing.to_country_code,
        cpo_party_id=session.party_id if session is not None else routing.to_party_id,
        response_url=url,
        duration=seconds,
        charging_profile=profile,
        response=response,
        timeout=settings.OCPI_CHARGINGPROFILES_TIMEOUT,
        callback_status=CallbackStatus.PENDING if response == ResponseType.ACCEPTED else CallbackStatus.NONE,
    )
    if response == ResponseType.ACCEPTED:
        transaction.on_commit(lambda: _enqueue_result(request.pk))
    return request


def _enqueue_result(request_id: int) -> None:
    from chargingprofiles.tasks import chargingprofile_result_task

    try:
        chargingprofile_result_task.delay(request_id)
    except Exception:  # a broker outage: the sender waits for its timeout, as for a lost result
        logger.exception("Could not enqueue a charging profile result", extra={"request": request_id})


def chargingprofile_response_render(request: ChargingProfileRequest) -> dict[str, Any]:
    """The immediate ChargingProfileResponse (REFERENCE §12.3)."""
    return {"result": request.response, "timeout": request.timeout or 0}


def _result_body(request: ChargingProfileRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"result": request.result}
    if request.kind == Kind.ACTIVE and request.result == ResultType.ACCEPTED and request.active_profile:
        body["profile"] = request.active_profile
    return body


def _apply(request: ChargingProfileRequest) -> None:
    """Carry out an accepted request on the charger (once: a retried task reuses the stored result)."""
    from sessions_app.models import Session

    session = Session.objects.filter(pk=request.session_pk).first() if request.session_pk is not None else None
    gateway = _gateway(session) if session is not None else None
    result, profile = ResultType.UNKNOWN, None
    if session is not None and gateway is not None:
        try:
            if request.kind == Kind.SET:
                result = ResultType(gateway.set_charging_profile(session=session, profile=request.charging_profile))
            elif request.kind == Kind.CLEAR:
                result = ResultType(gateway.set_charging_profile(session=session, profile=None))
            else:
                profile = gateway.active_charging_profile(session=session, duration=request.duration or 0)
                result = ResultType.ACCEPTED if profile is not None else ResultType.REJECTED
        except Exception as exc:  # the charger failed: the sender still gets an answer
            logger.exception("Gateway failed on a charging profile", extra={"request": request.pk})
            result, request.last_error = ResultType.REJECTED, f"Gateway: {exc.__class__.__name__}: {exc}"[:2000]
    if profile is not None and validation_errors("ActiveChargingProfile", profile):
        request.last_error = "Gateway: invalid ActiveChargingProfile: " + "; ".join(
            validation_errors("ActiveChargingProfile", profile)
        )
        result, profile = ResultType.REJECTED, None
    request.result, request.active_profile, request.result_at = result, profile, timezone.now()
    request.save(update_fields=["result", "active_profile", "result_at", "last_error", "updated_at"])


def chargingprofile_result_send(*, request_id: int, final: bool = True) -> str:
    """Apply an accepted received request and POST its result to the sender's response_url.

    Returns the callback status: SENT, FAILED, or PENDING when the sender could not be reached and `final` is false
    (the task tries again a few times: connection failures only, REFERENCE §2.8 allows no blind retries).
    """
    request = ChargingProfileRequest.objects.select_related("partner").filter(pk=request_id).first()
    if request is None or request.callback_status != CallbackStatus.PENDING:
        return request.callback_status if request is not None else "GONE"
    if not request.result:
        _apply(request)
    routing = Routing(
        from_country_code=request.cpo_country_code,
        from_party_id=request.cpo_party_id,
        to_country_code=request.sender_country_code,
        to_party_id=request.sender_party_id,
    )
    try:
        OcpiClient.for_partner(request.partner, routing=routing).post(request.response_url, json=_result_body(request))
        status, error = CallbackStatus.SENT, ""
    except PartnerUnreachable as exc:
        status, error = (CallbackStatus.FAILED if final else CallbackStatus.PENDING), exc.message
    except PartnerCallError as exc:
        status, error = CallbackStatus.FAILED, exc.message
    ChargingProfileRequest.objects.filter(pk=request.pk).update(
        callback_status=status, callback_at=timezone.now(), last_error=error[:2000] or request.last_error
    )
    return status


def chargingprofile_active_changed(*, session: Any, profile: dict[str, Any] | None = None) -> list[ActiveProfileUpdate]:
    """The ActiveChargingProfile of one of our sessions changed (the charger, another profile, a local limit): PUT
    it to every sender that set a profile on the session successfully (only those, REFERENCE §12.2).

    `profile` defaults to what the gateway plans for the next UPDATE_HORIZON seconds. Sent after the commit.
    """
    senders = (
        ChargingProfileRequest.objects.filter(
            direction=Direction.RECEIVED, session_pk=session.pk, kind=Kind.SET, result=ResultType.ACCEPTED
        )
        .values_list("partner_id", "sender_country_code", "sender_party_id", "session_id")
        .distinct()
    )
    targets = list(senders)
    if not targets:
        return []
    if profile is None:
        gateway = _gateway(session)
        profile = gateway.active_charging_profile(session=session, duration=UPDATE_HORIZON) if gateway else None
        if profile is None:
            return []
    validate("ActiveChargingProfile", profile)
    updates = []
    seen: set[tuple[int, str, str]] = set()
    for partner_id, country_code, party_id, session_id in targets:
        if (partner_id, country_code, party_id) in seen:
            continue
        seen.add((partner_id, country_code, party_id))
        updates.append(
            ActiveProfileUpdate.objects.create(
                direction=Direction.SENT,
                partner_id=partner_id,
                session_id=session_id,
                sender_country_code=country_code,
                sender_party_id=party_id,
                cpo_country_code=session.country_code,
                cpo_party_id=session.party_id,
                profile=profile,
                status=ActiveProfileUpdate.Status.PENDING,
            )
        )
    ids = [u.pk for u in updates]
    transaction.on_commit(lambda: _enqueue_updates(ids))
    return updates


def _enqueue_updates(ids: list[int]) -> None:
    from chargingprofiles.tasks import active_profile_update_task

    for update_id in ids:
        try:
            active_profile_update_task.delay(update_id)
        except Exception:
            logger.exception("Could not enqueue an ActiveChargingProfile update", extra={"update": update_id})
            return


def active_profile_update_send(*, update_id: int) -> str:
    """PUT one ActiveChargingProfile to the sender's own chargingprofiles Sender endpoint (never retried)."""
    update = ActiveProfileUpdate.objects.select_related("partner").filter(pk=update_id).first()
    if update is None or update.status != ActiveProfileUpdate.Status.PENDING:
        return update.status if update is not None else "GONE"
    endpoint = update.partner.endpoint_url(ModuleID.CHARGINGPROFILES, InterfaceRole.SENDER)
    status, error = ActiveProfileUpdate.Status.SENT, ""
    if endpoint is None:
        status, error = ActiveProfileUpdate.Status.FAILED, "The partner offers no chargingprofiles Sender endpoint"
    else:
        routing = Routing(
            update.cpo_country_code, update.cpo_party_id, update.sender_country_code, update.sender_party_id
        )
        try:
            OcpiClient.for_partner(update.partner, routing=routing).put(
                f"{endpoint.rstrip('/')}/{update.session_id}", json=update.profile
            )
        except PartnerCallError as exc:
            status, error = ActiveProfileUpdate.Status.FAILED, exc.message
    ActiveProfileUpdate.objects.filter(pk=update.pk).update(
        status=status, sent_at=timezone.now(), last_error=error[:2000]
    )
    return status


# --- eMSP / SCSP Sender ---


def _our_sender_party(partner: Partner) -> Party | None:
    """The own party that controls profiles towards this partner: our SCSP party, else our eMSP party."""
    own = Party.objects.filter(partner__isnull=True, role__in=(Role.SCSP, Role.EMSP)).order_by("role", "pk")
    return sorted(own, key=lambda p: p.role != Role.SCSP)[0] if own else None


def _cpo_party(partner: Partner, session_id: str) -> tuple[str, str]:
    """The partner's CPO party owning the session (from the session we received), else its first CPO party."""
    from sessions_app.models import Session

    session = Session.objects.filter(partner=partner, ocpi_id__lower=session_id.lower()).first()
    if session is not None:
        return session.country_code, session.party_id
    cpo = partner.parties.filter(role=Role.CPO).first()
    return (cpo.country_code, cpo.party_id) if cpo is not None else ("", "")


def chargingprofile_send(
    *,
    partner: Partner,
    session_id: str,
    kind: str,
    duration: Any = None,
    charging_profile: Any = None,
) -> ChargingProfileRequest:
    """Ask a CPO partner to get (ACTIVE), set (SET) or clear (CLEAR) the profile of one of its sessions.

    The request is stored first (its response_url is ours and unique), then sent; the CPO's ChargingProfileResponse
    (or why the call failed) is stored on it. The result arrives later at the response_url.
    """
    _session_id(session_id)
    if kind not in Kind.values:
        raise InvalidParameters(f"kind: must be one of {', '.join(Kind.values)}")
    seconds = _duration(duration) if kind == Kind.ACTIVE else None
    profile = charging_profile_check(charging_profile) if kind == Kind.SET else None
    if not partner.is_registered:
        raise InvalidParameters(f"partner: {partner} is not registered")
    endpoint = partner.endpoint_url(ModuleID.CHARGINGPROFILES, InterfaceRole.RECEIVER)
    if endpoint is None:
        raise InvalidParameters(f"partner: {partner} offers no chargingprofiles Receiver endpoint")
    ours = _our_sender_party(partner)
    cpo = _cpo_party(partner, session_id)
    request = ChargingProfileRequest(
        direction=Direction.SENT,
        kind=kind,
        partner=partner,
        session_id=session_id,
        sender_country_code=ours.country_code if ours else "",
        sender_party_id=ours.party_id if ours else "",
        cpo_country_code=cpo[0],
        cpo_party_id=cpo[1],
        duration=seconds,
        charging_profile=profile,
    )
    request.response_url = absolute_url(
        reverse("ocpi:emsp-chargingprofiles-result", kwargs={"kind": kind.lower(), "token": request.result_token})
    )
    request.save()
    routing = Routing(request.sender_country_code, request.sender_party_id, cpo[0], cpo[1])
    client = OcpiClient.for_partner(partner, routing=routing)
    url = f"{endpoint.rstrip('/')}/{session_id}"
    try:
        if kind == Kind.ACTIVE:
            answer = client.get(url, params={"duration": seconds, "response_url": request.response_url})
        elif kind == Kind.SET:
            answer = client.put(url, json={"charging_profile": profile, "response_url": request.response_url})
        else:
            answer = client.delete(url, params={"response_url": request.response_url})
        data = validate("ChargingProfileResponse", answer.data)
        request.response, request.timeout = data["result"], int(data["timeout"])
    except PartnerCallError as exc:
        request.last_error = exc.message[:2000]
    except InvalidParameters as exc:
        request.last_error = f"The CPO's answer is no ChargingProfileResponse: {exc.message}"[:2000]
    request.save(update_fields=["response", "timeout", "last_error", "updated_at"])
    return request


@transaction.atomic
def chargingprofile_result_receive(*, partner: Partner, kind: str, token: str, data: Any) -> ChargingProfileRequest:
    """A CPO POSTs the result of one of our requests to its response_url: checked against the kind, stored."""
    try:
        token = str(uuid.UUID(token))
    except ValueError:
        raise NotFound("Unknown charging profile request") from None
    if kind not in Kind.values:
        raise NotFound("Unknown charging profile request")
    request = (
        ChargingProfileRequest.objects.select_for_update()
        .filter(direction=Direction.SENT, result_token=token, kind=kind, partner=partner)
        .first()
    )
    if request is None:
        raise NotFound("Unknown charging profile request")
    validate(_RESULT_TYPES[Kind(kind)], data)
    request.result = data["result"]
    request.active_profile = data.get("profile") if kind == Kind.ACTIVE else None
    request.result_at = timezone.now()
    request.save(update_fields=["result", "active_profile", "result_at", "updated_at"])
    return request


def active_profile_receive(*, partner: Partner, routing: Routing, session_id: str, data: Any) -> ActiveProfileUpdate:
    """A CPO partner's unsolicited ActiveChargingProfile PUT for one of its sessions: checked, stored."""
    _session_id(session_id)
    validate("ActiveChargingProfile", data)
    cpo = (routing.from_country_code, routing.from_party_id) if routing.has_from else _cpo_party(partner, session_id)
    return ActiveProfileUpdate.objects.create(
        direction=Direction.RECEIVED,
        partner=partner,
        session_id=session_id,
        sender_country_code=routing.to_country_code,
        sender_party_id=routing.to_party_id,
        cpo_country_code=cpo[0],
        cpo_party_id=cpo[1],
        profile=data,
        status=ActiveProfileUpdate.Status.RECEIVED,
    )
