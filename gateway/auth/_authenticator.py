"""Bearer-key authentication with a short in-process cache.

Each request would otherwise cost a PostgreSQL round trip before any work; keys are
trusted for ``auth_cache_seconds`` after a successful lookup, which bounds how long
a revoked key keeps working on a running gateway. That is never more than
:data:`MAX_CACHE_SECONDS`, counted from before the lookup read the key, so a key revoked
on any replica (or by the CLI) stops working within a second on every replica without
pub/sub or a database query per request: a busy key costs a lookup or two a second per process,
and concurrent requests whose entry just expired share one lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from gateway.auth._keys import KeyStore, hash_key
from gateway.auth._scopes import Scope
from gateway.errors import AuthenticationRequired, PermissionDenied

log = logging.getLogger(__name__)

_BEARER = "bearer "
_CACHE_LIMIT = 10_000
MAX_CACHE_SECONDS = 0.5
"""Longest a verified key is trusted without asking PostgreSQL again: revocation takes effect
within a second on every replica, with room for the lookup itself."""


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
        if cache_seconds > MAX_CACHE_SECONDS:
            log.warning(
                "RGW_AUTH_CACHE_SECONDS=%s: keys are cached %s s at most, so revocation takes effect "
                "within a second",
                cache_seconds,
                MAX_CACHE_SECONDS,
            )
        self._keys = keys
        self._cache_seconds = min(cache_seconds, MAX_CACHE_SECONDS)
        self._default_rate_limit = default_rate_limit
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lookups: dict[str, asyncio.Task[Principal]] = {}

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
        if self._cache_seconds <= 0 or not secret:
            return await self._lookup(secret, cache_key)
        lookup = self._lookups.get(cache_key)
        if lookup is None:  # one lookup for every request that finds the entry expired
            lookup = asyncio.ensure_future(self._lookup(secret, cache_key))
            self._lookups[cache_key] = lookup
            lookup.add_done_callback(lambda done: self._looked_up(cache_key, done))
        return await asyncio.shield(lookup)  # a caller that gives up does not cancel the others'

    def _looked_up(self, cache_key: str, done: asyncio.Task[Principal]) -> None:
        self._lookups.pop(cache_key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter gave up

    async def _lookup(self, secret: str, cache_key: str) -> Principal:
        started = time.monotonic()  # trust runs from before the read, not from its answer
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
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = (started + self._cache_seconds, principal)
        return principal
