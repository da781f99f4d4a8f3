"""Partners' webhook endpoints: where a partner wants its ``return-status-changed`` events.

Endpoints live in PostgreSQL (``webhook_endpoints``), every query keyed by the partner as well
as the endpoint id, so a partner can only ever reach its own. The signing secret must be kept
to sign (unlike API keys, no hash will do): it is stored encrypted with ``RGW_SECRETS_KEY``
(:mod:`~gateway.partners._secrets`), shown to the partner only when it is created or rotated,
and never logged: an endpoint's ``repr`` leaves it out. Redis holds nothing of them. A URL is
registered only if the outbound policy allows it
(:mod:`~gateway.partners._url_policy`), checked again at every delivery.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.database import database_errors
from gateway.database.tables import PARTNERS, WEBHOOK_ENDPOINTS
from gateway.errors import InvalidWebhookEndpoint
from gateway.partners._secrets import CLEAR_PREFIX, SecretBox, generate_key
from gateway.partners._url_policy import (
    MAX_URL_LENGTH,
    IPAddress,
    Resolver,
    UrlPolicy,
    address_refusal,
    policy_transport,
)
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import webhook_endpoints

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_URL_LENGTH",
    "EndpointRegistry",
    "EndpointResource",
    "IPAddress",
    "Resolver",
    "SecretBox",
    "UrlPolicy",
    "WebhookEndpoint",
    "address_refusal",
    "check_url",
    "generate_key",
    "import_from_redis",
    "new_secret",
    "policy_transport",
]

ENDPOINT_PREFIX = "we_"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 10
"""Per partner: every event is posted to each of them."""


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One registered endpoint, its secret in clear (the database holds it encrypted)."""

    id: str
    partner: str
    url: str
    enabled: bool = True
    created_at: dt.datetime
    secret: str

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"WebhookEndpoint(id={self.id!r}, partner={self.partner!r}, url={self.url!r})"


class EndpointResource(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An endpoint as the API shows it; ``secret`` only when created or rotated."""

    object: str
    id: str
    url: str
    enabled: bool
    created_at: dt.datetime
    secret: str | None = None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, *, with_secret: bool = False) -> EndpointResource:
        return cls(
            object="webhook_endpoint",
            id=endpoint.id,
            url=endpoint.url,
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
            secret=endpoint.secret if with_secret else None,
        )


def new_secret() -> str:
    return f"{SECRET_PREFIX}{secrets.token_urlsafe(32)}"


def check_url(url: str, *, allow_http: bool, allowed_hosts: str | Iterable[str] = ()) -> str:
    """The URL if we may post events to it, as far as can be told without DNS;
    ``InvalidWebhookEndpoint`` (422) says why not (see :class:`UrlPolicy`)."""
    UrlPolicy(allow_http=allow_http, allowed_hosts=allowed_hosts).check_url(url)
    return url


_decoder = msgspec.json.Decoder(WebhookEndpoint)
"""The Redis format the endpoints had before PostgreSQL (read by :func:`import_from_redis`)."""
_COLUMNS = "id, partner_id, url, enabled, created_at, secret_ciphertext"


class EndpointRegistry:
    """Create, list, delete and rotate partners' endpoints in PostgreSQL (errors:
    :class:`~gateway.errors.DatabaseUnavailable`)."""

    def __init__(
        self,
        database: AsyncConnectionPool,
        settings: Settings,
        *,
        policy: UrlPolicy | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self._database = database
        self._settings = settings
        self._url = settings.database
        self.policy = policy or UrlPolicy.from_settings(settings)
        self._box = box

    @property
    def box(self) -> SecretBox:
        """The secrets' keys; :class:`~gateway.errors.SecretsKeyError` if none is configured."""
        if self._box is None:
            self._box = SecretBox.from_settings(self._settings)
        return self._box

    def _endpoint(self, row: tuple[Any, ...]) -> WebhookEndpoint:
        endpoint_id, partner, url, enabled, created_at, sealed = row
        return WebhookEndpoint(
            id=endpoint_id,
            partner=partner,
            url=url,
            enabled=enabled,
            created_at=created_at,
            secret=self.box.open(sealed),
        )

    async def create(self, partner: str, url: str) -> WebhookEndpoint:
        """Register ``url`` for ``partner`` with a fresh secret."""
        await self.policy.check(url)
        endpoint = WebhookEndpoint(
            id=f"{ENDPOINT_PREFIX}{secrets.token_hex(12)}",
            partner=partner,
            url=url,
            created_at=dt.datetime.now(dt.UTC),
            secret=new_secret(),
        )
        sealed = self.box.seal(endpoint.secret)
        with database_errors(self._url):
            async with self._database.connection() as conn:
                # The partner's row, locked, serializes concurrent registrations: count and add
                # as one step, so the limit holds.
                await conn.execute(
                    f"INSERT INTO {PARTNERS} (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (partner,)
                )
                await conn.execute(f"SELECT FROM {PARTNERS} WHERE id = %s FOR UPDATE", (partner,))
                cursor = await conn.execute(
                    f"SELECT count(*) FROM {WEBHOOK_ENDPOINTS} WHERE partner_id = %s", (partner,)
                )
                counted = await cursor.fetchone()
                if counted is not None and counted[0] >= MAX_ENDPOINTS:
                    raise InvalidWebhookEndpoint(f"a partner may register at most {MAX_ENDPOINTS} endpoints")
                await conn.execute(
                    f"INSERT INTO {WEBHOOK_ENDPOINTS} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                    (endpoint.id, partner, url, endpoint.enabled, endpoint.created_at, sealed),
                )
        return endpoint

    async def list(self, partner: str) -> list[WebhookEndpoint]:
        """``partner``'s endpoints, oldest first."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {WEBHOOK_ENDPOINTS} WHERE partner_id = %s"
                    " ORDER BY created_at, id",
                    (partner,),
                )
                rows = await cursor.fetchall()
        return [self._endpoint(row) for row in rows]

    async def get(self, partner: str, endpoint_id: str) -> WebhookEndpoint | None:
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {WEBHOOK_ENDPOINTS} WHERE partner_id = %s AND id = %s",
                    (partner, endpoint_id),
                )
                row = await cursor.fetchone()
        return None if row is None else self._endpoint(row)

    async def delete(self, partner: str, endpoint_id: str) -> bool:
        """Remove it; ``False`` if ``partner`` has no such endpoint."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"DELETE FROM {WEBHOOK_ENDPOINTS} WHERE partner_id = %s AND id = %s",
                    (partner, endpoint_id),
                )
                return cursor.rowcount > 0

    async def rotate_secret(self, partner: str, endpoint_id: str) -> WebhookEndpoint | None:
        """Replace the secret; events sent from now on are signed with the new one.
        ``None`` if ``partner`` has no such endpoint (a concurrent delete wins)."""
        secret = new_secret()
        sealed = self.box.seal(secret)
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"UPDATE {WEBHOOK_ENDPOINTS} SET secret_ciphertext = %s, secret_rotated_at = now()"
                    f" WHERE partner_id = %s AND id = %s RETURNING {_COLUMNS}",
                    (sealed, partner, endpoint_id),
                )
                row = await cursor.fetchone()
        return None if row is None else self._endpoint(row)

    async def reencrypt(self) -> int:
        """Seal every stored secret again with the newest key of ``RGW_SECRETS_KEY`` (and the
        ones stored in clear before encryption for the first time); how many were rewritten.
        The step between adding a new key and removing the old one; safe to run again."""
        box = self.box  # no key, no run: even with nothing stored yet
        with database_errors(self._url):
            async with self._database.connection() as conn:  # rows locked against a rotation meanwhile
                cursor = await conn.execute(
                    f"SELECT id, secret_ciphertext FROM {WEBHOOK_ENDPOINTS} ORDER BY id FOR UPDATE"
                )
                rows = await cursor.fetchall()
                for endpoint_id, sealed in rows:
                    await conn.execute(
                        f"UPDATE {WEBHOOK_ENDPOINTS} SET secret_ciphertext = %s WHERE id = %s",
                        (box.reseal(sealed), endpoint_id),
                    )
        return len(rows)


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy the endpoints an older deployment kept in Redis (one hash per partner,
    ``<ns>:webhook-endpoints:<partner>``, field = endpoint id, value = JSON with the secret
    sealed) into ``webhook_endpoints``; returns how many were added. Sealed secrets are copied
    as they are; one stored in clear (before encryption) is sealed on the way. Idempotent: an
    endpoint already there is left as it is."""
    box: SecretBox | None = None
    found: list[WebhookEndpoint] = []
    with redis_errors():
        async for name in redis.scan_iter(match=webhook_endpoints(settings, "*"), count=500):
            found.extend(_decoder.decode(raw) for raw in await redis.hvals(name))
    copied = 0
    with database_errors(settings.database):
        async with pool.connection() as conn:
            for endpoint in sorted(found, key=lambda e: (e.created_at, e.id)):
                sealed = endpoint.secret
                if sealed.startswith(CLEAR_PREFIX):
                    box = box or SecretBox.from_settings(settings)
                    sealed = box.seal(sealed)
                await conn.execute(
                    f"INSERT INTO {PARTNERS} (id) VALUES (%s) ON CONFLICT (id) DO NOTHING",
                    (endpoint.partner,),
                )
                cursor = await conn.execute(
                    f"INSERT INTO {WEBHOOK_ENDPOINTS} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        endpoint.id,
                        endpoint.partner,
                        endpoint.url,
                        endpoint.enabled,
                        endpoint.created_at,
                        sealed,
                    ),
                )
                copied += cursor.rowcount
    return copied
