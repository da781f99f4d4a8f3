"""API keys: issued once, stored only as a SHA-256 hash, bound to one partner and its scopes.

The record is PostgreSQL's (``partners``, ``api_keys``): Redis holds nothing about keys, so
losing it costs no key. Keys carry 256 bits of randomness, so an unsalted hash is safe to store
and lets a request be authenticated with one indexed lookup (and, on the hot path, none: see
:class:`~gateway.auth.Authenticator`'s cache).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from gateway.auth._scopes import Scope
from gateway.database import database_errors
from gateway.database.tables import API_KEYS, PARTNERS
from gateway.settings import Settings

KEY_PREFIX = "rgw"
PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_COLUMNS = "k.id, k.partner_id, k.scopes, k.created_at, k.revoked_at, k.label"
_SAVE_PARTNER = f"""
    INSERT INTO {PARTNERS} (id, rate_limit) VALUES (%(partner)s, %(rate_limit)s)
    ON CONFLICT (id) DO UPDATE
        SET rate_limit = COALESCE(EXCLUDED.rate_limit, {PARTNERS}.rate_limit),
            updated_at = CASE WHEN EXCLUDED.rate_limit IS NULL THEN {PARTNERS}.updated_at ELSE now() END
"""


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


def _record(row: tuple[Any, ...]) -> ApiKeyRecord:
    key_id, partner, scopes, created_at, revoked_at, label = row[:6]
    return ApiKeyRecord(
        key_id=key_id,
        partner=partner,
        scopes=tuple(scopes),
        created_at=created_at,
        revoked_at=revoked_at,
        label=label,
    )


class KeyStore:
    """Create, look up, list and revoke API keys in PostgreSQL.

    Store errors become :class:`~gateway.errors.DatabaseUnavailable` (503 at the edge).
    """

    def __init__(self, database: AsyncConnectionPool, settings: Settings) -> None:
        self._database = database
        self._url = settings.database

    async def create(
        self, partner: str, scopes: list[str], *, rate_limit: int | None = None, label: str = ""
    ) -> IssuedKey:
        """Issue a key for ``partner`` (recorded as a partner on its first key); optionally set
        the partner's requests-per-second limit."""
        validate_partner_id(partner)
        checked = tuple(sorted({Scope(s).value for s in scopes}))
        if not checked:
            raise ValueError("a key needs at least one scope")
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("a rate limit is a positive number of requests per second")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with database_errors(self._url):
            async with self._database.connection() as conn:  # one transaction: partner and key
                await conn.execute(_SAVE_PARTNER, {"partner": partner, "rate_limit": rate_limit})
                cursor = await conn.execute(
                    f"INSERT INTO {API_KEYS} AS k (id, partner_id, key_hash, scopes, label)"
                    f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                    (key_id, partner, hash_key(secret), list(checked), label),
                )
                row = await cursor.fetchone()
        assert row is not None
        return IssuedKey(secret, _record(row))

    async def lookup(self, secret: str) -> tuple[ApiKeyRecord, int | None] | None:
        """The live key for ``secret`` and its partner's rate limit, or ``None``."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS}, p.rate_limit FROM {API_KEYS} k"
                    f" JOIN {PARTNERS} p ON p.id = k.partner_id"
                    " WHERE k.key_hash = %s AND k.revoked_at IS NULL",
                    (hash_key(secret),),
                )
                row = await cursor.fetchone()
        return None if row is None else (_record(row), row[6])

    async def rate_limit(self, partner: str) -> int | None:
        """The partner's own requests-per-second limit, if one was set."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(f"SELECT rate_limit FROM {PARTNERS} WHERE id = %s", (partner,))
                row = await cursor.fetchone()
        return None if row is None else row[0]

    async def list(self) -> list[ApiKeyRecord]:
        """Every key ever issued, revoked ones included, oldest first."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {API_KEYS} k ORDER BY k.created_at, k.id"
                )
                rows = await cursor.fetchall()
        return [_record(row) for row in rows]

    async def revoke(self, key_id: str, *, by: str | None = None) -> ApiKeyRecord | None:
        """Mark a key revoked (kept for the audit trail; revoking it again keeps the first
        revocation); ``None`` if there is no such key."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"UPDATE {API_KEYS} AS k SET revoked_at = COALESCE(k.revoked_at, now()),"
                    " revoked_by = CASE WHEN k.revoked_at IS NULL THEN %s ELSE k.revoked_by END"
                    f" WHERE k.id = %s RETURNING {_COLUMNS}",
                    (by, key_id),
                )
                row = await cursor.fetchone()
        return None if row is None else _record(row)
