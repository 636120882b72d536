"""OCPI-from/to routing headers (REFERENCE §2.2, §2.10): parsed on the way in, echoed swapped on the way out."""

from dataclasses import dataclass

from django.http import HttpRequest

from ocpi_core.exceptions import InvalidParameters

FROM_COUNTRY, FROM_PARTY = "OCPI-from-country-code", "OCPI-from-party-id"
TO_COUNTRY, TO_PARTY = "OCPI-to-country-code", "OCPI-to-party-id"
# Read from META (HTTP_OCPI_FROM_COUNTRY_CODE ...), not request.headers: that builds a dict of every header, on every
# OCPI request
_META = {name: "HTTP_" + name.upper().replace("-", "_") for name in (FROM_COUNTRY, FROM_PARTY, TO_COUNTRY, TO_PARTY)}


@dataclass(frozen=True, slots=True)
class Routing:
    """The four routing headers of one request; empty strings where absent."""

    from_country_code: str = ""
    from_party_id: str = ""
    to_country_code: str = ""
    to_party_id: str = ""

    @property
    def has_from(self) -> bool:
        return bool(self.from_country_code and self.from_party_id)

    @property
    def has_to(self) -> bool:
        return bool(self.to_country_code and self.to_party_id)

    def response_headers(
        self, *, answering: tuple[str, str] | None = None, asking: tuple[str, str] | None = None
    ) -> dict[str, str]:
        """Headers for the response: `to` and `from` swapped (the response goes back to the requesting party). Where
        the request named no `to` (a direct link, or open routing), `answering` is the `from` of the answer: the
        party that answers; where it named no `from`, `asking` is its `to`: the party that asked (both when known)."""
        headers = {}
        if self.has_from:
            headers[TO_COUNTRY], headers[TO_PARTY] = self.from_country_code, self.from_party_id
        elif asking is not None:
            headers[TO_COUNTRY], headers[TO_PARTY] = asking
        if self.has_to:
            headers[FROM_COUNTRY], headers[FROM_PARTY] = self.to_country_code, self.to_party_id
        elif answering is not None:
            headers[FROM_COUNTRY], headers[FROM_PARTY] = answering
        return headers


def routing_from_request(request: HttpRequest) -> Routing:
    """Parse the routing headers; a pair given half, or values of the wrong length, are a 2001."""
    meta = request.META
    values = {name: meta.get(key, "").strip() for name, key in _META.items()}
    for country, party in ((FROM_COUNTRY, FROM_PARTY), (TO_COUNTRY, TO_PARTY)):
        if bool(values[country]) != bool(values[party]):
            raise InvalidParameters(f"{country} and {party} must be sent together")
        if values[country] and not (
            len(values[country]) == 2 and values[country].isascii() and values[country].isalpha()
        ):
            raise InvalidParameters(f"{country} must be a 2-letter country code")
        if values[party] and not (len(values[party]) == 3 and values[party].isascii() and values[party].isalnum()):
            raise InvalidParameters(f"{party} must be a 3-character party id")
    return Routing(values[FROM_COUNTRY], values[FROM_PARTY], values[TO_COUNTRY], values[TO_PARTY])
