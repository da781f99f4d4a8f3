"""Acknowledged interchanges are PostgreSQL's: a Redis flush neither loses a 997 nor lets a
re-sent interchange through again, and records an older deployment kept in Redis are copied
across once."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.broker import events_exchange_name
from gateway.edi.intake import InterchangeAck, import_from_redis
from gateway.settings import Settings
from gateway.storage.keys import edi_interchange
from tests.conftest import Gateway, KeyFactory
from tests.edi.x12 import interchange, return_set
from tests.support.broker import capture
from tests.support.waiting import wait_until

X12 = "application/edi-x12"


@pytest.fixture
async def events(gateway: Gateway, amqp):  # type: ignore[no-untyped-def]
    return await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": X12}


async def _flush_namespace(redis: aioredis.Redis, settings: Settings) -> None:
    async for name in redis.scan_iter(match=f"{settings.namespace}:*", count=500):
        await redis.delete(name)


async def test_after_a_redis_flush_a_resent_interchange_still_replays_its_997(
    gateway: Gateway, make_key: KeyFactory, events, redis: aioredis.Redis
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    body = interchange([[return_set()]])
    first = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert first.status_code == 200, first.text
    await wait_until(lambda: len(events.messages) >= 1, what="the return on the broker")

    await _flush_namespace(redis, gateway.settings)

    again = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert again.status_code == 200 and again.text == first.text
    assert again.headers["idempotent-replayed"] == "true"
    kept = await gateway.client.get(first.headers["location"], headers=_headers(key))
    assert kept.status_code == 200 and kept.text == first.text
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 2, what="the marker return")
    assert len(events.messages) == 2  # the re-sent interchange published nothing


async def test_interchanges_kept_in_redis_are_imported_once(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    key = await make_key("nordwind")
    settings = gateway.settings
    old = InterchangeAck(  # as the Redis intake kept it (no fingerprint in the oldest records)
        interchange_id="NORDWIND.000777001",
        partner="nordwind",
        received_at=dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC),
        ack="ISA*00*~",
        returns={"0001": "ret_abc"},
    )
    await redis.set(edi_interchange(settings, "nordwind", old.interchange_id), msgspec.json.encode(old))
    await redis.set(edi_interchange(settings, "nordwind", "NORDWIND.000777002"), b"")  # in flight: a lease

    assert await import_from_redis(redis, settings, database) == 1
    assert await import_from_redis(redis, settings, database) == 0
    await _flush_namespace(redis, settings)

    kept = await gateway.client.get(f"/v1/edi/x12/{old.interchange_id}/ack", headers=_headers(key))
    assert kept.status_code == 200 and kept.text == old.ack
