"""Copy the returns and answered idempotency keys an older deployment kept in Redis into
PostgreSQL (``returns-gateway db import-redis``).

Read from the Redis format this package replaced: ``<ns>:return:<id>`` (JSON
:class:`~gateway.records.ReturnRecord`) and ``<ns>:idem:<partner>:<sha256 of the key>`` (hash:
state, fingerprint, return and message ids, and once ``done`` the status, body and headers of
the answer). Keys still in flight or failed are left: they hold nothing durable, and their
client retries. Idempotent: every row goes in with ``ON CONFLICT DO NOTHING``, so a second run
copies nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.database import database_errors
from gateway.database.tables import IDEMPOTENCY_KEYS, PARTNERS, RETURNS
from gateway.records._returns import ReturnRecord
from gateway.records._store import ReturnStore
from gateway.settings import Settings
from gateway.storage import redis_errors

_BATCH = 500

_KEY = f"""
WITH partner AS (
    INSERT INTO {PARTNERS} (id) VALUES (%(partner)s) ON CONFLICT DO NOTHING
)
INSERT INTO {IDEMPOTENCY_KEYS} (partner_id, key, fingerprint, state, return_id, message_id,
    response_status, response_headers, response_body, expires_at)
SELECT %(partner)s, %(key)s, %(fingerprint)s, 'done', %(return_id)s, %(message_id)s, %(status)s,
    %(headers)s, %(body)s, now() + make_interval(secs => %(ttl)s)
ON CONFLICT DO NOTHING
"""


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy the namespace's return records (with their lines) and answered return-request keys
    from Redis into PostgreSQL; the number of rows that were not there yet (0 on a second run).

    The returns go first, so an imported key always points at a return the record has."""
    decoder = msgspec.json.Decoder(ReturnRecord)
    store = ReturnStore(pool, settings)
    copied = 0
    async for names in _batches(redis, settings.key("return", "*")):
        with redis_errors():
            values = await redis.mget(names)
        for raw in values:
            if raw is not None:  # else expired meanwhile
                copied += await store.put(decoder.decode(raw))
    async for names in _batches(redis, settings.key("idem", "*")):
        with redis_errors():
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(name)
                    pipe.ttl(name)
                replies = await pipe.execute()
        with database_errors(settings.database):
            async with pool.connection() as connection, connection.transaction():
                for name, entry, ttl in zip(names, replies[::2], replies[1::2], strict=True):
                    params = _key_params(settings, name, entry, ttl)
                    if params is None:
                        continue
                    known = await connection.execute(
                        f"SELECT FROM {RETURNS} WHERE id = %s", [params["return_id"]]
                    )
                    if known.rowcount == 0:  # another store's key (a receipt, an inspection...)
                        continue
                    cursor = await connection.execute(_KEY, params)
                    copied += cursor.rowcount
    return copied


def _key_params(
    settings: Settings, name: bytes, entry: dict[bytes, bytes], ttl: int
) -> dict[str, object] | None:
    """The row of one answered key, or ``None`` for one that holds nothing durable."""
    if entry.get(b"state") != b"done" or b"return_id" not in entry:
        return None
    partner, digest = name.decode().removeprefix(settings.key("idem", "")).split(":", 1)
    return {
        "partner": partner,
        "key": digest,
        "fingerprint": entry[b"fingerprint"].decode(),
        "return_id": entry[b"return_id"].decode(),
        "message_id": entry.get(b"message_id", b"").decode() or None,
        "status": int(entry[b"status"]),
        "headers": Jsonb(msgspec.json.decode(entry.get(b"headers", b"{}"))),
        "body": bytes(entry[b"body"]),
        "ttl": ttl if ttl > 0 else settings.idempotency_ttl_seconds,
    }


async def _batches(redis: aioredis.Redis, pattern: str) -> AsyncIterator[list[bytes]]:
    """The names matching ``pattern``, a few hundred at a time (SCAN: Redis is never blocked)."""
    batch: list[bytes] = []
    with redis_errors():
        async for name in redis.scan_iter(match=pattern, count=_BATCH):
            batch.append(name)
            if len(batch) >= _BATCH:
                yield batch
                batch = []
    if batch:
        yield batch
