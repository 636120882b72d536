"""The one place that calls partners: auth header, ids, routing headers, timeouts, envelope parsing, error mapping,
page iteration that survives broken Link headers, the SSRF guard and the outbound traffic log."""

import base64
import hashlib
import ipaddress
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import orjson
from django.conf import settings

from ocpi_core.envelope import dumps
from ocpi_core.logging import correlation_id_var
from ocpi_core.metrics import observe_outbound
from ocpi_core.models import Partner
from ocpi_core.routing import Routing
from ocpi_core.traffic import traffic_log_outbound

logger = logging.getLogger(__name__)

_MAX_PAGES = 100_000


class PartnerCallError(Exception):
    """A call to a partner failed; `http_status` / `ocpi_status_code` say how, when it got that far."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        ocpi_status_code: int | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.ocpi_status_code = ocpi_status_code
        self.headers = headers or httpx.Headers()


class UnsafeUrl(PartnerCallError):
    """A partner-supplied URL we refuse to call (scheme, or a private/loopback/link-local target)."""


class PartnerUnreachable(PartnerCallError):
    """Connection refused, DNS failure, timeout: nothing usable came back."""


class PartnerBadResponse(PartnerCallError):
    """An answer that is not an OCPI envelope."""


class PartnerRefused(PartnerCallError):
    """The partner answered with an HTTP error or a non-1xxx OCPI status code."""


@dataclass
class OcpiResult:
    """A successful (1xxx) OCPI answer."""

    url: str
    http_status: int
    status_code: int
    status_message: str
    data: Any
    headers: httpx.Headers = field(default_factory=httpx.Headers)


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (  # is_global also excludes 100.64.0.0/10, not "private" but not public either
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def url_check(url: str) -> None:
    """Refuse URLs a partner must not make us call (SSRF guard, issue #2).

    http(s) only, a host, no credentials in the URL; unless OCPI_ALLOW_PRIVATE_URLS is on, every address the host
    resolves to must be public (no private, loopback, link-local, multicast or reserved ranges).
    """
    if not isinstance(url, str) or len(url) > 2048:
        raise UnsafeUrl("URL is not a string of reasonable length")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"URL cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("URL must be http(s) with a host")
    if parts.username or parts.password:
        raise UnsafeUrl("URL must not carry credentials")
    if settings.OCPI_ALLOW_PRIVATE_URLS:
        return
    host = parts.hostname
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError) as exc:
        raise PartnerUnreachable(f"cannot resolve {host}: {exc}") from exc
    for address in addresses:
        if not _is_public(str(address)):
            raise UnsafeUrl(f"{host} resolves to a non-public address ({address}); refused")


_http_lock = threading.Lock()
_http_client: httpx.Client | None = None


def _http() -> httpx.Client:
    """One pooled httpx client per process; redirects are never followed (they could bypass the SSRF guard)."""
    global _http_client
    with _http_lock:
        if _http_client is None:
            _http_client = httpx.Client(
                follow_redirects=False,
                timeout=httpx.Timeout(settings.OCPI_CLIENT_TIMEOUT, connect=settings.OCPI_CLIENT_CONNECT_TIMEOUT),
                headers={"Accept": "application/json", "User-Agent": "ocpi-platform/2.2.1"},
                trust_env=False,
            )
        return _http_client


def authorization_header(token: str, encoding: str = Partner.TokenEncoding.BASE64) -> str:
    """`Token <base64(utf8(token))>` per 2.2.1, or the raw token for partners configured that way."""
    if encoding == Partner.TokenEncoding.RAW:
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode()).decode()


def _link_next(header: str | None) -> str | None:
    """The URL of `rel="next"` in a Link header, or None."""
    if not header:
        return None
    for part in header.split(","):
        section = part.strip()
        if not section.startswith("<") or ">" not in section:
            continue
        url, _, params = section[1:].partition(">")
        if any(p.strip().replace(" ", "").lower() in ('rel="next"', "rel=next") for p in params.split(";")):
            return url.strip()
    return None


def _with_params(url: str, params: dict[str, Any]) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class OcpiClient:
    """Calls one partner (or a not-yet-registered platform) with a given token."""

    def __init__(
        self,
        *,
        token: str,
        partner: Partner | None = None,
        encoding: str = Partner.TokenEncoding.BASE64,
        routing: Routing | None = None,
    ) -> None:
        self.token = token
        self.partner = partner
        self.encoding = encoding
        self.routing = routing

    @classmethod
    def for_partner(cls, partner: Partner, *, routing: Routing | None = None) -> "OcpiClient":
        """A client presenting the token we hold for this partner, in the form it expects."""
        return cls(token=partner.token_out(), partner=partner, encoding=partner.token_encoding, routing=routing)

    def _headers(self, body: bytes | None, routing: Routing | None) -> dict[str, str]:
        headers = {
            "Authorization": authorization_header(self.token, self.encoding),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id_var.get() or str(uuid.uuid4()),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        routing = routing or self.routing
        if routing is not None:
            # Outbound: `from` is our party, `to` the partner's (REFERENCE §2.10).
            for name, value in (
                ("OCPI-from-country-code", routing.from_country_code),
                ("OCPI-from-party-id", routing.from_party_id),
                ("OCPI-to-country-code", routing.to_country_code),
                ("OCPI-to-party-id", routing.to_party_id),
            ):
                if value:
                    headers[name] = value
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        routing: Routing | None = None,
        timeout: float | None = None,
    ) -> OcpiResult:
        """One OCPI call. Returns the parsed 1xxx envelope; raises a PartnerCallError subclass otherwise.

        `timeout` (seconds, total) overrides OCPI_CLIENT_TIMEOUT for calls a driver waits on (real-time authorize).
        """
        if params:
            url = _with_params(url, params)
        url_check(url)
        body = dumps(json) if json is not None else None
        headers = self._headers(body, routing)
        started = time.perf_counter()
        response: httpx.Response | None = None
        error = ""
        try:
            response = _http().request(
                method,
                url,
                content=body,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
            )
            return self._parse(url, response)
        except httpx.TimeoutException as exc:
            error = f"timeout calling {url}"
            raise PartnerUnreachable(error) from exc
        except httpx.HTTPError as exc:
            error = f"cannot reach {url}: {exc.__class__.__name__}: {exc}"
            raise PartnerUnreachable(error) from exc
        except PartnerCallError as exc:
            error = exc.message
            raise
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            ocpi_status = None
            if response is not None:
                try:
                    ocpi_status = orjson.loads(response.content).get("status_code")
                except (orjson.JSONDecodeError, AttributeError):
                    ocpi_status = None
            http_status = response.status_code if response is not None else None
            observe_outbound(
                partner=self.partner,
                method=method,
                path=urlsplit(url).path,
                http_status=http_status,
                ocpi_status=ocpi_status,
                seconds=duration_ms / 1000,
            )
            traffic_log_outbound(
                partner=self.partner,
                method=method,
                url=url,
                http_status=http_status,
                ocpi_status_code=ocpi_status if isinstance(ocpi_status, int) else None,
                duration_ms=duration_ms,
                request_id=headers["X-Request-ID"],
                correlation_id=headers["X-Correlation-ID"],
                request_body=body,
                response_body=response.content if response is not None else None,
                error=error,
            )

    def _parse(self, url: str, response: httpx.Response) -> OcpiResult:
        try:
            payload = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("status_code"), int):
            raise PartnerBadResponse(
                f"{url} answered HTTP {response.status_code} without an OCPI envelope",
                http_status=response.status_code,
                headers=response.headers,
            )
        status_code = payload["status_code"]
        message = str(payload.get("status_message") or "")
        if response.status_code >= 400 or not 1000 <= status_code < 2000:
            raise PartnerRefused(
                f"{url} answered HTTP {response.status_code}, OCPI {status_code} {message}".strip(),
                http_status=response.status_code,
                ocpi_status_code=status_code,
                headers=response.headers,
            )
        return OcpiResult(
            url=url,
            http_status=response.status_code,
            status_code=status_code,
            status_message=message,
            data=payload.get("data"),
            headers=response.headers,
        )

    def get(self, url: str, **kwargs: Any) -> OcpiResult:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, json: Any = None, **kwargs: Any) -> OcpiResult:
        return self.request("POST", url, json=json, **kwargs)

    def put(self, url: str, json: Any = None, **kwargs: Any) -> OcpiResult:
        return self.request("PUT", url, json=json, **kwargs)

    def patch(self, url: str, json: Any = None, **kwargs: Any) -> OcpiResult:
        return self.request("PATCH", url, json=json, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> OcpiResult:
        return self.request("DELETE", url, **kwargs)

    def iter_pages(
        self,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        limit: int | None = None,
        routing: Routing | None = None,
    ) -> Iterator[OcpiResult]:
        """Every page of a Sender list, following `Link` headers (REFERENCE §2.7).

        A Link that cannot be used (unparseable, unsafe, pointing back at a page already fetched however spelt,
        leading to a page already received, or failing when followed) is replaced by offset arithmetic from the
        objects received so far and X-Total-Count; a partner that answers the same page twice when asked by offset
        (it ignores offset) is stopped there.
        """
        base_params = {k: v for k, v in (params or {}).items() if v is not None}
        if limit is not None:
            base_params["limit"] = limit
        offset = int(base_params.get("offset", 0))
        next_url: str | None = _with_params(url, {**base_params, "offset": offset})
        seen: set[str] = set()  # URLs requested, in a canonical form (query order does not matter)
        followed_link = False
        pages_seen: set[bytes] = set()  # a digest of every page yielded
        for _ in range(_MAX_PAGES):
            if next_url is None:
                return
            seen.add(_canonical(next_url))
            try:
                page = self.get(next_url, routing=routing)
            except PartnerCallError:
                if not followed_link:
                    raise
                logger.warning("Following a partner's Link failed; continuing by offset", extra={"url": next_url})
                next_url, followed_link = _with_params(url, {**base_params, "offset": offset}), False
                if _canonical(next_url) in seen:
                    return
                continue
            items = page.data if isinstance(page.data, list) else None
            if items is None:
                raise PartnerBadResponse(f"{next_url} answered a list request without a list", http_status=200)
            fingerprint = hashlib.sha256(dumps(items)).digest()
            if items and fingerprint in pages_seen:
                # A Link leading back to a page already received (spelt differently): continue by offset instead.
                # Reached by offset, the partner ignores offset: the rest would be duplicates.
                fallback = _with_params(url, {**base_params, "offset": offset})
                if not followed_link or _canonical(fallback) in seen:
                    logger.warning("Partner answered the same page twice; stopping", extra={"url": next_url})
                    return
                logger.warning("Partner's Link led to a page already received; continuing by offset")
                next_url, followed_link = fallback, False
                continue
            pages_seen.add(fingerprint)
            yield page
            offset += len(items)
            total = _int_header(page.headers, "X-Total-Count")
            page_limit = _int_header(page.headers, "X-Limit")
            if page_limit and page_limit > 0 and int(base_params.get("limit") or page_limit + 1) > page_limit:
                base_params["limit"] = page_limit  # offset fallbacks never ask for more than it serves (X-Limit)
            raw_link = page.headers.get("Link")
            if raw_link is None:
                return  # no Link: this was the last page (REFERENCE §2.7)
            link = _link_next(raw_link)
            announced = link is not None or 'rel="next"' in raw_link or "rel=next" in raw_link
            if not announced and (total is None or offset >= total):
                return  # a Link without a next page (rel="prev" ...), and X-Total-Count does not say otherwise
            try:
                candidate = urljoin(next_url, link) if link else None
            except ValueError:  # e.g. an unbalanced IPv6 bracket
                candidate = None
            usable = candidate is not None and _canonical(candidate) not in seen
            if usable and candidate is not None:
                try:
                    url_check(candidate)
                except PartnerCallError:
                    usable = False
            if usable:
                next_url, followed_link = candidate, True
                continue
            logger.warning("Partner sent an unusable Link header; continuing by offset", extra={"link": raw_link})
            if not items or (total is not None and offset >= total):
                return
            next_url, followed_link = _with_params(url, {**base_params, "offset": offset}), False
            if _canonical(next_url) in seen:
                return


def _canonical(url: str) -> str:
    """A URL with its query parameters sorted, to recognise a page already requested however it is spelt."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers.get(name, ""))
    except ValueError:
        return None
