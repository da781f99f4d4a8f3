"""``returns-gateway db import-redis`` as an operator runs it: what an older deployment kept in
Redis lands in PostgreSQL, a second run copies nothing, and the key then works without Redis."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.auth import ApiKeyRecord, KeyStore, hash_key
from gateway.settings import Settings
from gateway.storage.keys import api_key, api_key_index
from tests.support.server import cli


async def test_the_command_copies_once_and_says_what_it_copied(
    settings: Settings, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    secret = f"rgw_{uuid.uuid4().hex[:12]}_" + "z" * 43
    record = ApiKeyRecord(
        key_id=uuid.uuid4().hex[:12],
        partner=f"p{uuid.uuid4().hex[:12]}",
        scopes=("returns:write",),
        created_at=dt.datetime.now(dt.UTC),
        label="kept in Redis",
    )
    await redis.set(api_key(settings, hash_key(secret)), msgspec.json.encode(record))
    await redis.hset(api_key_index(settings), record.key_id, hash_key(secret))
    env = {
        "RGW_NAMESPACE": settings.namespace,
        "RGW_REDIS_URL": settings.redis_url,
        "RGW_DATABASE_URL": settings.database,
    }

    first = cli(env, "db", "import-redis")
    assert first.returncode == 0, first.stderr
    assert "API keys and partners: 1 copied" in first.stdout
    again = cli(env, "db", "import-redis")
    assert again.returncode == 0, again.stderr
    assert all(line.endswith(": 0 copied") for line in again.stdout.strip().splitlines()), again.stdout

    await redis.delete(api_key(settings, hash_key(secret)), api_key_index(settings))  # Redis lost
    found = await KeyStore(database, settings).lookup(secret)
    assert found is not None and found[0].partner == record.partner


def test_an_unreachable_database_is_one_clear_error() -> None:
    result = cli(
        {"RGW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/returns_gateway"}, "db", "import-redis"
    )
    assert result.returncode == 1
    assert "PostgreSQL unavailable" in result.stderr and "Traceback" not in result.stderr
