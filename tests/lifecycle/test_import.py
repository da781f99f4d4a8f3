"""Copying the lifecycle's record from the Redis format of earlier releases into PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.lifecycle import HOLDS, Hold, LifecycleStore, ReturnState, TimelineEntry, import_from_redis
from gateway.settings import Settings
from gateway.storage.keys import (
    lifecycle_applied,
    lifecycle_state,
    lifecycle_timeline,
    return_record,
    returned_quantities,
)
from tests.support.payloads import return_request


async def test_a_return_held_in_redis_is_copied_once(
    redis: aioredis.Redis, settings: Settings, database: AsyncConnectionPool
) -> None:
    return_id, partner = f"ret_{uuid.uuid4().hex}", f"p-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    request = return_request()
    state = ReturnState(
        return_id=return_id,
        partner=partner,
        external_id=request["external_id"],
        channel=request["channel"],
        status="on_hold",
        resume="authorized",
        created_at=now,
        updated_at=now,
        policy="nordlicht-default",
        policy_version="1",
        request=request,
        rma_number="RMA1",
        basis={"kind": "invoice", "number": "90031877"},
        holds=1,
        hold=Hold(reason="fraud review", by={"type": "user", "id": "u1"}, at=now.isoformat()),
    )
    user = {"type": "user", "id": "u1"}
    entries = [
        TimelineEntry(at=now, action="status_changed", actor=user, message_id="a", to_status="requested"),
        TimelineEntry(
            at=now, action="status_changed", actor=user, message_id="b", from_status="authorized",
            to_status="on_hold", detail="fraud review",
        ),
    ]  # fmt: skip
    record = {
        "id": return_id,
        "partner": partner,
        "external_id": request["external_id"],
        "status": "requested",
        "contract": "return-request",
        "contract_version": "v1",
        "accepted_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "message_id": f"msg_{uuid.uuid4().hex}",
        "request": request,
    }
    encode = msgspec.json.encode
    await redis.set(lifecycle_state(settings, return_id), encode(state))
    await redis.rpush(lifecycle_timeline(settings, return_id), *[encode(e) for e in entries])
    await redis.sadd(lifecycle_applied(settings, return_id), "a", "b")
    await redis.set(return_record(settings, return_id), encode(record))
    await redis.hset(returned_quantities(settings, partner, "invoice", "90031877"), mapping={"SKU-1": "2"})

    assert await import_from_redis(redis, settings, database) == 1
    assert await import_from_redis(redis, settings, database) == 0  # idempotent

    store = LifecycleStore(database, settings)
    assert await store.get(return_id) == state
    assert await store.timeline(return_id) == entries
    assert return_id in [r for r, _ in await store.queued(HOLDS, 10_000)]
    async with database.connection() as conn:
        applied = await (
            await conn.execute("SELECT message_id FROM applied_events WHERE return_id = %s", (return_id,))
        ).fetchall()
        tally = await (
            await conn.execute(
                "SELECT sku, quantity FROM returned_quantities WHERE partner_id = %s", (partner,)
            )
        ).fetchall()
        message = await (
            await conn.execute("SELECT message_id FROM returns WHERE id = %s", (return_id,))
        ).fetchone()
    assert sorted(m for (m,) in applied) == ["a", "b"]
    assert [(sku, float(q)) for sku, q in tally] == [("SKU-1", 2.0)]  # not doubled by the second run
    assert message == (record["message_id"],)
