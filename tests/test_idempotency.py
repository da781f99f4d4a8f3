"""The idempotency store's transitions, straight against Redis."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis

from gateway.errors import DuplicateReturn, IdempotencyKeyInFlight, IdempotencyKeyReused
from gateway.idempotency import Claim, IdempotencyStore, StoredResponse
from gateway.settings import Settings

RESPONSE = StoredResponse(202, b'{"id":"ret_1"}', {"Location": "/v1/returns/ret_1"})


@pytest.fixture
def store(redis: aioredis.Redis, settings: Settings) -> IdempotencyStore:
    return IdempotencyStore(redis, settings)


async def _claim(store: IdempotencyStore, ids: tuple[str, str], *, fp: str = "fp", ext: str = "EXT-1"):  # type: ignore[no-untyped-def]
    return await store.claim(partner="acme", key="k1", payload_fingerprint=fp, external_id=ext, new_ids=ids)


async def test_retry_after_a_failed_publish_keeps_the_ids(store: IdempotencyStore) -> None:
    first = await _claim(store, ("ret_a", "msg_a"))
    assert isinstance(first, Claim)
    await store.release(first)
    retry = await _claim(store, ("ret_b", "msg_b"))
    assert isinstance(retry, Claim)
    # A confirm lost with the connection may mean msg_a did reach the broker: reuse it.
    assert (retry.return_id, retry.message_id) == ("ret_a", "msg_a")
    assert retry.token != first.token


async def test_in_flight_is_409_until_its_lease_ends(redis: aioredis.Redis, settings: Settings) -> None:
    short = IdempotencyStore(redis, dataclasses.replace(settings, idempotency_lease_seconds=0))
    held = IdempotencyStore(redis, settings)
    first = await _claim(held, ("ret_a", "msg_a"))
    assert isinstance(first, Claim)
    with pytest.raises(IdempotencyKeyInFlight):
        await _claim(held, ("ret_b", "msg_b"))
    # Same key, but the holder's lease is over: a dead gateway's request is taken over.
    await redis.hset(first.key, "lease_until", 0)
    taken = await _claim(short, ("ret_c", "msg_c"))
    assert isinstance(taken, Claim) and taken.message_id == "msg_a"
    # The original holder, late, cannot complete over the new owner.
    assert not await held.complete(first, RESPONSE, resource=(settings.key("return", "ret_a"), b"{}"))
    assert await redis.get(settings.key("return", "ret_a")) is None


async def test_complete_writes_resource_and_replays(
    store: IdempotencyStore, redis: aioredis.Redis, settings: Settings
) -> None:
    claim = await _claim(store, ("ret_a", "msg_a"))
    assert isinstance(claim, Claim)
    assert await store.complete(claim, RESPONSE, resource=(settings.key("return", "ret_a"), b"record"))
    assert await redis.get(settings.key("return", "ret_a")) == b"record"
    assert await _claim(store, ("ret_x", "msg_x")) == RESPONSE
    with pytest.raises(IdempotencyKeyReused):
        await _claim(store, ("ret_x", "msg_x"), fp="other")
    assert 0 < await redis.ttl(claim.key) <= settings.idempotency_ttl_seconds


async def test_external_id_is_freed_when_its_request_fails(store: IdempotencyStore) -> None:
    first = await _claim(store, ("ret_a", "msg_a"))
    assert isinstance(first, Claim)
    with pytest.raises(DuplicateReturn):
        await store.claim(
            partner="acme",
            key="k2",
            payload_fingerprint="fp",
            external_id="EXT-1",
            new_ids=("ret_b", "msg_b"),
        )
    await store.release(first)
    other = await store.claim(
        partner="acme", key="k2", payload_fingerprint="fp", external_id="EXT-1", new_ids=("ret_b", "msg_b")
    )
    assert isinstance(other, Claim) and other.return_id == "ret_b"
