"""The dead-letter audit is PostgreSQL's: append-only, untouched by a Redis flush, and the
stream an older deployment kept in Redis is copied across once."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.database.tables import APP_ROLE
from gateway.deadletters import AuditEntry, AuditLog, import_from_redis
from gateway.settings import Settings
from gateway.storage.keys import audit_log


def _entry(n: int, **changes: object) -> AuditEntry:
    at = dt.datetime(2026, 11, 23, 10, 0, n, tzinfo=dt.UTC)
    fields: dict[str, object] = {
        "at": at,
        "actor": "key:abc123abc123",
        "action": "replay",
        "connector": "erp",
        "message_id": f"msg_{n}",
        **changes,
    }
    return AuditEntry(**fields)  # type: ignore[arg-type]


async def test_actions_outlive_a_redis_flush_and_cannot_be_rewritten(
    settings: Settings, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    audit = AuditLog(database, settings)
    first = await audit.record(_entry(1, note="ERP back"))
    second = await audit.record(_entry(2, action="discard", reason="duplicate", message_id="msg_x"))
    async for key in redis.scan_iter(match=f"{settings.namespace}:*"):
        await redis.delete(key)
    assert [e.id for e in await audit.recent(10)] == [second.id, first.id]
    assert (await audit.recent(10))[1] == first

    async with database.connection() as conn:  # as the gateway's role: read and add only
        await conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("DELETE FROM dead_letter_actions")


async def test_the_redis_stream_is_imported_once(
    settings: Settings, redis: aioredis.Redis, database: AsyncConnectionPool
) -> None:
    old = [_entry(1), _entry(2, action="discard", reason="bad data", payload_corrected=False)]
    for entry in old:  # as the Redis audit log wrote them
        await redis.xadd(
            audit_log(settings),
            {
                "at": entry.at.isoformat(),
                "actor": entry.actor,
                "action": entry.action,
                "connector": entry.connector,
                "message_id": entry.message_id,
                "replayed_as": "",
                "payload_corrected": "false",
                "reason": entry.reason or "",
                "note": "",
            },
        )
    assert await import_from_redis(redis, settings, database) == 2
    assert await import_from_redis(redis, settings, database) == 0
    stored = await AuditLog(database, settings).recent(10)
    assert [(e.message_id, e.action, e.reason) for e in stored] == [
        ("msg_2", "discard", "bad data"),
        ("msg_1", "replay", None),
    ]
