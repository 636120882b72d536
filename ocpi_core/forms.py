"""Back-office forms: inviting a partner, registering with one, and our own parties (STYLE §8)."""

import re
from typing import Any

from django import forms

from ocpi_core.models import Partner, Party

_COUNTRY_CODE_RE = re.compile(r"^[A-Z]{2}$")
_PARTY_ID_RE = re.compile(r"^[A-Z0-9]{3}$")


class PartnerInviteForm(forms.Form):
    """Invite a partner: we issue a token A it uses to register with us (REFERENCE §5.3, we are the Receiver)."""

    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Our name for this partner. Inviting an invited partner again replaces its token A.",
    )


class PartnerRegisterForm(forms.Form):
    """Register with a partner from the versions URL and token A it gave us (REFERENCE §5.3, we are the Sender)."""

    versions_url = forms.URLField(
        label="Partner versions URL",
        max_length=255,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField"}),
    )
    token = forms.CharField(
        label="Their token A",
        max_length=64,
        strip=True,
        # Never echoed back: after a failed attempt the operator pastes it again.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "class": "vTextField"}),
        help_text="The plain token the partner gave us (not Base64-encoded).",
    )
    name = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"class": "vTextField"}),
        help_text="Our name for this partner (default: the host of the versions URL).",
    )
    raw_token = forms.BooleanField(
        label="Send token un-encoded (older peers)",
        required=False,
        help_text="Send 'Authorization: Token <token>' as OCPI 2.1.1/2.2 peers expect, instead of Base64.",
    )

    def encoding(self) -> str:
        """The token encoding the operator chose."""
        return Partner.TokenEncoding.RAW if self.cleaned_data.get("raw_token") else Partner.TokenEncoding.BASE64


class OwnPartyForm(forms.ModelForm):
    """One of our own parties; country code and party id are normalised to upper case (CiString, REFERENCE §0.1)."""

    class Meta:
        model = Party
        fields = ("country_code", "party_id", "role", "name", "website")

    def clean_country_code(self) -> str:
        value = self.cleaned_data["country_code"].strip().upper()
        if not _COUNTRY_CODE_RE.match(value):
            raise forms.ValidationError("An ISO 3166-1 alpha-2 country code: two letters.")
        return value

    def clean_party_id(self) -> str:
        value = self.cleaned_data["party_id"].strip().upper()
        if not _PARTY_ID_RE.match(value):
            raise forms.ValidationError("A party id (ISO 15118): three letters or digits.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.instance._state.adding:
            return cleaned
        country_code, party_id, role = (cleaned.get(k) for k in ("country_code", "party_id", "role"))
        if (
            country_code
            and party_id
            and role
            and Party.objects.filter(
                partner__isnull=True, country_code__iexact=country_code, party_id__iexact=party_id, role=role
            ).exists()
        ):
            raise forms.ValidationError(f"We already have the own party {country_code}*{party_id} {role}.")
        return cleaned
