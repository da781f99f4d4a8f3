"""The intake's record in PostgreSQL: a 202 means the return is in the broker *and* in the
record, and losing Redis (the fast path) neither loses an answer nor lets a request become a
second return."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from gateway.broker import events_exchange_name
from gateway.settings import Settings
from tests.conftest import Gateway, KeyFactory
from tests.support.broker import capture
from tests.support.payloads import headers, return_request
from tests.support.record_reads import key_rows, lines_of, query, returns_of


@pytest.fixture
async def events(gateway: Gateway, amqp):  # type: ignore[no-untyped-def]
    return await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )


async def _forget_intake(redis: aioredis.Redis, settings: Settings) -> int:
    """Lose what the intake's fast path keeps in Redis for this test's namespace (its idempotency
    keys and external-id markers), as a Redis restart without persistence would."""
    names = [
        name
        for pattern in (settings.key("idem", "*"), settings.key("extid", "*"))
        async for name in redis.scan_iter(match=pattern, count=500)
    ]
    return await redis.delete(*names) if names else 0


async def test_an_accepted_return_is_in_the_record_with_its_lines(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key("acme")
    payload = return_request()
    accepted = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert accepted.status_code == 202, accepted.text
    return_id = accepted.json()["id"]

    [(stored_id, message_id, published_at)] = await returns_of(
        gateway.settings.database, "acme", payload["external_id"]
    )
    assert stored_id == return_id and message_id.startswith("msg_") and published_at is not None
    assert await lines_of(gateway.settings.database, return_id) == [
        (line["line_number"], line["sku"], Decimal(str(line["quantity"]))) for line in payload["lines"]
    ]
    # Answered from PostgreSQL right after the 202, Redis or not.
    fetched = await gateway.client.get(f"/v1/returns/{return_id}", headers={"Authorization": f"Bearer {key}"})
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["request"] == payload
    assert fetched.json()["accepted_at"] == accepted.json()["accepted_at"]


async def test_after_redis_loses_the_keys_a_retry_is_a_replay_and_a_new_key_a_duplicate(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("acme")
    payload = return_request()
    request_headers = headers(key)
    first = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    assert first.status_code == 202, first.text
    assert await _forget_intake(redis, gateway.settings) > 0

    again = await gateway.client.post("/v1/returns", content=json.dumps(payload), headers=request_headers)
    assert again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]

    assert await _forget_intake(redis, gateway.settings) > 0
    other_key = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert other_key.status_code == 409, other_key.text
    assert other_key.json()["type"] == "urn:returns-gateway:problem:duplicate-return"
    assert other_key.json()["return_id"] == first.json()["id"]

    assert await _forget_intake(redis, gateway.settings) > 0
    reused = await gateway.client.post("/v1/returns", json=return_request(), headers=request_headers)
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:returns-gateway:problem:idempotency-key-reused"

    marker = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert marker.status_code == 202
    ids = await events.ids_through(marker.json()["id"])
    assert ids.count(first.json()["id"]) == 1  # one return, published once
    assert len(await returns_of(gateway.settings.database, "acme", payload["external_id"])) == 1


async def test_a_replay_warms_the_fast_path_again(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis
) -> None:
    key = await make_key("globex")
    request_headers = headers(key)
    payload = return_request()
    first = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    await _forget_intake(redis, gateway.settings)
    assert (
        await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
    ).status_code == 202
    # The record answered, and Redis holds the answer again (the fast path replays it).
    assert [name async for name in redis.scan_iter(match=gateway.settings.key("idem", "globex", "*"))]
    assert ("done", first.json()["id"]) in await key_rows(gateway.settings.database, "globex")


async def _drop_gateway_sessions(url: str) -> int:
    """End the gateway's PostgreSQL sessions on this run's database, as a failover would."""
    rows = await query(
        url,
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()""",
        ["returns-gateway"],  # the pool's application_name
    )
    return len(rows)


async def test_a_lost_database_connection_is_a_503_and_the_retry_is_one_return(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("acme")
    warm = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert warm.status_code == 202  # the pool holds open sessions now
    assert await _drop_gateway_sessions(gateway.settings.database) > 0

    payload = return_request()
    request_headers = headers(key)
    outcomes = []
    for _ in range(20):  # each dropped session fails once, then the pool makes a new one
        response = await gateway.client.post("/v1/returns", json=payload, headers=request_headers)
        outcomes.append(response.status_code)
        if response.status_code != 503:
            break
        assert response.headers["retry-after"]
        assert response.json()["type"] == "urn:returns-gateway:problem:service-unavailable"
    assert outcomes[0] == 503 and outcomes[-1] == 202, outcomes
    return_id = response.json()["id"]
    marker = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert (await events.ids_through(marker.json()["id"])).count(return_id) == 1
    assert len(await returns_of(gateway.settings.database, "acme", payload["external_id"])) == 1


async def test_a_quantity_the_record_cannot_keep_is_refused_before_anything_is_claimed(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key("acme")
    payload = return_request()
    payload["lines"][0]["quantity"] = 5e-324  # meets the contract (> 0), rounds to 0 at 6 decimals
    refused = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert refused.status_code == 422, refused.text
    assert [e["pointer"] for e in refused.json()["errors"]] == ["/lines/0/quantity"]
    assert await returns_of(gateway.settings.database, "acme", payload["external_id"]) == []


async def test_whole_numbers_written_as_decimals_are_recorded_as_integers(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    """JSON Schema's integer takes 2.0; the record's integer columns take it too (found by the
    OpenAPI conformance run as a 500)."""
    key = await make_key("acme")
    payload = return_request()
    payload["lines"][0]["line_number"] = float(payload["lines"][0]["line_number"])
    payload["lines"][0]["order_line_number"] = 12.0
    accepted = await gateway.client.post("/v1/returns", json=payload, headers=headers(key))
    assert accepted.status_code == 202, accepted.text
    [(line_number, _, _), *_] = await lines_of(gateway.settings.database, accepted.json()["id"])
    assert line_number == int(payload["lines"][0]["line_number"])
