"""The idempotency store's transitions, straight against Redis."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from gateway.errors import DuplicateReturn, IdempotencyKeyInFlight, IdempotencyKeyReused, RateLimited
from gateway.intake.idempotency import Claim, IdempotencyStore, StoredResponse
from gateway.intake.ratelimit import Admission, PartnerRateLimiter
from gateway.settings import Settings

RESPONSE = StoredResponse(202, b'{"id":"ret_1"}', {"Location": "/v1/returns/ret_1"})


StoreFactory = Callable[[Settings], IdempotencyStore]


@pytest.fixture
async def open_store(redis: aioredis.Redis) -> AsyncIterator[StoreFactory]:
    """Stores on the test's settings, each closed (with its script connection) after the test."""
    opened: list[IdempotencyStore] = []

    def open_(settings: Settings) -> IdempotencyStore:
        opened.append(IdempotencyStore(redis, settings))
        return opened[-1]

    yield open_
    for store in opened:
        await store.aclose()


@pytest.fixture
def store(open_store: StoreFactory, settings: Settings) -> IdempotencyStore:
    return open_store(settings)


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


async def test_in_flight_is_409_until_its_lease_ends(
    redis: aioredis.Redis, settings: Settings, open_store: StoreFactory
) -> None:
    short = open_store(dataclasses.replace(settings, idempotency_lease_seconds=0))
    held = open_store(settings)
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


@pytest.fixture
def limiter(settings: Settings, redis: aioredis.Redis) -> PartnerRateLimiter:
    return PartnerRateLimiter(redis, key_prefix=settings.key("ratelimit"))


async def _counted_claim(
    store: IdempotencyStore, key: str, ids: tuple[str, str], admission: Admission | None
) -> Claim | StoredResponse:
    return await store.claim(
        partner="acme",
        key=key,
        payload_fingerprint="fp",
        external_id=f"EXT-{key}",
        new_ids=ids,
        admission=admission,
    )


async def test_throttled_claim_takes_no_key(store: IdempotencyStore, limiter: PartnerRateLimiter) -> None:
    first = limiter.admission("acme", 1)
    assert isinstance(await _counted_claim(store, "k1", ("ret_a", "msg_a"), first), Claim)
    assert (await first.settle()).remaining == 0  # counted once, by the claim
    second = limiter.admission("acme", 1)
    with pytest.raises(RateLimited) as throttled:
        await _counted_claim(store, "k2", ("ret_b", "msg_b"), second)
    assert throttled.value.headers["Retry-After"] == "1"
    # settle() does not count again a request the claim counted (and refused).
    assert (await second.settle()).remaining == 0
    # Neither the key nor its external id was taken: uncounted, the same request claims both.
    probe = await _counted_claim(store, "k2", ("ret_c", "msg_c"), None)
    assert isinstance(probe, Claim) and probe.return_id == "ret_c"


async def test_claim_counts_in_the_limiters_own_window(
    store: IdempotencyStore, limiter: PartnerRateLimiter
) -> None:
    """Every other route counts through ``limits``; the claim's script must count in the same window."""
    await limiter.admit("acme", 2)
    assert isinstance(
        await _counted_claim(store, "k1", ("ret_a", "msg_a"), limiter.admission("acme", 2)), Claim
    )
    with pytest.raises(RateLimited):
        await limiter.admit("acme", 2)
    # Another limit is another window, as with ``limits``.
    assert (await limiter.admit("acme", 3)).remaining == 2


async def test_an_admission_counted_already_is_not_counted_again(
    store: IdempotencyStore, limiter: PartnerRateLimiter
) -> None:
    admission = limiter.admission("acme", 1)
    await admission.settle()  # e.g. counted up front because the partner was throttled a moment ago
    assert isinstance(await _counted_claim(store, "k1", ("ret_a", "msg_a"), admission), Claim)
