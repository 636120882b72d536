"""Parties, partners and what the protocol core keeps about them (DESIGN.md, Data)."""

from typing import Any

from django.db import models
from django.db.models.functions import Lower

from ocpi_core.constants import MESSAGE_ID_MAX, InterfaceRole, Role


class TimeStampedModel(models.Model):
    """created_at / updated_at: our bookkeeping, never sent to partners."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Partner(TimeStampedModel):
    """A connection to another OCPI platform (or hub), registered through the Credentials handshake."""

    class Status(models.TextChoices):
        INVITED = "INVITED", "Invited (token A issued)"
        REGISTERING = "REGISTERING", "Registering"
        REGISTERED = "REGISTERED", "Registered"
        SUSPENDED = "SUSPENDED", "Suspended"
        UNREGISTERED = "UNREGISTERED", "Unregistered"

    class TokenEncoding(models.TextChoices):
        BASE64 = "BASE64", "Token <base64> (OCPI 2.2.1)"
        RAW = "RAW", "Token <raw> (older peers)"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED, db_index=True)
    versions_url = models.URLField("versions URL", max_length=255, blank=True)
    version = models.CharField("agreed version", max_length=8, blank=True)
    token_out_encrypted = models.TextField(
        blank=True, help_text="The token we present to this partner, encrypted with OCPI_TOKEN_ENCRYPTION_KEY."
    )
    token_out_hint = models.CharField(max_length=8, blank=True)
    token_encoding = models.CharField(
        "token encoding we send",
        max_length=8,
        choices=TokenEncoding.choices,
        default=TokenEncoding.BASE64,
        help_text="How we put our token in the Authorization header towards this partner.",
    )
    token_encoding_seen = models.CharField(
        "token encoding it sends", max_length=8, choices=TokenEncoding.choices, blank=True
    )
    page_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Page size to ask for when pulling from this partner (empty: its X-Limit)."
    )
    push_enabled = models.BooleanField(
        default=True, help_text="Push changes of our objects to this partner (it can always pull them)."
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    last_contact_at = models.DateTimeField("last inbound request", null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    @property
    def is_registered(self) -> bool:
        return self.status == self.Status.REGISTERED

    def endpoint_url(self, identifier: str, role: str | None = None) -> str | None:
        """The partner's URL for a module (and interface role), or None when it does not offer it."""
        for endpoint in self.endpoints.all():
            if endpoint.identifier == identifier and (role is None or endpoint.role == role):
                return endpoint.url
        return None

    def token_out(self) -> str:
        """The clear token we present to this partner ('' when none)."""
        from ocpi_core.crypto import token_decrypt
        from ocpi_core.exceptions import ServerError

        if not self.token_out_encrypted:
            return ""
        try:
            return token_decrypt(self.token_out_encrypted)
        except ValueError as exc:
            raise ServerError(f"The token stored for partner {self.name} cannot be decrypted: {exc}") from exc


class PartnerEndpoint(models.Model):
    """One endpoint from the partner's version details: module identifier, interface role, URL."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="endpoints")
    identifier = models.CharField(max_length=64)
    role = models.CharField(max_length=8, choices=InterfaceRole.choices)
    url = models.URLField(max_length=255)

    class Meta:
        ordering = ("partner", "identifier", "role")
        constraints = [
            models.UniqueConstraint(fields=["partner", "identifier", "role"], name="ocpi_core_endpoint_key"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} {self.role}"


class PartnerToken(models.Model):
    """A token a partner presents to us, stored as its SHA-256 (the clear value is shown once, when issued)."""

    class Kind(models.TextChoices):
        REGISTRATION = "REGISTRATION", "Token A (versions and credentials only)"
        PENDING = "PENDING", "Offered to the partner, not yet confirmed (versions and credentials only)"
        CREDENTIALS = "CREDENTIALS", "Credentials token (all modules)"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    hint = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("partner", "-created_at")

    def __str__(self) -> str:
        return f"{self.partner} {self.kind} {self.hint}"


class Party(TimeStampedModel):
    """An OCPI party (country_code + party_id + role): one of our own (no partner) or a partner's."""

    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    role = models.CharField(max_length=5, choices=Role.choices)
    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="parties",
        help_text="Empty for our own parties.",
    )
    name = models.CharField("business name", max_length=100)
    website = models.URLField(max_length=255, blank=True)
    logo = models.JSONField(null=True, blank=True, help_text="OCPI Image object")

    class Meta:
        ordering = ("country_code", "party_id", "role")
        verbose_name_plural = "parties"
        constraints = [
            models.UniqueConstraint(
                Lower("country_code"),
                Lower("party_id"),
                "role",
                condition=models.Q(partner__isnull=True),
                name="ocpi_core_own_party_key",
            ),
            models.UniqueConstraint(
                "partner", Lower("country_code"), Lower("party_id"), "role", name="ocpi_core_partner_party_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.role}"

    @property
    def is_own(self) -> bool:
        return self.partner_id is None

    def credentials_role(self) -> dict[str, Any]:
        """This party as a CredentialsRole (REFERENCE §5.1)."""
        business: dict[str, Any] = {"name": self.name}
        if self.website:
            business["website"] = self.website
        if self.logo:
            business["logo"] = self.logo
        return {
            "role": self.role,
            "business_details": business,
            "party_id": self.party_id,
            "country_code": self.country_code,
        }


class TrafficLog(models.Model):
    """One OCPI request, inbound or outbound, as operators need it for debugging (tokens never stored)."""

    class Direction(models.TextChoices):
        IN = "IN", "Inbound"
        OUT = "OUT", "Outbound"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.SET_NULL, related_name="traffic")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    method = models.CharField(max_length=8)
    url = models.TextField()
    module = models.CharField(max_length=32, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    ocpi_status_code = models.PositiveSmallIntegerField("OCPI status", null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    request_id = models.CharField(max_length=MESSAGE_ID_MAX, blank=True)
    correlation_id = models.CharField(max_length=MESSAGE_ID_MAX, blank=True)
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name = "traffic log entry"
        verbose_name_plural = "traffic log"
        indexes = [models.Index(fields=["partner", "-created_at"], name="ocpi_core_traffic_partner")]

    def __str__(self) -> str:
        return f"{self.direction} {self.method} {self.url} {self.http_status}"


class Delivery(models.Model):
    """One change of one of our own objects to deliver to one partner (the transactional outbox, DESIGN.md Push).

    Written in the same transaction as the change. It names the object, never a copy of it: every attempt renders
    the object as it is then, so a retry never replays a stale write. A newer change for the same object and
    partner supersedes an undelivered older one.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        IN_FLIGHT = "IN_FLIGHT", "Sending"
        DELIVERED = "DELIVERED", "Delivered"
        FAILED = "FAILED", "Failed"
        SUPERSEDED = "SUPERSEDED", "Superseded"

    class Method(models.TextChoices):
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"
        POST = "POST"

    OPEN = (Status.PENDING, Status.IN_FLIGHT)

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="deliveries")
    module = models.CharField(max_length=32)
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    object_path = models.CharField(
        max_length=120, help_text="The object's ids under the party: location, location/evse, location/evse/connector"
    )
    method = models.CharField(max_length=6, choices=Method.choices)
    fields = models.JSONField(default=list, blank=True, help_text="PATCH: the fields that changed")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    window_start = models.DateTimeField(help_text="Retries stop OCPI_PUSH_RETRY_WINDOW seconds after this")
    next_attempt_at = models.DateTimeField(db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_ocpi_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(
                fields=["partner", "module", "country_code", "party_id", "object_path", "status"],
                name="ocpi_core_delivery_object",
            ),
            models.Index(fields=["status", "next_attempt_at"], name="ocpi_core_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.module} {self.country_code}/{self.party_id}/{self.object_path} → {self.partner}"


class PartnerPushState(models.Model):
    """Per-partner debounce of the push batch task (ocpi_core.push, issue #3): at most one batch task is queued or
    running per partner, so a thousand changes do not make a thousand tasks; and a pause after the partner failed.

    `holder` names the task that holds the partner until `queued_until` (refreshed while it runs; once past, the
    holder is presumed dead and anyone may take over). No batch goes to the partner before `paused_until`."""

    partner = models.OneToOneField(Partner, on_delete=models.CASCADE, primary_key=True, related_name="push_state")
    holder = models.CharField(max_length=36, blank=True)
    queued_until = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"push state of {self.partner_id}"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a Delivery, as operators need it to see why a push fails."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    method = models.CharField(max_length=6)
    url = models.TextField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    ocpi_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ("-at", "-pk")

    def __str__(self) -> str:
        return f"{self.method} {self.url} {self.outcome}"


class SyncState(models.Model):
    """Pull sync bookkeeping per partner and module: the last successful sync, and whether one runs now."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sync_states")
    module = models.CharField(max_length=32)
    last_success_at = models.DateTimeField(null=True, blank=True, help_text="date_from of the next incremental sync")
    last_full_at = models.DateTimeField(null=True, blank=True)
    running_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("partner", "module")
        constraints = [models.UniqueConstraint(fields=["partner", "module"], name="ocpi_core_syncstate_key")]

    def __str__(self) -> str:
        return f"{self.partner} {self.module}"


class SyncRun(models.Model):
    """One pull of a partner's Sender list: progress while it runs, result afterwards."""

    class Kind(models.TextChoices):
        INCREMENTAL = "INCREMENTAL", "Incremental"
        FULL = "FULL", "Full"

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sync_runs")
    module = models.CharField(max_length=32)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    date_from = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    received = models.PositiveIntegerField("objects received", default=0)
    errors = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0, help_text="Full sync: objects no longer returned")
    total = models.PositiveIntegerField(null=True, blank=True, help_text="X-Total-Count of the first page")
    message = models.TextField(blank=True)

    class Meta:
        ordering = ("-started_at", "-pk")

    def __str__(self) -> str:
        return f"{self.partner} {self.module} {self.kind} {self.status}"
