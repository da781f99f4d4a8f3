"""API keys: issued once, stored only as a SHA-256 hash, bound to one partner and its scopes.

Keys carry 256 bits of randomness, so an unsalted hash is safe to store and lets a
request be authenticated with one Redis lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

import msgspec
import redis.asyncio as aioredis

from gateway.auth._scopes import Scope
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import api_key, api_key_index, partner_settings

KEY_PREFIX = "rgw"
PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the gateway keeps about a key (never the key itself)."""

    key_id: str
    partner: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    label: str = ""


class IssuedKey(msgspec.Struct, frozen=True):
    """A freshly created key: the secret is shown once and never stored."""

    secret: str
    record: ApiKeyRecord


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_partner_id(partner: str) -> str:
    """Partner ids appear in Redis keys and headers, so keep them to a safe alphabet."""
    if not PARTNER_ID.match(partner):
        raise ValueError(
            f"partner id {partner!r} must be 1-63 lowercase letters, digits, '_' or '-', starting alnum"
        )
    return partner


class KeyStore:
    """Create, look up, list and revoke API keys in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    def _record_key(self, key_hash: str) -> str:
        return api_key(self._settings, key_hash)

    @property
    def _index_key(self) -> str:
        return api_key_index(self._settings)

    def _partner_key(self, partner: str) -> str:
        return partner_settings(self._settings, partner)

    async def create(
        self, partner: str, scopes: list[str], *, rate_limit: int | None = None, label: str = ""
    ) -> IssuedKey:
        """Issue a key for ``partner``; optionally set the partner's requests-per-second limit."""
        validate_partner_id(partner)
        checked = tuple(sorted({Scope(s).value for s in scopes}))
        if not checked:
            raise ValueError("a key needs at least one scope")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKeyRecord(
            key_id=key_id, partner=partner, scopes=checked, created_at=dt.datetime.now(dt.UTC), label=label
        )
        key_hash = hash_key(secret)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._record_key(key_hash), msgspec.json.encode(record))
                pipe.hset(self._index_key, key_id, key_hash)
                if rate_limit is not None:
                    pipe.hset(self._partner_key(partner), "rate_limit", str(rate_limit))
                await pipe.execute()
        return IssuedKey(secret, record)

    async def lookup(self, secret: str) -> tuple[ApiKeyRecord, int | None] | None:
        """The live key for ``secret`` and its partner's rate limit, or ``None``."""
        with redis_errors():
            raw = await self._redis.get(self._record_key(hash_key(secret)))
        if raw is None:
            return None
        record = msgspec.json.decode(raw, type=ApiKeyRecord)
        if record.revoked_at is not None:
            return None
        return record, await self.rate_limit(record.partner)

    async def rate_limit(self, partner: str) -> int | None:
        """The partner's own requests-per-second limit, if one was set."""
        with redis_errors():
            value = await self._redis.hget(self._partner_key(partner), "rate_limit")
        return int(value) if value is not None else None

    async def list(self) -> list[ApiKeyRecord]:
        """Every key ever issued, revoked ones included, oldest first."""
        with redis_errors():
            hashes = await self._redis.hgetall(self._index_key)
            raws = (
                await self._redis.mget([self._record_key(h.decode()) for h in hashes.values()])
                if hashes
                else []
            )
        records = [msgspec.json.decode(r, type=ApiKeyRecord) for r in raws if r is not None]
        return sorted(records, key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> ApiKeyRecord | None:
        """Mark a key revoked (kept for the audit trail); ``None`` if there is no such key."""
        with redis_errors():
            key_hash = await self._redis.hget(self._index_key, key_id)
            if key_hash is None:
                return None
            raw = await self._redis.get(self._record_key(key_hash.decode()))
            if raw is None:
                return None
            record = msgspec.structs.replace(
                msgspec.json.decode(raw, type=ApiKeyRecord), revoked_at=dt.datetime.now(dt.UTC)
            )
            await self._redis.set(self._record_key(key_hash.decode()), msgspec.json.encode(record))
        return record
