"""``/v1/webhooks/{connector}`` is unauthenticated, so it is limited per client address and
connector: 429 with Retry-After and RateLimit-*, as partners' limits answer. A real server on
loopback, so each client has its own address (127.0.0.1, 127.0.0.2)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from gateway.api import create_app
from gateway.registry import ContractRegistry
from gateway.sandbox import free_port
from gateway.settings import Settings
from tests.support.waiting import wait_until

LIMIT = 3


@pytest.fixture
async def gateway_url(settings: Settings, registry: ContractRegistry, redis, amqp) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    limited = dataclasses.replace(settings, webhook_rate_limit=LIMIT)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(limited, registry), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or serving.done(), what="the gateway to start")
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


def client_from(address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address), timeout=10)


async def _post_many(client: httpx.AsyncClient, url: str, n: int) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post(url, content=b"{}") for _ in range(n)))


async def test_one_source_over_the_limit_gets_429_others_do_not(gateway_url: str) -> None:
    async with client_from("127.0.0.1") as one, client_from("127.0.0.2") as other:
        burst = await _post_many(one, f"{gateway_url}/v1/webhooks/wms", LIMIT + 4)
        statuses = [r.status_code for r in burst]
        assert statuses.count(429) == 4, statuses  # LIMIT are let through, the rest refused
        throttled = next(r for r in burst if r.status_code == 429)
        assert throttled.headers["content-type"] == "application/problem+json"
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.headers["ratelimit-limit"] == str(LIMIT)
        assert throttled.headers["ratelimit-remaining"] == "0"
        assert "127.0.0.1/wms" in throttled.json()["detail"]
        counted = next(r for r in burst if r.status_code != 429)
        assert counted.status_code == 404  # no routing table: an unknown connector, still counted
        assert counted.headers["ratelimit-limit"] == str(LIMIT)

        # Another source, and the same source on another connector, have budgets of their own.
        assert (await other.post(f"{gateway_url}/v1/webhooks/wms", content=b"{}")).status_code == 404
        assert (await one.post(f"{gateway_url}/v1/webhooks/carrier", content=b"{}")).status_code == 404

        async def admitted() -> bool:
            return (await one.post(f"{gateway_url}/v1/webhooks/wms", content=b"{}")).status_code != 429

        await wait_until(admitted, within=3, interval=0.2, what="the next window")
