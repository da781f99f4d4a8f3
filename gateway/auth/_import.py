"""Copy the keys and partners an existing deployment holds in Redis into PostgreSQL.

Reads the format :class:`~gateway.auth.KeyStore` kept before the record moved: the index
``<ns>:apikeys`` (key id → hash), one ``<ns>:apikey:<hash>`` JSON record per key, and
``<ns>:partner:<partner>`` (``rate_limit``). Idempotent: a key or partner already in the
database is left as it is, so running it twice copies nothing twice.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.auth._keys import ApiKeyRecord
from gateway.database import database_errors
from gateway.database.tables import API_KEYS, PARTNERS
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import api_key, api_key_index, partner_settings

_decoder = msgspec.json.Decoder(ApiKeyRecord)


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy the API keys (hashes only) and partners' rate limits found in Redis; returns how
    many keys were added (those already in PostgreSQL are skipped)."""
    with redis_errors():
        index = await redis.hgetall(api_key_index(settings))
        pairs = [(key_id.decode(), key_hash.decode()) for key_id, key_hash in index.items()]
        raws = await redis.mget([api_key(settings, key_hash) for _, key_hash in pairs]) if pairs else []
        prefix = partner_settings(settings, "")
        partners: dict[str, int | None] = {}
        async for name in redis.scan_iter(match=partner_settings(settings, "*"), count=500):
            limit = await redis.hget(name, "rate_limit")
            partners[name.decode()[len(prefix) :]] = int(limit) if limit is not None else None
    records = [
        (key_hash, _decoder.decode(raw)) for (_, key_hash), raw in zip(pairs, raws, strict=True) if raw
    ]
    for _, record in records:
        partners.setdefault(record.partner, None)
    copied = 0
    with database_errors(settings.database):
        async with pool.connection() as conn:
            for partner, limit in sorted(partners.items()):
                await conn.execute(
                    f"INSERT INTO {PARTNERS} (id, rate_limit) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                    (partner, limit),
                )
            for key_hash, record in records:
                cursor = await conn.execute(
                    f"INSERT INTO {API_KEYS}"
                    " (id, partner_id, key_hash, scopes, label, created_at, revoked_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (
                        record.key_id,
                        record.partner,
                        key_hash,
                        list(record.scopes),
                        record.label,
                        record.created_at,
                        record.revoked_at,
                    ),
                )
                copied += cursor.rowcount
    return copied
