"""Per-partner rate limits in Redis: 429 with Retry-After and RateLimit-* headers."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractRobustConnection

from gateway.broker import events_exchange_name
from tests.conftest import Gateway, KeyFactory
from tests.support.broker import capture
from tests.support.payloads import headers, return_request
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


async def test_throttled_return_claims_nothing(gateway: Gateway, make_key: KeyFactory) -> None:
    """On POST /v1/returns the count is taken by the idempotency claim itself; over the limit
    it claims neither the key nor the external id, so the same request succeeds later."""
    key = await make_key("burst", rate_limit=1)
    first = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert first.status_code == 202, first.text
    assert first.headers["ratelimit-limit"] == "1" and first.headers["ratelimit-remaining"] == "0"
    retried = headers(key)
    payload = return_request()
    throttled = await gateway.client.post("/v1/returns", json=payload, headers=retried)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1" and throttled.headers["ratelimit-remaining"] == "0"

    async def accepted() -> bool:
        response = await gateway.client.post("/v1/returns", json=payload, headers=retried)
        assert response.status_code in (202, 429), response.text
        return response.status_code == 202 and "idempotent-replayed" not in response.headers

    await wait_until(accepted, within=3, interval=0.2, what="the next window")


async def test_refused_returns_count_and_429_comes_first(gateway: Gateway, make_key: KeyFactory) -> None:
    """Requests refused before the claim still count, and over the limit any request gets 429,
    whatever else is wrong with it, as on every other route."""
    key = await make_key("sloppy", rate_limit=2)
    bad = await gateway.client.post("/v1/returns", json={"lines": []}, headers=headers(key))
    assert bad.status_code == 422
    assert bad.headers["ratelimit-remaining"] == "1"
    no_key = {**headers(key)}
    del no_key["Idempotency-Key"]
    assert (
        await gateway.client.post("/v1/returns", json=return_request(), headers=no_key)
    ).status_code == 400
    assert (
        await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    ).status_code == 429
    assert (
        await gateway.client.post("/v1/returns", json={"lines": []}, headers=headers(key))
    ).status_code == 429
    read_only = await make_key("sloppy", scopes=("returns:read",), rate_limit=2)
    forbidden = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(read_only))
    assert forbidden.status_code == 429  # the partner's window, whichever of its keys


async def test_concurrent_returns_with_one_key_under_a_tight_limit(
    gateway: Gateway, make_key: KeyFactory, amqp: AbstractRobustConnection
) -> None:
    """Each request counts once; the throttled ones claim nothing; the return is published once."""
    events = await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )
    key = await make_key("tight", rate_limit=5)
    request_headers, payload = headers(key), return_request()
    responses = await asyncio.gather(
        *(gateway.client.post("/v1/returns", json=payload, headers=request_headers) for _ in range(12))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(429) == 7, statuses
    assert statuses.count(202) >= 1 and set(statuses) <= {202, 409, 429}
    assert len({r.json()["id"] for r in responses if r.status_code == 202}) == 1

    markers: list[str] = []

    async def marker_accepted() -> bool:
        marker = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
        markers.extend([marker.json()["id"]] if marker.status_code == 202 else [])
        return bool(markers)

    await wait_until(marker_accepted, within=3, interval=0.2, what="the next window")
    assert len(await events.ids_through(markers[0])) == 2
