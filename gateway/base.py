"""The charge point gateway: the one interface between our CPO role and the chargers.

The Commands module (and ChargingProfiles) never talk to a charger directly: they build a `GatewayCommand`, ask
`gateway_for(location_id=...)` which implementation serves the location, and call one method. Implementations:

- `gateway.simulator.SimulatorGateway` ("simulator", the embedded default): simulated EVSEs, sessions that charge;
- `gateway.webhook.WebhookGateway` ("webhook"): forwards to an operator's own charge point management system;
- an OCPP 1.6J / 2.0.1 central system can be added later as a third class registered in `GATEWAY_BACKENDS`,
  without touching the Commands module.

A command method answers with the CommandResultType when the charger's outcome is known at once (the simulator),
or `None` when it will come later: the implementation then reports it through `commands.services.command_result_report`
(webhook: the operator's system calls the platform API; OCPP: the charger's reply). When nothing comes back, the
Commands watchdog answers TIMEOUT.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sessions_app.models import Session


@dataclass(frozen=True)
class GatewayCommand:
    """One command as a charger needs it: ids resolved by the Commands module, nothing OCPI-transport specific.

    `command_id` is our Command row (to report an outcome later); `country_code` / `party_id` own the location (our
    CPO party); `reservation_id` is the charge-point-unique reservation number (never the eMSP's own id, so eMSPs
    cannot touch each other's reservations, REFERENCE §11.3); `session_id` is the OCPI id of the session concerned
    (STOP_SESSION) or of the RESERVATION session being replaced (RESERVE_NOW).
    """

    command_id: int
    command_type: str
    country_code: str
    party_id: str
    location_id: str
    evse_uid: str | None = None
    connector_id: str | None = None
    token: dict[str, Any] = field(default_factory=dict)
    authorization_reference: str | None = None
    session_id: str | None = None
    reservation_id: int | None = None
    expiry_date: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """The command as JSON-ready data (webhook body, logs)."""
        return {
            "command_id": self.command_id,
            "command_type": self.command_type,
            "country_code": self.country_code,
            "party_id": self.party_id,
            "location_id": self.location_id,
            "evse_uid": self.evse_uid,
            "connector_id": self.connector_id,
            "token": self.token,
            "authorization_reference": self.authorization_reference,
            "session_id": self.session_id,
            "reservation_id": self.reservation_id,
            "expiry_date": self.expiry_date,
        }


class Gateway(ABC):
    """A way to reach the chargers of some locations. Command methods return a CommandResultType value (str) when
    the outcome is known now, or None when it will be reported later (see the module docstring)."""

    name: ClassVar[str] = ""

    @abstractmethod
    def start_session(self, *, command: GatewayCommand) -> str | None:
        """Remote start at `command.location_id` / `evse_uid` / `connector_id` for `command.token` (pre-authorized
        by the eMSP: never re-authorize it). On success the Session carries `command.authorization_reference`."""

    @abstractmethod
    def stop_session(self, *, command: GatewayCommand, session: Session) -> str | None:
        """Remote stop of `session` (already checked to belong to the calling eMSP)."""

    @abstractmethod
    def reserve_now(self, *, command: GatewayCommand) -> str | None:
        """Reserve an EVSE (or any EVSE of the location) until `command.expiry_date`; the same
        `command.reservation_id` replaces the earlier reservation. A success creates a RESERVATION session."""

    @abstractmethod
    def cancel_reservation(self, *, command: GatewayCommand) -> str | None:
        """Cancel the reservation `command.reservation_id` (UNKNOWN_RESERVATION when the charger does not know it)."""

    @abstractmethod
    def unlock_connector(self, *, command: GatewayCommand) -> str | None:
        """Unlock `command.connector_id` of `command.evse_uid` (helpdesk only)."""

    @abstractmethod
    def set_charging_profile(self, *, session: Session, profile: dict[str, Any] | None) -> str:
        """Apply an OCPI ChargingProfile to the session's charger (`None` clears it). Returns a
        ChargingProfileResultType value: ACCEPTED, REJECTED or UNKNOWN."""

    @abstractmethod
    def active_charging_profile(self, *, session: Session, duration: int) -> dict[str, Any] | None:
        """The OCPI ActiveChargingProfile planned for the next `duration` seconds of the session, or None when the
        charger cannot tell."""


def gateway_for(*, location_id: str, country_code: str | None = None, party_id: str | None = None) -> Gateway:
    """The gateway serving one of our own locations: its override in the admin (Gateway settings per location),
    or `GATEWAY_DEFAULT_BACKEND`."""
    from gateway.services import gateway_for as _gateway_for

    return _gateway_for(location_id=location_id, country_code=country_code, party_id=party_id)
