"""Every call is authenticated; a partner sees only its own returns."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.auth import KeyStore
from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers, return_request


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer rgw_nope_nope", "Basic dXNlcjpwYXNz", "bearer  "]
)
async def test_missing_or_wrong_key_is_401(
    gateway: Gateway, make_key: KeyFactory, authorization: str | None
) -> None:
    await make_key()
    request_headers = headers("unused")
    if authorization is None:
        del request_headers["Authorization"]
    else:
        request_headers["Authorization"] = authorization
    for method, path in [("POST", "/v1/returns"), ("GET", "/v1/returns/ret_x"), ("GET", "/v1/contracts")]:
        response = await gateway.client.request(method, path, json=return_request(), headers=request_headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_missing_scope_is_403(gateway: Gateway, make_key: KeyFactory) -> None:
    reader = await make_key("acme", scopes=("returns:read",))
    writer = await make_key("acme", scopes=("returns:write",))
    assert (
        await gateway.client.post("/v1/returns", json=return_request(), headers=headers(reader))
    ).status_code == 403
    created = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(writer))
    assert created.status_code == 202
    forbidden = await gateway.client.get(created.headers["location"], headers=headers(writer))
    assert forbidden.status_code == 403
    assert "returns:read" in forbidden.json()["detail"]
    assert (await gateway.client.get(created.headers["location"], headers=headers(reader))).status_code == 200


async def test_another_partners_return_is_404(gateway: Gateway, make_key: KeyFactory) -> None:
    acme, globex = await make_key("acme"), await make_key("globex")
    created = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(acme))
    location = created.headers["location"]
    theirs = await gateway.client.get(location, headers=headers(globex))
    unknown = await gateway.client.get("/v1/returns/ret_0000", headers=headers(globex))
    assert theirs.status_code == unknown.status_code == 404
    # Indistinguishable from a return that does not exist, so ids leak nothing.
    assert theirs.json()["title"] == unknown.json()["title"]
    assert (await gateway.client.get(location, headers=headers(acme))).status_code == 200


async def test_admin_key_reads_any_partners_return(gateway: Gateway, make_key: KeyFactory) -> None:
    acme = await make_key("acme")
    operator = await make_key("operations", scopes=("returns:read", "admin"))
    created = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(acme))
    assert (
        await gateway.client.get(created.headers["location"], headers=headers(operator))
    ).status_code == 200


async def test_revoked_key_is_refused(
    gateway: Gateway, make_key: KeyFactory, database: AsyncConnectionPool
) -> None:
    key = await make_key()
    assert (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 200
    key_id = key.split("_")[1]
    assert await KeyStore(database, gateway.settings).revoke(key_id) is not None
    assert (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 401


async def test_keys_are_stored_only_as_hashes(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    key = await make_key()
    secret_part = key.split("_", 2)[2]  # rgw_<key id>_<random>; the random part may hold "_" itself
    assert len(secret_part) >= 40
    async for redis_key in redis.scan_iter(match=f"{gateway.settings.namespace}:*"):
        assert secret_part.encode() not in redis_key
        kind = await redis.type(redis_key)
        if kind == b"string":
            assert secret_part.encode() not in await redis.get(redis_key)
        elif kind == b"hash":
            assert all(secret_part.encode() not in v for v in (await redis.hgetall(redis_key)).values())
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT to_jsonb(k)::text FROM api_keys k WHERE id = %s", (key.split("_")[1],)
        )
        row = await cursor.fetchone()
    assert row is not None and secret_part not in row[0]
