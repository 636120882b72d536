"""The webhook gateway: for operators who already run a charge point management system.

Every command is POSTed as JSON to the configured URL (per location, else GATEWAY_WEBHOOK_URL), signed with
HMAC-SHA256 over the exact body with GATEWAY_WEBHOOK_SECRET in `X-Signature: sha256=<hex>`, by a Celery task that
retries failures briefly. That system reports back through the platform API: the command's outcome
(`POST /api/commands/{id}/result`), EVSE statuses (locations platform API) and session progress (sessions platform
API). Charging profile calls are synchronous: the system answers `{"result": ...}` / `{"active_charging_profile": ...}`.
"""

import hashlib
import hmac
import logging
from typing import Any

import httpx
import orjson
from django.conf import settings
from django.db import transaction

from commands.choices import ChargingProfileResultType, CommandResultType
from gateway.base import Gateway, GatewayCommand
from ocpi_core.envelope import dumps
from sessions_app.models import Session

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"


def webhook_signature(body: bytes, secret: str | None = None) -> str:
    """`sha256=<hex HMAC-SHA256 of body>`; the receiver recomputes it with the shared secret and compares in
    constant time (hmac.compare_digest)."""
    key = (settings.GATEWAY_WEBHOOK_SECRET if secret is None else secret).encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _post(url: str, payload: dict[str, Any], *, timeout: float) -> httpx.Response:
    body = dumps(payload)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: webhook_signature(body)}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        return client.post(url, content=body, headers=headers)


def webhook_send(*, url: str, payload: dict[str, Any]) -> bool:
    """POST one signed event. False = try again (no connection, timeout, HTTP 5xx); a 4xx is final (logged)."""
    try:
        response = _post(url, payload, timeout=settings.OCPI_CLIENT_TIMEOUT)
    except httpx.HTTPError as exc:
        logger.warning("Gateway webhook unreachable", extra={"url": url, "error": str(exc)})
        return False
    if response.status_code >= 500:
        logger.warning("Gateway webhook failed", extra={"url": url, "http_status": response.status_code})
        return False
    if response.status_code >= 400:
        logger.error("Gateway webhook refused a command", extra={"url": url, "http_status": response.status_code})
    return True


class WebhookGateway(Gateway):
    """Commands go to the operator's system; outcomes come back later through the platform API."""

    name = "webhook"

    def __init__(self, *, webhook_url: str = "") -> None:
        self.url = webhook_url or settings.GATEWAY_WEBHOOK_URL

    def _command(self, command: GatewayCommand, **extra: Any) -> str | None:
        if not self.url or not settings.GATEWAY_WEBHOOK_SECRET:  # never send unsigned commands
            logger.error(
                "Webhook gateway needs GATEWAY_WEBHOOK_URL (or a per-location URL) and GATEWAY_WEBHOOK_SECRET",
                extra={"command": command.command_id},
            )
            return CommandResultType.FAILED
        payload = orjson.loads(dumps({"event": "command", **command.as_json(), **extra}))
        from commands.tasks import enqueue
        from gateway.tasks import webhook_send_task

        url = self.url
        transaction.on_commit(lambda: enqueue(webhook_send_task, url, payload))
        return None

    def start_session(self, *, command: GatewayCommand) -> str | None:
        return self._command(command)

    def stop_session(self, *, command: GatewayCommand, session: Session) -> str | None:
        return self._command(command, session_id=session.ocpi_id)

    def reserve_now(self, *, command: GatewayCommand) -> str | None:
        return self._command(command)

    def cancel_reservation(self, *, command: GatewayCommand) -> str | None:
        return self._command(command)

    def unlock_connector(self, *, command: GatewayCommand) -> str | None:
        return self._command(command)

    def _call(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """A synchronous signed call (charging profiles): the JSON object answered, or None."""
        if not self.url or not settings.GATEWAY_WEBHOOK_SECRET:
            return None
        try:
            response = _post(self.url, orjson.loads(dumps(payload)), timeout=settings.OCPI_CLIENT_TIMEOUT)
            answer = response.json() if response.status_code < 300 else None
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("Gateway webhook call failed", extra={"url": self.url, "error": str(exc)})
            return None
        return answer if isinstance(answer, dict) else None

    def _session(self, session: Session) -> dict[str, Any]:
        return {
            "country_code": session.country_code,
            "party_id": session.party_id,
            "session_id": session.ocpi_id,
            "location_id": session.location_id,
            "evse_uid": session.evse_uid,
            "connector_id": session.connector_id,
        }

    def set_charging_profile(self, *, session: Session, profile: dict[str, Any] | None) -> str:
        answer = self._call({"event": "set_charging_profile", **self._session(session), "charging_profile": profile})
        result = (answer or {}).get("result")
        return result if result in ChargingProfileResultType.values else ChargingProfileResultType.REJECTED

    def active_charging_profile(self, *, session: Session, duration: int) -> dict[str, Any] | None:
        answer = self._call({"event": "active_charging_profile", **self._session(session), "duration": duration})
        profile = (answer or {}).get("active_charging_profile")
        return profile if isinstance(profile, dict) else None
