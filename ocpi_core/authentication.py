"""`Authorization: Token <base64>` authentication of partners (REFERENCE §2.1) and the permissions built on it."""

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import Model
from django.db.models.base import ModelState
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ocpi_core.crypto import token_hash
from ocpi_core.db import pg_fetch
from ocpi_core.exceptions import Unauthorized
from ocpi_core.hot import MISSING, HotCache, hot_caches_poll
from ocpi_core.models import Partner, PartnerToken

_CONTACT_RESOLUTION = timedelta(minutes=1)  # last_contact_at is written at most once a minute per partner


@dataclass(frozen=True, slots=True)
class PartnerAuth:
    """What authentication learnt: which partner, with which kind of token, in which header form."""

    partner: Partner
    token: PartnerToken
    encoding: str
    value: str  # the clear token, for this request only (Credentials GET returns it)


def _candidates(value: str) -> list[tuple[str, str]]:
    """(token, encoding) pairs a header value may stand for: its Base64 decoding first, then the raw value."""
    candidates: list[tuple[str, str]] = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        decoded = ""
    if decoded.endswith("\n"):  # the spec's own samples encode a trailing newline (REFERENCE §2.1)
        decoded = decoded[:-1]
    if decoded and decoded.isprintable() and decoded.isascii():
        candidates.append((decoded, Partner.TokenEncoding.BASE64))
    candidates.append((value, Partner.TokenEncoding.RAW))
    return candidates


def _lookup_sql() -> tuple[str, list[str], list[str]]:
    """One statement reading a token row and its partner row (built once per process)."""
    token_fields = [f.attname for f in PartnerToken._meta.concrete_fields]
    partner_fields = [f.attname for f in Partner._meta.concrete_fields]
    token_table, partner_table = PartnerToken._meta.db_table, Partner._meta.db_table
    columns = [f't."{PartnerToken._meta.get_field(n).column}"' for n in token_fields]  # type: ignore[union-attr]
    columns += [f'p."{Partner._meta.get_field(n).column}"' for n in partner_fields]  # type: ignore[union-attr]
    # names come from the models' own metadata; the values are bound parameters
    sql = (
        f'SELECT {", ".join(columns)} FROM "{token_table}" t JOIN "{partner_table}" p '  # noqa: S608
        f'ON p."id" = t."partner_id" WHERE t."token_hash" IN (%s, %s)'
    )
    return sql, token_fields, partner_fields


_LOOKUP: tuple[str, list[str], list[str]] | None = None
_tokens = HotCache("tokens")


def _copy(instance: Model) -> Any:
    """A copy of a model instance read from the database, with its own state (no cached relations). Not
    copy.copy: that goes through Model.__reduce__ and costs 15 µs for the token and its partner, this 2 µs, on every
    OCPI request."""
    copy = instance.__class__.__new__(instance.__class__)
    copy.__dict__.update(instance.__dict__)
    copy._state = ModelState()
    copy._state.db, copy._state.adding = instance._state.db, False
    return copy


def _auth_copy(auth: PartnerAuth) -> PartnerAuth:
    """A request's own copy of a cached PartnerAuth: the request may change its partner (last contact ...)."""
    token, partner = _copy(auth.token), _copy(auth.partner)
    token.partner = partner
    return PartnerAuth(partner=partner, token=token, encoding=auth.encoding, value=auth.value)


def partner_token_lookup(header: str) -> PartnerAuth | None:
    """Find the partner token an Authorization header carries, or None.

    One indexed statement. On PostgreSQL it is a prepared statement (`pg_fetch`), because this runs on every OCPI
    request: it skips the ORM's query building and PostgreSQL's planning, and the rows are turned into model
    instances as the ORM would. A token found is then kept per process (`ocpi_core.hot`: only while the process hears
    the invalidations every change to tokens and partners sends, so a rotated or revoked token stops working at once
    everywhere; never from inside a transaction; OCPI_TOKEN_CACHE=false turns it off). Unknown tokens are always
    looked up.
    """
    global _LOOKUP
    connection = connections[router.db_for_read(PartnerToken)]
    listening = hot_caches_poll()  # also for the other hot caches
    cacheable = listening and getattr(settings, "OCPI_TOKEN_CACHE", True) and not connection.in_atomic_block
    if cacheable:
        cached = _tokens.get(header)
        if cached is not MISSING:
            return _auth_copy(cached)
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return None
    candidates = _candidates(value)
    hashes = {token_hash(token): (token, encoding) for token, encoding in candidates}
    found: list[PartnerToken]
    if connection.vendor == "postgresql":  # psycopg returns every column as the ORM would (aware datetimes ...)
        if _LOOKUP is None:
            _LOOKUP = _lookup_sql()
        sql, token_fields, partner_fields = _LOOKUP
        params = list(hashes)[:2]
        params += params[:1] * (2 - len(params))
        found = []
        for row in pg_fetch(sql, params, using=connection.alias):
            token = PartnerToken.from_db(connection.alias, token_fields, row[: len(token_fields)])
            token.partner = Partner.from_db(connection.alias, partner_fields, row[len(token_fields) :])
            found.append(token)
    else:  # other databases need the ORM's value converters (SQLite returns datetimes as text)
        found = list(PartnerToken.objects.select_related("partner").filter(token_hash__in=hashes.keys()))
    if not found:
        return None
    # Prefer the Base64 reading when both readings happen to be known tokens.
    found.sort(key=lambda row: hashes[row.token_hash][1] != Partner.TokenEncoding.BASE64)
    best = found[0]
    value, encoding = hashes[best.token_hash]
    auth = PartnerAuth(partner=best.partner, token=best, encoding=encoding, value=value)
    if cacheable:  # no poll between the read and this: a change committed meanwhile empties it at the next poll
        _tokens.set(header, _auth_copy(auth))
    return auth


def _note_contact(auth: PartnerAuth) -> None:
    """Remember when the partner last called and which header form it uses, without a write per request."""
    partner = auth.partner
    now = timezone.now()
    changes: dict[str, Any] = {}
    if partner.last_contact_at is None or now - partner.last_contact_at > _CONTACT_RESOLUTION:
        changes["last_contact_at"] = now
    if partner.token_encoding_seen != auth.encoding:
        changes["token_encoding_seen"] = auth.encoding
    if changes:
        Partner.objects.filter(pk=partner.pk).update(**changes)
        for field, value in changes.items():
            setattr(partner, field, value)


def authenticate_request(request: HttpRequest) -> PartnerAuth:
    """The partner behind a request's Authorization header (401 when there is none), noted on the request for the
    traffic log and the metrics. Used by the DRF views and by the hot paths (ocpi_core.fastpath) alike."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise Unauthorized("Missing Authorization header")
    auth = partner_token_lookup(header)
    if auth is None:
        raise Unauthorized("Unknown or malformed credentials token")
    _note_contact(auth)
    request.ocpi_partner = auth.partner  # type: ignore[attr-defined]  # read by the traffic log
    return auth


def require_registered(auth: PartnerAuth) -> None:
    """Functional modules take only a registered partner's credentials token: token A or a pending token is a 401."""
    if auth.token.kind != PartnerToken.Kind.CREDENTIALS or auth.partner.status != Partner.Status.REGISTERED:
        raise Unauthorized("This token is not valid for this module")


class OcpiTokenAuthentication(BaseAuthentication):
    """Token auth for partners: Base64 per 2.2.1, raw tokens tolerated from older peers (remembered per partner)."""

    def authenticate(self, request: Request) -> tuple[Partner, PartnerAuth] | None:
        auth = authenticate_request(request._request)
        return auth.partner, auth

    def authenticate_header(self, request: Request) -> str:
        return "Token"


def request_auth(request: Request) -> PartnerAuth:
    """The PartnerAuth of an authenticated OCPI request."""
    auth = request.auth
    if not isinstance(auth, PartnerAuth):
        raise Unauthorized()
    return auth


class IsRegisteredPartner(BasePermission):
    """Functional modules: only a registered partner's credentials token. Token A (or a pending token) is a 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        require_registered(request_auth(request))
        return True


class AnyPartnerToken(BasePermission):
    """Versions and credentials: token A, a pending token and the credentials token are all accepted."""

    def has_permission(self, request: Request, view: Any) -> bool:
        auth = request_auth(request)
        if auth.partner.status == Partner.Status.UNREGISTERED and auth.token.kind != PartnerToken.Kind.PENDING:
            raise Unauthorized("This partner is unregistered")
        return True
