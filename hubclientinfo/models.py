"""HubClientInfo (REFERENCE §13): what a hub tells us about the parties connected to it."""

from django.db import models
from django.db.models.functions import Lower

from ocpi_core.constants import Role
from ocpi_core.models import Partner, TimeStampedModel


class ConnectionStatus(models.TextChoices):
    """ConnectionStatus enum (REFERENCE §13.4), spelled as in the spec."""

    CONNECTED = "CONNECTED", "Connected"
    OFFLINE = "OFFLINE", "Offline"
    PLANNED = "PLANNED", "Planned"
    SUSPENDED = "SUSPENDED", "Suspended"


# Nothing may be sent to a party in these states (REFERENCE §13.3: "no requests can be sent" to OFFLINE, PLANNED
# and SUSPENDED parties).
UNREACHABLE = (ConnectionStatus.OFFLINE, ConnectionStatus.PLANNED, ConnectionStatus.SUSPENDED)


class ClientInfo(TimeStampedModel):
    """The OCPI ClientInfo object: one party behind a hub, its role and connection status, as the hub reported it.

    The hub owns these objects and pushes them (PUT); they are never deleted (the hub sends SUSPENDED). One row per
    hub partner and (country_code, party_id, role): the receiver URL names no role, so a party with two roles has
    two rows and a GET answers the most recently updated one.
    """

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="client_infos", help_text="The hub that reported it."
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    role = models.CharField(max_length=5, choices=Role.choices)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices, db_index=True)
    last_updated = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ("country_code", "party_id", "role", "pk")
        verbose_name = "hub client info"
        verbose_name_plural = "hub client info"
        constraints = [
            models.UniqueConstraint(
                "partner", Lower("country_code"), Lower("party_id"), "role", name="hubclientinfo_clientinfo_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.role} {self.status}"

    @property
    def is_unreachable(self) -> bool:
        return self.status in UNREACHABLE
