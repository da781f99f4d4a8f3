"""Copy the lifecycle's record out of Redis, where earlier releases kept it, into PostgreSQL.

Reads the Redis format this release replaces (``gateway.storage.keys``): each return's state
(``lifecycle:<id>``), its timeline (``timeline:<id>``), the events applied to it
(``lifecycle-applied:<id>``) and the quantities returned per ERP document
(``returned:<partner>:<kind>:<number>``). The queues need no copy: they are queries over what
is copied. The outbox of commands (``lifecycle-outbox:…``) is not copied either: Redis kept
it only to publish the same commands again on a redelivery, and they were published.

Idempotent: a return the lifecycle already holds in PostgreSQL is left as it is, and returned
quantities are only ever raised to what Redis counted, so running it twice copies nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.lifecycle._store import LifecycleStore, Opening, ReturnState, TimelineEntry
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import (
    lifecycle_applied,
    lifecycle_state,
    lifecycle_timeline,
    return_record,
    returned_quantities,
)


class _Record(msgspec.Struct, kw_only=True):
    """What the import needs of an accepted return's Redis record (``return:<id>``)."""

    contract: str
    contract_version: str
    accepted_at: dt.datetime
    message_id: str
    request: dict[str, Any]


_state = msgspec.json.Decoder(ReturnState)
_entry = msgspec.json.Decoder(TimelineEntry)
_record = msgspec.json.Decoder(_Record)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy every return's lifecycle held in Redis into PostgreSQL; answer how many returns were
    copied now (0 on a second run)."""
    store = LifecycleStore(pool, settings)
    copied = 0
    prefix = lifecycle_state(settings, "")
    with redis_errors():
        state_keys = [_text(k) async for k in redis.scan_iter(match=f"{prefix}*", count=500)]
    for key in state_keys:
        return_id = key[len(prefix) :]
        with redis_errors():
            raw = await redis.get(key)
            entries = await redis.lrange(lifecycle_timeline(settings, return_id), 0, -1)
            applied = sorted(_text(m) for m in await redis.smembers(lifecycle_applied(settings, return_id)))
            kept = await redis.get(return_record(settings, return_id))
        if raw is None:
            continue
        state = _state.decode(raw)
        record = None if kept is None else _record.decode(kept)
        if record is not None:
            opening = Opening.of_request(
                record.request,
                contract=record.contract,
                version=record.contract_version,
                message_id=record.message_id,
                accepted_at=record.accepted_at,
            )
        else:  # the record expired or was lost: the lifecycle's own copy of the request
            opening = Opening.of_request(
                state.request,
                contract="return-request",
                version="v1",
                message_id=f"imported.{return_id}",
                accepted_at=state.created_at,
            )
        if await store.restore(state, [_entry.decode(e) for e in entries], applied, opening):
            copied += 1
    prefix = returned_quantities(settings, "", "", "")[: -len("::")]
    with redis_errors():
        tally_keys = [_text(k) async for k in redis.scan_iter(match=f"{prefix}*", count=500)]
    for key in tally_keys:
        partner, kind, number = key[len(prefix) :].split(":", 2)
        with redis_errors():
            held = await redis.hgetall(key)
        returned = {_text(sku): float(quantity) for sku, quantity in held.items()}
        await store.restore_returned(partner, {"kind": kind, "number": number}, returned)
    return copied
