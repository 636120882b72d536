"""Token (REFERENCE §10.4): our own eMSP tokens (partner empty) and partners' tokens (pushed to us or pulled), and the
Authorization log of every real-time authorization we answered (eMSP) or decided (CPO).

A token is keyed by its owner party, its `uid` *and* its `type` (REFERENCE §10.2). `Token.doc` holds the Token's
OCPI JSON, rewritten by the services in the same transaction as any change, so the Sender list and the Receiver GET
serve it without rendering.
"""

from django.db import models
from django.db.models.functions import Lower

from ocpi_core.models import Partner


class TokenType(models.TextChoices):
    """OCPI TokenType."""

    AD_HOC_USER = "AD_HOC_USER", "AD_HOC_USER"
    APP_USER = "APP_USER", "APP_USER"
    OTHER = "OTHER", "OTHER"
    RFID = "RFID", "RFID"


class WhitelistType(models.TextChoices):
    """OCPI WhitelistType: whether and when the CPO may authorize the token from its local copy."""

    ALWAYS = "ALWAYS", "ALWAYS"
    ALLOWED = "ALLOWED", "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE", "ALLOWED_OFFLINE"
    NEVER = "NEVER", "NEVER"


class AllowedType(models.TextChoices):
    """OCPI AllowedType: the outcome of an authorization."""

    ALLOWED = "ALLOWED", "ALLOWED"
    BLOCKED = "BLOCKED", "BLOCKED"
    EXPIRED = "EXPIRED", "EXPIRED"
    NO_CREDIT = "NO_CREDIT", "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED", "NOT_ALLOWED"


class ProfileType(models.TextChoices):
    """OCPI ProfileType (a token's default charging preference)."""

    CHEAP = "CHEAP", "CHEAP"
    FAST = "FAST", "FAST"
    GREEN = "GREEN", "GREEN"
    REGULAR = "REGULAR", "REGULAR"


class Token(models.Model):
    """OCPI Token. Own tokens also carry eMSP bookkeeping (never sent): expiry, credit, allowed locations."""

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ocpi_tokens",
        help_text="Empty for our own eMSP tokens; the partner that sent it otherwise.",
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    uid = models.CharField(max_length=36, help_text="RFID: the UID as read by the reader (hex)")
    type = models.CharField(max_length=16, choices=TokenType.choices, default=TokenType.RFID)
    contract_id = models.CharField(max_length=36, help_text="eMA ID recommended")
    visual_number = models.CharField(max_length=64, null=True, blank=True)
    issuer = models.CharField(max_length=64)
    group_id = models.CharField(max_length=36, null=True, blank=True)
    valid = models.BooleanField(default=True)
    whitelist = models.CharField(max_length=16, choices=WhitelistType.choices, default=WhitelistType.ALLOWED)
    language = models.CharField(max_length=2, null=True, blank=True, help_text="ISO 639-1")
    default_profile_type = models.CharField(max_length=8, choices=ProfileType.choices, null=True, blank=True)
    energy_contract = models.JSONField(null=True, blank=True, help_text="EnergyContract: supplier_name, contract_id")
    last_updated = models.DateTimeField(db_index=True)
    # eMSP bookkeeping of our own tokens (never on the wire): what real-time authorization decides on
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Own tokens: from this moment authorizations answer EXPIRED."
    )
    no_credit = models.BooleanField(default=False, help_text="Own tokens: authorizations answer NO_CREDIT.")
    allowed_location_ids = models.JSONField(
        null=True,
        blank=True,
        help_text="Own tokens: ids of the only locations where the token may charge (empty: everywhere). "
        "Authorizations then need a location (2002 without one) and answer NOT_ALLOWED elsewhere.",
    )
    doc = models.TextField(editable=False, default="", help_text="OCPI JSON of the token (cache)")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("last_updated", "pk")
        constraints = [
            models.UniqueConstraint(Lower("country_code"), Lower("party_id"), Lower("uid"), "type", name="token_key"),
        ]
        indexes = [
            models.Index(
                fields=["last_updated", "id"], name="token_page_own", condition=models.Q(partner__isnull=True)
            ),
            models.Index(fields=["partner", "last_updated"], name="token_partner"),
            models.Index(Lower("uid"), "type", name="token_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.uid} ({self.type})"

    @property
    def is_own(self) -> bool:
        return self.partner_id is None


class Authorization(models.Model):
    """One real-time authorization: a partner CPO asking us as eMSP (IN), or us as CPO deciding for a token at one
    of our locations (OUT: from the local cache, our own tokens, or by asking the eMSP). Operators read it in the
    admin; `authorization_reference` ties it to the Session and CDR (unique among the ones we generated, IN)."""

    class Direction(models.TextChoices):
        IN = "IN", "Asked by a partner CPO (we are the eMSP)"
        OUT = "OUT", "Decided by us as CPO"

    class Source(models.TextChoices):
        OWN = "own", "Own token"
        CACHE = "cache", "Local copy (whitelist)"
        REALTIME = "realtime", "Real-time, eMSP asked"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    source = models.CharField(max_length=8, choices=Source.choices)
    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="token_authorizations",
        help_text="IN: the partner that asked; OUT: the eMSP partner that owns the token (empty for own tokens).",
    )
    token = models.ForeignKey(Token, null=True, blank=True, on_delete=models.SET_NULL, related_name="authorizations")
    country_code = models.CharField(max_length=2, blank=True)
    party_id = models.CharField(max_length=3, blank=True)
    token_uid = models.CharField(max_length=36)
    token_type = models.CharField(max_length=16, choices=TokenType.choices)
    location_id = models.CharField(max_length=36, blank=True)
    evse_uids = models.JSONField(default=list, blank=True)
    allowed = models.CharField(max_length=16, choices=AllowedType.choices, blank=True, help_text="Empty: no answer")
    authorization_reference = models.CharField(max_length=36, null=True, blank=True, db_index=True)
    allowed_evse_uids = models.JSONField(null=True, blank=True)
    info = models.CharField(max_length=512, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=["authorization_reference"],
                name="token_authorization_reference",
                condition=models.Q(direction="IN", authorization_reference__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.token_uid} ({self.token_type}) {self.allowed or 'no answer'}"
