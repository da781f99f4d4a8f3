"""Partners' webhook endpoints: where a partner wants its ``return-status-changed`` events.

Each partner's endpoints live in one Redis hash (``<ns>:webhook-endpoints:<partner>``, field
= endpoint id), so a partner can only ever reach its own: another partner's id is simply not
in its hash. The signing secret must be kept to sign (unlike API keys, no hash will do): it is
stored encrypted with ``RGW_SECRETS_KEY`` (:mod:`~gateway.partners._secrets`), shown to the
partner only when it is created or rotated, and never logged: an endpoint's ``repr`` leaves it
out. A URL is registered only if the outbound policy allows it
(:mod:`~gateway.partners._url_policy`), checked again at every delivery.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from gateway.errors import InvalidWebhookEndpoint
from gateway.partners._secrets import SecretBox, generate_key
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
    "new_secret",
    "policy_transport",
]

ENDPOINT_PREFIX = "we_"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 10
"""Per partner: every event is posted to each of them."""


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One registered endpoint, its secret in clear (Redis holds it encrypted)."""

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


class EndpointRegistry:
    """Create, list, delete and rotate partners' endpoints in Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        *,
        policy: UrlPolicy | None = None,
        box: SecretBox | None = None,
    ) -> None:
        self._redis = redis
        self._settings = settings
        self.policy = policy or UrlPolicy.from_settings(settings)
        self._box = box

    @property
    def box(self) -> SecretBox:
        """The secrets' keys; :class:`~gateway.errors.SecretsKeyError` if none is configured."""
        if self._box is None:
            self._box = SecretBox.from_settings(self._settings)
        return self._box

    def _key(self, partner: str) -> str:
        return webhook_endpoints(self._settings, partner)

    def _encode(self, endpoint: WebhookEndpoint) -> bytes:
        return msgspec.json.encode(msgspec.structs.replace(endpoint, secret=self.box.seal(endpoint.secret)))

    def _decode(self, raw: bytes) -> WebhookEndpoint:
        stored = _decoder.decode(raw)
        return msgspec.structs.replace(stored, secret=self.box.open(stored.secret))

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
        stored = self._encode(endpoint)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:  # optimistic: count and add as one step, or try again
                    try:
                        await pipe.watch(self._key(partner))
                        if await pipe.hlen(self._key(partner)) >= MAX_ENDPOINTS:
                            raise InvalidWebhookEndpoint(
                                f"a partner may register at most {MAX_ENDPOINTS} endpoints"
                            )
                        pipe.multi()
                        pipe.hset(self._key(partner), endpoint.id, stored)
                        await pipe.execute()
                        return endpoint
                    except WatchError:
                        continue

    async def list(self, partner: str) -> list[WebhookEndpoint]:
        """``partner``'s endpoints, oldest first."""
        with redis_errors():
            raws = await self._redis.hvals(self._key(partner))
        return sorted((self._decode(raw) for raw in raws), key=lambda e: (e.created_at, e.id))

    async def get(self, partner: str, endpoint_id: str) -> WebhookEndpoint | None:
        with redis_errors():
            raw = await self._redis.hget(self._key(partner), endpoint_id)
        return None if raw is None else self._decode(raw)

    async def delete(self, partner: str, endpoint_id: str) -> bool:
        """Remove it; ``False`` if ``partner`` has no such endpoint."""
        with redis_errors():
            return bool(await self._redis.hdel(self._key(partner), endpoint_id))

    async def rotate_secret(self, partner: str, endpoint_id: str) -> WebhookEndpoint | None:
        """Replace the secret; events sent from now on are signed with the new one.
        ``None`` if ``partner`` has no such endpoint (a concurrent delete wins)."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(self._key(partner))
                        raw = await pipe.hget(self._key(partner), endpoint_id)
                        if raw is None:
                            return None
                        rotated = msgspec.structs.replace(_decoder.decode(raw), secret=new_secret())
                        pipe.multi()
                        pipe.hset(self._key(partner), endpoint_id, self._encode(rotated))
                        await pipe.execute()
                        return rotated
                    except WatchError:
                        continue

    async def reencrypt(self) -> int:
        """Seal every stored secret again with the newest key of ``RGW_SECRETS_KEY`` (and the
        ones stored in clear before encryption for the first time); how many were rewritten.
        The step between adding a new key and removing the old one; safe to run again."""
        box = self.box  # no key, no run: even with nothing stored yet
        rewritten = 0
        with redis_errors():
            async for key in self._redis.scan_iter(match=self._key("*"), count=500):
                async with self._redis.pipeline(transaction=True) as pipe:
                    while True:  # against a concurrent rotation or delete of the same hash
                        try:
                            await pipe.watch(key)
                            raws = await pipe.hgetall(key)
                            resealed = {}
                            for field, raw in raws.items():
                                stored = _decoder.decode(raw)
                                again = msgspec.structs.replace(stored, secret=box.reseal(stored.secret))
                                resealed[field] = msgspec.json.encode(again)
                            pipe.multi()
                            if resealed:
                                pipe.hset(key, mapping=resealed)
                            await pipe.execute()
                            rewritten += len(resealed)
                            break
                        except WatchError:
                            continue
        return rewritten
