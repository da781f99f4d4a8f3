"""Bearer-key authentication with a short in-process cache.

Each request would otherwise cost a Redis round trip before any work; keys are
trusted for ``auth_cache_seconds`` after a successful lookup, which bounds how long
a revoked key keeps working on a running gateway.
"""

from __future__ import annotations

import time

import msgspec

from gateway.auth._keys import KeyStore, hash_key
from gateway.auth._scopes import Scope
from gateway.errors import AuthenticationRequired, PermissionDenied

_BEARER = "bearer "
_CACHE_LIMIT = 10_000


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the partner (tenant) a key is bound to, and what it may do."""

    partner: str
    key_id: str
    scopes: frozenset[str]
    rate_limit: int

    def require(self, scope: Scope) -> None:
        """Raise 403 unless the key carries ``scope``."""
        if scope.value not in self.scopes:
            raise PermissionDenied(f"this API key lacks the '{scope.value}' scope")

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN.value in self.scopes


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, or refuses with 401."""

    def __init__(self, keys: KeyStore, *, cache_seconds: float, default_rate_limit: int) -> None:
        self._keys = keys
        self._cache_seconds = cache_seconds
        self._default_rate_limit = default_rate_limit
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer <key>`` header."""
        if not authorization or not authorization[: len(_BEARER)].lower() == _BEARER:
            raise AuthenticationRequired("send 'Authorization: Bearer <api key>'")
        secret = authorization[len(_BEARER) :].strip()
        now = time.monotonic()
        cache_key = hash_key(secret)  # never keep the plain key in memory longer than the request
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._keys.lookup(secret) if secret else None
        if found is None:
            self._cache.pop(cache_key, None)
            raise AuthenticationRequired("the API key is unknown or revoked")
        record, rate_limit = found
        principal = Principal(
            partner=record.partner,
            key_id=record.key_id,
            scopes=frozenset(record.scopes),
            rate_limit=rate_limit if rate_limit is not None else self._default_rate_limit,
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[cache_key] = (now + self._cache_seconds, principal)
        return principal
