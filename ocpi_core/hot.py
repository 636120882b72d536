"""Short-lived in-process caches of what every OCPI request reads and almost never changes: a partner's parties
and our own parties. (The token behind a request is never cached: ocpi_core.authentication reads it fresh, so a
rotated or revoked token stops working at once everywhere.)

Each entry lives OCPI_HOT_CACHE_SECONDS (0 turns the caches off). A change saved or deleted through the ORM in this
process (Partner, PartnerToken, Party, PartnerEndpoint) clears them all at once; a partner's parties are also keyed
by the partner row's `updated_at`, which every credentials handshake bumps, so other processes never use parties a
handshake replaced. Own parties changed in another process are seen when the entry expires. Bounded: a full cache
is emptied, never grown.
"""

import threading
import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from ocpi_core.constants import Role
from ocpi_core.exceptions import NotFound
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party
from ocpi_core.routing import Routing

_MAX_ENTRIES = 2048
_MISSING = object()


class HotCache:
    """A dict of (expiry, value) with a time-to-live read from the settings at each call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._entries: dict[Any, tuple[float, Any]] = {}
        _ALL.append(self)

    @staticmethod
    def ttl() -> float:
        return float(getattr(settings, "OCPI_HOT_CACHE_SECONDS", 0) or 0)

    def get(self, key: Any) -> Any:
        """The cached value, or `MISSING` (also when caching is off or the entry expired)."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        if entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return _MISSING
        return entry[1]

    def set(self, key: Any, value: Any) -> None:
        ttl = self.ttl()
        if ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ttl, value)

    def clear(self) -> None:
        self._entries.clear()


MISSING = _MISSING
_ALL: list[HotCache] = []
_lock = threading.Lock()


def hot_caches_clear(**_: Any) -> None:
    """Forget every cached entry (connected to the save/delete signals of the models the caches read)."""
    with _lock:
        for cache in _ALL:
            cache.clear()


for _model in (Partner, PartnerToken, Party, PartnerEndpoint):
    post_save.connect(hot_caches_clear, sender=_model, dispatch_uid=f"ocpi-hot-cache-save-{_model.__name__}")
    post_delete.connect(hot_caches_clear, sender=_model, dispatch_uid=f"ocpi-hot-cache-delete-{_model.__name__}")


_own_parties = HotCache("own parties")


def own_party_keys(*, routing: Routing, role: str) -> list[tuple[str, str]]:
    """(country_code, party_id), lower-cased, of the own parties of `role` a request is addressed to: the cached
    form of `selectors.own_parties_for_request` (same rules, the same 404 for a party that is not ours)."""
    to = (routing.to_country_code.lower(), routing.to_party_id.lower()) if routing.has_to else None
    key = (role, to)
    cached = _own_parties.get(key)
    if cached is MISSING:
        from ocpi_core.selectors import own_parties_for_request

        try:
            parties = own_parties_for_request(routing=routing, role=role)
            cached = sorted({(cc.lower(), pid.lower()) for cc, pid in parties.values_list("country_code", "party_id")})
        except NotFound as exc:
            cached = exc
        _own_parties.set(key, cached)
    if isinstance(cached, NotFound):
        raise NotFound(cached.message)
    return list(cached)


_partner_parties = HotCache("partner parties")


def partner_owns(*, partner: Partner | None, country_code: str, party_id: str) -> bool:
    """The cached form of `selectors.partner_assert_owns` as a test: may `partner` write under this party? (our own
    platform, `None`, always; a hub relays for others; CiString comparison)."""
    if partner is None:
        return True
    # Keyed by the partner row's updated_at too (read fresh with the token on every request): a credentials
    # handshake in any process saves the partner with its new parties, so no process keeps the old ones.
    key = (partner.pk, partner.updated_at)
    parties = _partner_parties.get(key)
    if parties is MISSING:
        rows = partner.parties.values_list("country_code", "party_id", "role")
        parties = frozenset((cc.upper(), pid.upper(), role) for cc, pid, role in rows)
        _partner_parties.set(key, parties)
    if any(role == Role.HUB for _, _, role in parties):
        return True
    wanted = (country_code.upper(), party_id.upper())
    return any((cc, pid) == wanted for cc, pid, _ in parties)
