"""Commands (REFERENCE §11): received as CPO from partners' eMSPs, and sent as eMSP to partners' CPOs.

A Command row keeps the whole life of one command: the request, our (or the CPO's) CommandResponse, the
CommandResult and, for received commands, the delivery of that result to the eMSP's `response_url`.
"""

import uuid

from django.db import models

from commands.choices import CommandResponseType, CommandResultType, CommandType
from ocpi_core.models import Partner


class Command(models.Model):
    """One OCPI command (StartSession, StopSession, ReserveNow, CancelReservation, UnlockConnector)."""

    class Direction(models.TextChoices):
        RECEIVED = "RECEIVED", "Received (we are the CPO)"
        SENT = "SENT", "Sent (we are the eMSP)"

    class State(models.TextChoices):
        WAITING = "WAITING", "Waiting for the result"
        DONE = "DONE", "Result known"
        CLOSED = "CLOSED", "Not accepted (no result follows)"
        TIMED_OUT = "TIMED_OUT", "Timed out"

    class Delivery(models.TextChoices):
        NONE = "", "—"
        PENDING = "PENDING", "Pending"
        DELIVERED = "DELIVERED", "Delivered"
        FAILED = "FAILED", "Failed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    direction = models.CharField(max_length=8, choices=Direction.choices, db_index=True)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="commands")
    command_type = models.CharField("command", max_length=20, choices=CommandType.choices, db_index=True)
    response_url = models.URLField(max_length=255)
    request = models.JSONField(help_text="The command body as received or sent")
    cpo_country_code = models.CharField(max_length=2, blank=True)
    cpo_party_id = models.CharField(max_length=3, blank=True)
    emsp_country_code = models.CharField(max_length=2, blank=True)
    emsp_party_id = models.CharField(max_length=3, blank=True)
    location_id = models.CharField(max_length=36, blank=True)
    evse_uid = models.CharField(max_length=36, blank=True)
    connector_id = models.CharField(max_length=36, blank=True)
    session_id = models.CharField(max_length=36, blank=True)
    reservation_id = models.CharField(max_length=36, blank=True, help_text="The eMSP's reservation_id")
    authorization_reference = models.CharField(max_length=36, blank=True)
    gateway = models.CharField(max_length=16, blank=True, help_text="Gateway backend that carried it out")
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING, db_index=True)
    response_result = models.CharField(max_length=16, choices=CommandResponseType.choices, blank=True)
    response_timeout = models.PositiveIntegerField(null=True, blank=True)
    response_message = models.JSONField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When the gateway was given the command")
    result = models.CharField(max_length=20, choices=CommandResultType.choices, blank=True, db_index=True)
    result_message = models.JSONField(null=True, blank=True)
    result_at = models.DateTimeField(null=True, blank=True)
    result_delivery = models.CharField(max_length=10, choices=Delivery.choices, blank=True, default=Delivery.NONE)
    result_attempts = models.PositiveSmallIntegerField(default=0)
    result_error = models.TextField(blank=True)
    result_delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["state", "deadline_at"], name="command_watchdog")]

    def __str__(self) -> str:
        return f"{self.command_type} {self.get_direction_display().split(' ')[0].lower()} #{self.pk}"


class Reservation(models.Model):
    """A reservation made by a partner's eMSP through RESERVE_NOW. `pk` is the charge-point-unique reservation number
    handed to the gateway: the eMSP's own `reservation_id` is only unique per eMSP party (REFERENCE §11.3)."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        CANCELED = "CANCELED"
        ENDED = "ENDED"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="reservations")
    emsp_country_code = models.CharField(max_length=2)
    emsp_party_id = models.CharField(max_length=3)
    reservation_id = models.CharField(max_length=36)
    country_code = models.CharField(max_length=2, help_text="Our CPO party owning the location")
    party_id = models.CharField(max_length=3)
    location_id = models.CharField(max_length=36)
    evse_uid = models.CharField(max_length=36, blank=True)
    expiry_date = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    command = models.ForeignKey(
        Command,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The RESERVE_NOW whose response_url receives a CANCELED_RESERVATION",
    )
    session_id = models.CharField(max_length=36, blank=True, help_text="The RESERVATION session")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "pk")
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "emsp_country_code", "emsp_party_id", "reservation_id"], name="reservation_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emsp_country_code}*{self.emsp_party_id} {self.reservation_id} at {self.location_id}"
