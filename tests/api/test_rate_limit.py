"""Per-partner rate limits in Redis: 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio

from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers
from tests.support.waiting import wait_until


async def test_partner_over_its_limit_gets_429(gateway: Gateway, make_key: KeyFactory) -> None:
    limited = await make_key("slowpoke", scopes=("returns:read",), rate_limit=3)
    other = await make_key("acme", scopes=("returns:read",), rate_limit=1000)
    responses = await asyncio.gather(
        *(gateway.client.get("/v1/contracts", headers=headers(limited)) for _ in range(8))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 3, statuses
    assert statuses.count(429) == 5
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["content-type"] == "application/problem+json"
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.headers["ratelimit-limit"] == "3"
    assert throttled.headers["ratelimit-remaining"] == "0"
    assert int(throttled.headers["ratelimit-reset"]) >= 1
    # Another partner is not affected by slowpoke's burst.
    ok = await gateway.client.get("/v1/contracts", headers=headers(other))
    assert ok.status_code == 200
    assert ok.headers["ratelimit-limit"] == "1000"
    assert int(ok.headers["ratelimit-remaining"]) < 1000


async def test_limit_lifts_once_the_window_is_over(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("burst", scopes=("returns:read",), rate_limit=1)
    assert (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 200
    throttled = await gateway.client.get("/v1/contracts", headers=headers(key))
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["retry-after"])

    async def admitted() -> bool:
        return (await gateway.client.get("/v1/contracts", headers=headers(key))).status_code == 200

    await wait_until(admitted, within=retry_after + 2, interval=0.2, what="the next window")
