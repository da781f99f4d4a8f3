"""Endpoints' signing secrets are encrypted at rest with RGW_SECRETS_KEY: what the database holds
is not the secret, events still verify at the partner, and a key rotation keeps old secrets readable."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.database import open_pool
from gateway.errors import SecretsKeyError
from gateway.partners.endpoints import EndpointRegistry, SecretBox, generate_key
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table
from gateway.runtime import ConnectorRuntime, Outcome, build_connector
from gateway.sdk import TargetConfigError
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.partner_webhooks.conftest import (
    CONNECTOR,
    TABLE,
    WEBHOOK_SCOPES,
    Harness,
    PartnerReceiver,
    auth,
    verify,
)
from tests.support.server import cli
from tests.support.waiting import wait_until

URL = "https://hooks.acme.example/returns"


async def _stored(database: AsyncConnectionPool, partner: str, endpoint_id: str) -> str:
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT secret_ciphertext FROM webhook_endpoints WHERE partner_id = %s AND id = %s",
            (partner, endpoint_id),
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def test_the_database_holds_the_secret_encrypted_and_events_still_verify(
    harness: Harness,
    receiver: tuple[PartnerReceiver, str],
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    secret = endpoint["secret"]
    async for redis_key in redis.scan_iter(match=f"{harness.settings.namespace}:*"):
        if await redis.type(redis_key) == b"hash":
            assert all(secret.encode() not in v for v in (await redis.hgetall(redis_key)).values())
    stored = await _stored(database, "acme", endpoint["id"])
    assert stored != secret and not stored.startswith("whsec_")
    assert SecretBox(harness.settings.secrets_key).open(stored) == secret

    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the delivery")
    [received] = sandbox.received("/acme/1")
    assert isinstance(received["body"], bytes) and isinstance(received["headers"], dict)
    assert verify(secret, received["body"], received["headers"]["rgw-signature"])


async def test_rotating_the_key_keeps_old_secrets_readable(
    database: AsyncConnectionPool, settings: Settings
) -> None:
    old, new = generate_key(), generate_key()
    before = EndpointRegistry(database, dataclasses.replace(settings, secrets_key=old))
    endpoint = await before.create("acme", URL)
    sealed_with_old = await _stored(database, "acme", endpoint.id)

    both = EndpointRegistry(database, dataclasses.replace(settings, secrets_key=f"{new},{old}"))
    assert (await both.get("acme", endpoint.id)) == endpoint  # the old key still opens it
    added = await both.create("acme", URL + "/2")  # sealed with the new key
    with pytest.raises(SecretsKeyError):
        await before.get("acme", added.id)

    assert await both.reencrypt() == 2
    assert await _stored(database, "acme", endpoint.id) != sealed_with_old
    after = EndpointRegistry(database, dataclasses.replace(settings, secrets_key=new))  # old key removed
    assert [e.secret for e in await after.list("acme")] == [endpoint.secret, added.secret]


async def test_secrets_stored_in_clear_are_read_then_encrypted(
    database: AsyncConnectionPool, settings: Settings
) -> None:
    registry = EndpointRegistry(database, settings)
    endpoint = await registry.create("acme", URL)
    async with database.connection() as conn:  # as the gateway stored it before encryption
        await conn.execute(
            "UPDATE webhook_endpoints SET secret_ciphertext = %s WHERE id = %s",
            (endpoint.secret, endpoint.id),
        )
    assert (await registry.get("acme", endpoint.id)) == endpoint
    assert await registry.reencrypt() == 1
    assert await _stored(database, "acme", endpoint.id) != endpoint.secret
    assert (await registry.get("acme", endpoint.id)) == endpoint


def test_keys_are_checked_and_never_echoed() -> None:
    with pytest.raises(SecretsKeyError, match="not set"):
        SecretBox("")
    with pytest.raises(SecretsKeyError, match="key 2 is not a Fernet key") as refused:
        SecretBox(f"{generate_key()},not-a-key-at-all")
    assert "not-a-key-at-all" not in str(refused.value)
    assert "secrets_key" not in repr(Settings(secrets_key=generate_key()))


async def test_without_a_key_the_api_answers_503_and_the_connector_does_not_start(
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    database: AsyncConnectionPool,
    make_key: KeyFactory,
) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    keyless = dataclasses.replace(settings, secrets_key="")
    async with AsyncTestClient(create_app(keyless, registry)) as client:
        refused = await client.post("/v1/webhook-endpoints", json={"url": URL}, headers=auth(key))
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert "RGW_SECRETS_KEY" not in problem["detail"]  # the partner is told to retry, the log says why
        assert problem["trace_id"]

    spec = parse_routing_table(TABLE.format()).connectors[CONNECTOR]
    connector = build_connector(CONNECTOR, spec)
    with pytest.raises(TargetConfigError, match="RGW_SECRETS_KEY"):
        ConnectorRuntime(
            connector, settings=keyless, spec=spec, redis=redis, database=database
        )  # attaches the connector
    await connector.aclose()


def test_the_cli_reencrypts(settings: Settings) -> None:
    old, new = generate_key(), generate_key()
    env = {
        "RGW_NAMESPACE": settings.namespace,
        "RGW_REDIS_URL": settings.redis_url,
        "RGW_DATABASE_URL": settings.database,
    }

    async def create() -> str:
        pool = await open_pool(settings.database, max_size=1)
        try:
            with_old = dataclasses.replace(settings, secrets_key=old)
            return (await EndpointRegistry(pool, with_old).create("acme", URL)).secret
        finally:
            await pool.close()

    secret = asyncio.run(create())
    done = cli({**env, "RGW_SECRETS_KEY": f"{new},{old}"}, "webhooks", "reencrypt")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1" in done.stdout

    async def read() -> str:
        pool = await open_pool(settings.database, max_size=1)
        try:
            endpoints = await EndpointRegistry(pool, dataclasses.replace(settings, secrets_key=new)).list(
                "acme"
            )
            return endpoints[0].secret
        finally:
            await pool.close()

    assert asyncio.run(read()) == secret
    assert cli({**env, "RGW_SECRETS_KEY": ""}, "webhooks", "reencrypt").returncode == 1
