"""API keys live in PostgreSQL: losing Redis costs none, an unreachable database is a 503, and
keys an older deployment kept in Redis are copied across once."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.auth import ApiKeyRecord, Authenticator, KeyStore, hash_key, import_from_redis
from gateway.errors import AuthenticationRequired, DatabaseUnavailable
from gateway.settings import Settings
from gateway.storage.keys import api_key, api_key_index, partner_settings
from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers


def _partner() -> str:
    return f"p{uuid.uuid4().hex[:12]}"


async def _flush_namespace(redis: aioredis.Redis, settings: Settings) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{settings.namespace}:*", count=500)]
    if keys:
        await redis.delete(*keys)


async def test_every_key_still_authenticates_after_redis_loses_the_namespace(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis
) -> None:
    partner = _partner()
    keys = [await make_key(partner), await make_key(partner, scopes=("returns:read",), rate_limit=3)]
    for key in keys:
        assert (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 200

    await _flush_namespace(redis, gateway.settings)

    for key in keys:
        assert (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 200
    assert (await gateway.client.get("/v1/contracts", headers=headers("rgw_nope_nope"))).status_code == 401


async def test_the_partner_keeps_the_last_rate_limit_set(
    settings: Settings, database: AsyncConnectionPool
) -> None:
    store = KeyStore(database, settings)
    partner = _partner()
    first = await store.create(partner, ["returns:read"], rate_limit=5)
    await store.create(partner, ["returns:read"])  # no limit given: the partner's stays
    authenticator = Authenticator(store, cache_seconds=0, default_rate_limit=10)
    assert (await authenticator.authenticate(f"Bearer {first.secret}")).rate_limit == 5
    await store.create(partner, ["returns:read"], rate_limit=9)
    assert (await authenticator.authenticate(f"Bearer {first.secret}")).rate_limit == 9
    assert [r.key_id for r in await store.list() if r.partner == partner][:1] == [first.record.key_id]

    revoked = await store.revoke(first.record.key_id, by="cli:ops")
    assert revoked is not None and revoked.revoked_at is not None
    again = await store.revoke(first.record.key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # the first revocation stays
    assert await store.revoke("000000000000") is None
    with pytest.raises(AuthenticationRequired):
        await authenticator.authenticate(f"Bearer {first.secret}")


async def test_an_unreachable_database_is_unavailable_not_unknown(settings: Settings) -> None:
    nowhere = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=1"
    pool = AsyncConnectionPool(nowhere, min_size=0, max_size=1, timeout=0.5, open=False)
    await pool.open(wait=False)
    try:
        store = KeyStore(pool, settings)
        with pytest.raises(DatabaseUnavailable):
            await store.lookup("rgw_abc_def")
        authenticator = Authenticator(store, cache_seconds=0.5, default_rate_limit=10)
        with pytest.raises(DatabaseUnavailable):  # a 503 with Retry-After at the edge, never a 401
            await authenticator.authenticate("Bearer rgw_abc_def")
    finally:
        await pool.close()


async def test_keys_kept_in_redis_are_imported_once(
    settings: Settings, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    partner, other = _partner(), _partner()
    now = dt.datetime.now(dt.UTC)
    old = {  # as the Redis KeyStore wrote them
        f"rgw_{uuid.uuid4().hex[:12]}_" + "x" * 43: ApiKeyRecord(
            key_id=uuid.uuid4().hex[:12],
            partner=partner,
            scopes=("returns:write",),
            created_at=now,
            label="old",
        ),
        f"rgw_{uuid.uuid4().hex[:12]}_" + "y" * 43: ApiKeyRecord(
            key_id=uuid.uuid4().hex[:12],
            partner=partner,
            scopes=("admin", "returns:read"),
            created_at=now,
            revoked_at=now,
        ),
    }
    for secret, record in old.items():
        await redis.set(api_key(settings, hash_key(secret)), msgspec.json.encode(record))
        await redis.hset(api_key_index(settings), record.key_id, hash_key(secret))
    await redis.hset(partner_settings(settings, partner), "rate_limit", "7")
    await redis.hset(partner_settings(settings, other), "rate_limit", "4")

    assert await import_from_redis(redis, settings, database) == 2
    assert await import_from_redis(redis, settings, database) == 0  # nothing copied twice

    store = KeyStore(database, settings)
    live, revoked = old
    found = await store.lookup(live)
    assert found is not None and found[0] == old[live] and found[1] == 7
    assert await store.lookup(revoked) is None
    assert await store.rate_limit(other) == 4
    await _flush_namespace(redis, settings)  # the copy no longer needs Redis
    assert await store.lookup(live) is not None
