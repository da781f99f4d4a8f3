"""A revoked key stops working within a second on every replica, while a cached key still costs
no database round trip per request."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from contextlib import AsyncExitStack

import pytest
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.auth import ApiKeyRecord, Authenticator, KeyStore
from gateway.errors import AuthenticationRequired
from gateway.registry import ContractRegistry
from gateway.settings import Settings
from tests.conftest import KeyFactory
from tests.support.payloads import headers
from tests.support.waiting import wait_until


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_a_second(
    settings: Settings, registry: ContractRegistry, make_key: KeyFactory, database: AsyncConnectionPool, amqp
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key()
    caching = dataclasses.replace(settings, auth_cache_seconds=5.0)  # asks for more than allowed
    async with AsyncExitStack() as stack:
        one, other = [
            await stack.enter_async_context(AsyncTestClient(create_app(caching, registry))) for _ in range(2)
        ]
        for replica in (one, other):  # the key is now in both replicas' caches
            assert (await replica.get("/v1/contracts", headers=headers(key))).status_code == 200

        await KeyStore(database, settings).revoke(key.split("_")[1])  # as one replica's CLI or admin would
        revoked_at = time.monotonic()

        async def refused_by(replica: AsyncTestClient) -> bool:  # type: ignore[type-arg]
            return (await replica.get("/v1/contracts", headers=headers(key))).status_code == 401

        await wait_until(lambda: refused_by(other), within=1.0, what="the other replica to refuse the key")
        await wait_until(lambda: refused_by(one), within=1.0 - (time.monotonic() - revoked_at))


class CountingKeys(KeyStore):
    def __init__(self, database: AsyncConnectionPool, settings: Settings) -> None:
        super().__init__(database, settings)
        self.lookups = 0

    async def lookup(self, secret: str) -> tuple[ApiKeyRecord, int | None] | None:
        self.lookups += 1
        await asyncio.sleep(0.01)  # a slow database: concurrent requests must share the lookup
        return await super().lookup(secret)


async def test_a_cached_key_costs_one_lookup_for_many_requests(
    settings: Settings, make_key: KeyFactory, database: AsyncConnectionPool
) -> None:
    key = await make_key()
    keys = CountingKeys(database, settings)
    authenticator = Authenticator(keys, cache_seconds=0.5, default_rate_limit=10)
    principals = await asyncio.gather(*(authenticator.authenticate(f"Bearer {key}") for _ in range(50)))
    assert {p.partner for p in principals} == {"acme"}
    for _ in range(200):
        await authenticator.authenticate(f"Bearer {key}")
    assert keys.lookups == 1

    await keys.revoke(key.split("_")[1])

    async def refused() -> bool:
        try:
            await authenticator.authenticate(f"Bearer {key}")
        except AuthenticationRequired:
            return True
        return False

    await wait_until(refused, within=1.0, what="the revoked key to be refused")
    assert keys.lookups == 2


async def test_a_long_cache_setting_is_cut_to_the_maximum(
    settings: Settings, make_key: KeyFactory, database: AsyncConnectionPool
) -> None:
    key = await make_key()
    keys = CountingKeys(database, settings)
    authenticator = Authenticator(keys, cache_seconds=60, default_rate_limit=10)
    await authenticator.authenticate(f"Bearer {key}")
    await wait_until(
        lambda: _looked_up_again(authenticator, key, keys), within=1.0, what="the cached entry to expire"
    )


async def _looked_up_again(authenticator: Authenticator, key: str, keys: CountingKeys) -> bool:
    await authenticator.authenticate(f"Bearer {key}")
    return keys.lookups >= 2


@pytest.mark.parametrize("authorization", ["Bearer ", "Bearer rgw_nope_nope"])
async def test_unknown_keys_are_still_refused_with_the_cache_on(
    settings: Settings, database: AsyncConnectionPool, authorization: str
) -> None:
    authenticator = Authenticator(KeyStore(database, settings), cache_seconds=0.5, default_rate_limit=10)
    for _ in range(2):
        with pytest.raises(AuthenticationRequired):
            await authenticator.authenticate(authorization)
