"""The effect lease on the real Redis: held while its worker lives, lapsing soon after it dies."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from gateway.runtime import EffectLedger
from gateway.settings import Settings
from tests.support.waiting import wait_until

LEASE = 0.6


def ledger(redis: aioredis.Redis, settings: Settings) -> EffectLedger:
    """One worker's ledger (each has a lease token of its own)."""
    return EffectLedger(redis, settings, lease_seconds=LEASE)


async def test_a_living_worker_keeps_its_lease_through_a_call_longer_than_the_lease(
    redis: aioredis.Redis, settings: Settings
) -> None:
    worker, other = ledger(redis, settings), ledger(redis, settings)
    assert await worker.begin("erp", "msg-1") == "go"
    async with worker.holding("erp", "msg-1"):
        await asyncio.sleep(LEASE * 4)  # the target call, four leases long
        assert await other.begin("erp", "msg-1") == "busy"
    await worker.finish("erp", "msg-1")
    assert await other.begin("erp", "msg-1") == "done"


async def test_a_dead_worker_holds_the_message_back_for_one_lease_at_most(
    redis: aioredis.Redis, settings: Settings
) -> None:
    worker, other = ledger(redis, settings), ledger(redis, settings)
    assert await worker.begin("erp", "msg-2") == "go"
    async with worker.holding("erp", "msg-2"):
        await asyncio.sleep(LEASE * 2)
    died = time.monotonic()  # the block ended without finish or abandon: the worker is gone

    async def taken_over() -> bool:
        return await other.begin("erp", "msg-2") == "go"

    await wait_until(taken_over, within=LEASE * 5, what="another worker to take the message")
    assert time.monotonic() - died <= LEASE + 0.3


async def test_a_renewal_never_takes_back_a_lease_another_worker_holds(
    redis: aioredis.Redis, settings: Settings
) -> None:
    worker, other = ledger(redis, settings), ledger(redis, settings)
    assert await worker.begin("erp", "msg-3") == "go"
    async with worker.holding("erp", "msg-3"):
        await redis.delete(settings.key("effect", "erp", "msg-3"))  # lost (Redis emptied, say)
        assert await other.begin("erp", "msg-3") == "go"
        await asyncio.sleep(LEASE)  # at least one beat of the first worker's renewal
        await other.finish("erp", "msg-3")
        await asyncio.sleep(LEASE)
    assert await redis.get(settings.key("effect", "erp", "msg-3")) == b"done"
