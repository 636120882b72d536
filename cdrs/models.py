"""CDR (REFERENCE §8.4): our own charge detail records (partner empty, we are the CPO) and partners' (received by
POST on our eMSP Receiver, or pulled from their CPO Sender).

A CDR is immutable: the row is written once, with its OCPI JSON in `doc`, exact (money and kWh never pass through a
binary float: tariffs.models.dumps_exact / loads_exact). The columns beside it are copies of the fields the Sender
scope, the admin and the platform API filter and search on.
"""

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models.functions import Lower

from ocpi_core.models import Partner
from tariffs.models import loads_exact


class AuthMethod(models.TextChoices):
    """OCPI AuthMethod, spelled as in the spec."""

    AUTH_REQUEST = "AUTH_REQUEST", "AUTH_REQUEST"
    COMMAND = "COMMAND", "COMMAND"
    WHITELIST = "WHITELIST", "WHITELIST"


class Reconciliation(models.TextChoices):
    """How a partner's CDR compares with our recomputation of it (cdrs.reconciliation)."""

    MATCH = "MATCH", "match"
    MISMATCH = "MISMATCH", "mismatch"
    NOT_CHECKABLE = "NOT_CHECKABLE", "not checkable"


class Cdr(models.Model):
    """OCPI CDR."""

    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cdrs",
        help_text="Empty for our own CDRs (we are the CPO); the partner that sent or listed it otherwise.",
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField("id", max_length=39, help_text="36 characters at most, 39 for a credit CDR")
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField()
    session_id = models.CharField(max_length=36, blank=True, default="")
    token_country_code = models.CharField("token country code", max_length=2)
    token_party_id = models.CharField("token party id", max_length=3)
    token_uid = models.CharField("token uid", max_length=36)
    contract_id = models.CharField(max_length=36)
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    location_id = models.CharField("location id", max_length=36)
    evse_uid = models.CharField("EVSE uid", max_length=36)
    currency = models.CharField(max_length=3)
    credit = models.BooleanField(default=False)
    credit_reference_id = models.CharField(max_length=39, blank=True, default="")
    credit_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credits",
        help_text="The CDR this credit CDR corrects, when we hold it.",
    )
    last_updated = models.DateTimeField(db_index=True)
    doc = models.TextField(editable=False, help_text="OCPI JSON of the CDR, exact, as sent or received")
    pricing = models.JSONField(
        null=True, blank=True, editable=False, help_text="Own CDRs: the tariff engine's breakdown (audit)"
    )
    receiver = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="received_cdrs",
        help_text="Own CDRs: the eMSP partner the CDR is sent to (the token's owner).",
    )
    receiver_location = models.URLField(
        max_length=512, blank=True, default="", help_text="Own CDRs: where the eMSP stored it (its Location header)"
    )
    reconciliation_status = models.CharField(
        "reconciliation",
        max_length=16,
        choices=Reconciliation.choices,
        blank=True,
        default="",
        editable=False,
        help_text="Partners' CDRs: the cost recomputed from the CDR's tariff matches (within "
        "OCPI_RECONCILE_TOLERANCE), does not, or could not be recomputed; empty for our own CDRs",
    )
    reconciliation = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Partners' CDRs: the reason, our computed figures and the comparison, field by field",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("last_updated", "pk")
        verbose_name = "CDR"
        verbose_name_plural = "CDRs"
        constraints = [
            models.UniqueConstraint(Lower("country_code"), Lower("party_id"), Lower("ocpi_id"), name="cdr_key"),
        ]
        indexes = [
            models.Index(fields=["last_updated", "id"], name="cdr_page_own", condition=models.Q(partner__isnull=True)),
            models.Index(fields=["partner", "last_updated"], name="cdr_partner"),
            models.Index(fields=["token_country_code", "token_party_id"], name="cdr_token_party"),
            models.Index(fields=["session_id"], name="cdr_session"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.ocpi_id}"

    @property
    def is_own(self) -> bool:
        return self.partner_id is None

    @property
    def data(self) -> dict[str, Any]:
        """The CDR as OCPI JSON, numbers as Decimals."""
        value: dict[str, Any] = loads_exact(self.doc)
        return value

    def total(self, name: str) -> Decimal | None:
        """A `total_*` quantity of the CDR (kWh, hours) as a Decimal."""
        value = self.data.get(name)
        return None if value is None else Decimal(value)
