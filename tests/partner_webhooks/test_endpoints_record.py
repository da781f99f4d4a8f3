"""Endpoints live in PostgreSQL: a Redis flush loses none (nor a delivery), the limit holds under
concurrent registrations, and endpoints an older deployment kept in Redis are copied across once."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.errors import InvalidWebhookEndpoint
from gateway.partners.endpoints import (
    MAX_ENDPOINTS,
    EndpointRegistry,
    SecretBox,
    WebhookEndpoint,
    import_from_redis,
    new_secret,
)
from gateway.runtime import Outcome
from gateway.settings import Settings
from gateway.storage.keys import webhook_endpoints
from tests.partner_webhooks.conftest import WEBHOOK_SCOPES, Harness, PartnerReceiver, verify
from tests.support.waiting import wait_until

URL = "https://hooks.acme.example/returns"


async def _flush_namespace(redis: aioredis.Redis, settings: Settings) -> None:
    async for key in redis.scan_iter(match=f"{settings.namespace}:*", count=500):
        await redis.delete(key)


async def test_a_redis_flush_loses_no_endpoint_and_no_delivery(
    harness: Harness, receiver: tuple[PartnerReceiver, str], redis: aioredis.Redis
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the first delivery")

    await _flush_namespace(redis, harness.settings)  # ledger markers and all

    listed = await harness.client.get("/v1/webhook-endpoints", headers={"Authorization": f"Bearer {key}"})
    assert [e["id"] for e in listed.json()["data"]] == [endpoint["id"]]
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 2, what="the delivery after the flush")
    received = sandbox.received("/acme/1")
    assert len(received) == 2
    assert all(verify(endpoint["secret"], r["body"], r["headers"]["rgw-signature"]) for r in received)


async def test_concurrent_registrations_keep_the_limit(
    database: AsyncConnectionPool, settings: Settings
) -> None:
    registry = EndpointRegistry(database, settings)
    results = await asyncio.gather(
        *(registry.create("acme", f"{URL}/{n}") for n in range(MAX_ENDPOINTS + 3)), return_exceptions=True
    )
    assert sum(isinstance(r, WebhookEndpoint) for r in results) == MAX_ENDPOINTS
    assert all(isinstance(r, InvalidWebhookEndpoint) for r in results if not isinstance(r, WebhookEndpoint))
    assert len(await registry.list("acme")) == MAX_ENDPOINTS


async def test_endpoints_kept_in_redis_are_imported_once(
    redis: aioredis.Redis, database: AsyncConnectionPool, settings: Settings
) -> None:
    box = SecretBox.from_settings(settings)
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    sealed = WebhookEndpoint(id="we_1", partner="acme", url=URL, created_at=at, secret=new_secret())
    clear = WebhookEndpoint(id="we_2", partner="globex", url=URL, created_at=at, secret=new_secret())
    for endpoint, stored in ((sealed, box.seal(sealed.secret)), (clear, clear.secret)):  # as Redis held them
        as_stored = msgspec.structs.replace(endpoint, secret=stored)
        await redis.hset(
            webhook_endpoints(settings, endpoint.partner), endpoint.id, msgspec.json.encode(as_stored)
        )

    assert await import_from_redis(redis, settings, database) == 2
    assert await import_from_redis(redis, settings, database) == 0

    registry = EndpointRegistry(database, settings)
    assert await registry.list("acme") == [sealed]
    assert await registry.list("globex") == [clear]
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = 'we_2'")
        row = await cursor.fetchone()
    assert row is not None and not row[0].startswith("whsec_")  # sealed on the way in
    with pytest.raises(InvalidWebhookEndpoint):
        for n in range(MAX_ENDPOINTS):
            await registry.create("acme", f"{URL}/{n}")
