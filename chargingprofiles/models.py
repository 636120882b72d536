"""ChargingProfiles (REFERENCE §12): the requests that set, read and clear charging limits on sessions, both ways, and
the ActiveChargingProfile updates a CPO sends unsolicited.

No foreign key into sessions_app (built alongside): a request names its session by OCPI id, and by our row id
(`session_pk`) when the session is one of our own.
"""

import uuid

from django.db import models

from ocpi_core.models import Partner, TimeStampedModel


class Direction(models.TextChoices):
    """Which side we are on."""

    RECEIVED = "RECEIVED", "Received (we are the CPO)"
    SENT = "SENT", "Sent (we are the eMSP/SCSP)"


class Kind(models.TextChoices):
    """The three operations of the Receiver interface (REFERENCE §12.1)."""

    ACTIVE = "ACTIVE", "Get active profile (GET)"
    SET = "SET", "Set profile (PUT)"
    CLEAR = "CLEAR", "Clear profile (DELETE)"


class ResponseType(models.TextChoices):
    """ChargingProfileResponseType (REFERENCE §12.4): the CPO's immediate answer."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ResultType(models.TextChoices):
    """ChargingProfileResultType (REFERENCE §12.4): the EVSE's outcome, POSTed to response_url."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


class CallbackStatus(models.TextChoices):
    """Received requests: where the asynchronous result POST to the sender's response_url stands."""

    NONE = "", "—"
    PENDING = "PENDING", "Pending"
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"


class ChargingProfileRequest(TimeStampedModel):
    """One GET / PUT / DELETE of the ChargingProfiles Receiver interface, received (CPO) or sent (eMSP/SCSP).

    Received: `response_url` is the sender's; `result` is what the gateway answered and `callback_status` whether it
    reached the sender. Sent: `response_url` is ours (unique per request, named by `result_token`); `response` and
    `timeout` are the CPO's immediate answer, `result` (and `active_profile`) what it POSTed back later.
    """

    direction = models.CharField(max_length=8, choices=Direction.choices, db_index=True)
    kind = models.CharField(max_length=6, choices=Kind.choices)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="charging_profile_requests")
    session_id = models.CharField("session id", max_length=36, db_index=True, help_text="OCPI id at the CPO")
    session_pk = models.BigIntegerField(null=True, blank=True, help_text="Our own Session row (received requests)")
    sender_country_code = models.CharField(max_length=2, blank=True, help_text="The party controlling the profile")
    sender_party_id = models.CharField(max_length=3, blank=True)
    cpo_country_code = models.CharField(max_length=2, blank=True, help_text="The CPO party owning the session")
    cpo_party_id = models.CharField(max_length=3, blank=True)
    response_url = models.URLField(max_length=255)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="ACTIVE: seconds asked for")
    charging_profile = models.JSONField(null=True, blank=True, help_text="SET: the OCPI ChargingProfile")
    response = models.CharField(max_length=16, choices=ResponseType.choices, blank=True)
    timeout = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds to wait for the result")
    result = models.CharField(max_length=8, choices=ResultType.choices, blank=True)
    active_profile = models.JSONField(null=True, blank=True, help_text="ACTIVE: the OCPI ActiveChargingProfile")
    result_at = models.DateTimeField(null=True, blank=True)
    callback_status = models.CharField(max_length=8, choices=CallbackStatus.choices, blank=True, default="")
    callback_at = models.DateTimeField(null=True, blank=True)
    result_token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["session_pk", "direction", "created_at"], name="chargingprofile_session")]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.kind} {self.session_id}"


class ActiveProfileUpdate(models.Model):
    """An unsolicited ActiveChargingProfile PUT (REFERENCE §12.2): sent by us (CPO) to a sender that set a profile
    on the session, or received from a CPO partner."""

    class Status(models.TextChoices):
        RECEIVED = "RECEIVED", "Received"
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"

    direction = models.CharField(max_length=8, choices=Direction.choices, db_index=True)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="active_profile_updates")
    session_id = models.CharField("session id", max_length=36, db_index=True)
    sender_country_code = models.CharField(max_length=2, blank=True)
    sender_party_id = models.CharField(max_length=3, blank=True)
    cpo_country_code = models.CharField(max_length=2, blank=True)
    cpo_party_id = models.CharField(max_length=3, blank=True)
    profile = models.JSONField(help_text="The OCPI ActiveChargingProfile")
    status = models.CharField(max_length=8, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name = "active charging profile update"

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.session_id} {self.status}"
