"""Partners' webhook endpoints: where a partner wants its ``return-status-changed`` events.

Each partner's endpoints live in one Redis hash (``<ns>:webhook-endpoints:<partner>``, field
= endpoint id), so a partner can only ever reach its own: another partner's id is simply not
in its hash. The signing secret is stored as it is (unlike API keys, it must be kept to sign),
shown to the partner only when it is created or rotated, and never logged: an endpoint's
``repr`` leaves it out.
"""

from __future__ import annotations

import datetime as dt
import secrets

import httpx
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from gateway.errors import InvalidWebhookEndpoint
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import webhook_endpoints

ENDPOINT_PREFIX = "we_"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 10
"""Per partner: every event is posted to each of them."""
MAX_URL_LENGTH = 2048


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One registered endpoint, as stored (secret included)."""

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


def check_url(url: str, *, allow_http: bool) -> str:
    """The URL if we may post events to it; ``InvalidWebhookEndpoint`` (422) says why not."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookEndpoint(f"the url is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidWebhookEndpoint(f"not a valid URL: {exc}") from exc
    allowed = ("https", "http") if allow_http else ("https",)
    if parsed.scheme not in allowed:
        raise InvalidWebhookEndpoint(f"the url must use {' or '.join(allowed)}, not '{parsed.scheme}'")
    if not parsed.host:
        raise InvalidWebhookEndpoint("the url has no host")
    if parsed.userinfo:
        raise InvalidWebhookEndpoint("the url must not carry credentials; events are signed instead")
    if parsed.fragment:
        raise InvalidWebhookEndpoint("the url must not have a fragment")
    return url


_decoder = msgspec.json.Decoder(WebhookEndpoint)


class EndpointRegistry:
    """Create, list, delete and rotate partners' endpoints in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    def _key(self, partner: str) -> str:
        return webhook_endpoints(self._settings, partner)

    async def create(self, partner: str, url: str) -> WebhookEndpoint:
        """Register ``url`` for ``partner`` with a fresh secret."""
        check_url(url, allow_http=self._settings.webhook_allow_http)
        endpoint = WebhookEndpoint(
            id=f"{ENDPOINT_PREFIX}{secrets.token_hex(12)}",
            partner=partner,
            url=url,
            created_at=dt.datetime.now(dt.UTC),
            secret=new_secret(),
        )
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
                        pipe.hset(self._key(partner), endpoint.id, msgspec.json.encode(endpoint))
                        await pipe.execute()
                        return endpoint
                    except WatchError:
                        continue

    async def list(self, partner: str) -> list[WebhookEndpoint]:
        """``partner``'s endpoints, oldest first."""
        with redis_errors():
            raws = await self._redis.hvals(self._key(partner))
        return sorted((_decoder.decode(raw) for raw in raws), key=lambda e: (e.created_at, e.id))

    async def get(self, partner: str, endpoint_id: str) -> WebhookEndpoint | None:
        with redis_errors():
            raw = await self._redis.hget(self._key(partner), endpoint_id)
        return None if raw is None else _decoder.decode(raw)

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
                        pipe.hset(self._key(partner), endpoint_id, msgspec.json.encode(rotated))
                        await pipe.execute()
                        return rotated
                    except WatchError:
                        continue
