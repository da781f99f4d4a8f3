"""The audit log of what operators did to dead letters: who replayed or discarded what, and why.

PostgreSQL's ``dead_letter_actions`` (append-only: the application role may only read and add,
and nothing is ever dropped): one row per action, read newest first, shared by every gateway
replica and the CLI. Each entry is also logged, so the log holds it even if the database
refuses the write after the action was done.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

import msgspec
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.database import database_errors
from gateway.database.tables import DEAD_LETTER_ACTIONS
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import audit_log

log = logging.getLogger(__name__)

Action = Literal["replay", "discard"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One operator action on one dead letter."""

    id: str = ""
    """The row's id (increasing with time); empty until stored."""
    at: dt.datetime
    actor: str
    """``key:<key id>`` through the API, ``cli:<OS user>`` from the command line."""
    action: Action
    connector: str
    message_id: str
    replayed_as: str | None = None
    """Message id of the replayed copy (differs from ``message_id`` after a payload correction)."""
    payload_corrected: bool = False
    reason: str | None = None
    """Why it was discarded."""
    note: str | None = None
    """What the operator said about a replay."""


_COLUMNS = "at, actor, action, connector, message_id, replayed_as, payload_corrected, reason, note"
_INSERT = f"INSERT INTO {DEAD_LETTER_ACTIONS} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"

_INSERT_MISSING = f"""
    INSERT INTO {DEAD_LETTER_ACTIONS} ({_COLUMNS})
    SELECT * FROM (VALUES (%s::timestamptz, %s::text, %s::text, %s::text, %s::text, %s::text,
                           %s::boolean, %s::text, %s::text)) AS v ({_COLUMNS})
    WHERE NOT EXISTS (
        SELECT FROM {DEAD_LETTER_ACTIONS} d
        WHERE (d.at, d.actor, d.action, d.connector, d.message_id)
            = (v.at, v.actor, v.action, v.connector, v.message_id)
    )
"""


def _values(entry: AuditEntry) -> tuple[Any, ...]:
    return (
        entry.at,
        entry.actor,
        entry.action,
        entry.connector,
        entry.message_id,
        entry.replayed_as,
        entry.payload_corrected,
        entry.reason,
        entry.note,
    )


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    row_id, at, actor, action, connector, message_id, replayed_as, corrected, reason, note = row
    return AuditEntry(
        id=str(row_id),
        at=at,
        actor=actor,
        action="discard" if action == "discard" else "replay",
        connector=connector,
        message_id=message_id,
        replayed_as=replayed_as,
        payload_corrected=corrected,
        reason=reason,
        note=note,
    )


class AuditLog:
    """Append and read the operators' audit trail (errors: :class:`~gateway.errors.DatabaseUnavailable`)."""

    def __init__(self, database: AsyncConnectionPool, settings: Settings) -> None:
        self._database = database
        self._url = settings.database

    async def check(self) -> None:
        """Raise :class:`~gateway.errors.DatabaseUnavailable` now, before an action we could not record."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                await conn.execute("SELECT 1")

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Log the entry and append it; returns it with its id."""
        log.info(
            "audit: %s%s %s/%s by %s%s%s",
            entry.action,
            " with a corrected payload" if entry.payload_corrected else "",
            entry.connector,
            entry.message_id,
            entry.actor,
            f" as {entry.replayed_as}" if entry.replayed_as else "",
            f": {entry.reason or entry.note}" if entry.reason or entry.note else "",
        )
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(f"{_INSERT} RETURNING id", _values(entry))
                row = await cursor.fetchone()
        assert row is not None
        return msgspec.structs.replace(entry, id=str(row[0]))

    async def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The latest ``limit`` entries, newest first."""
        with database_errors(self._url):
            async with self._database.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT id, {_COLUMNS} FROM {DEAD_LETTER_ACTIONS} ORDER BY at DESC, id DESC LIMIT %s",
                    (limit,),
                )
                rows = await cursor.fetchall()
        return [_entry(row) for row in rows]


def _from_stream(raw: dict[bytes, bytes]) -> AuditEntry:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return AuditEntry(
        at=dt.datetime.fromisoformat(fields["at"]),
        actor=fields["actor"],
        action="discard" if fields["action"] == "discard" else "replay",
        connector=fields["connector"],
        message_id=fields["message_id"],
        replayed_as=fields.get("replayed_as") or None,
        payload_corrected=fields.get("payload_corrected") == "true",
        reason=fields.get("reason") or None,
        note=fields.get("note") or None,
    )


async def import_from_redis(redis: aioredis.Redis, settings: Settings, pool: AsyncConnectionPool) -> int:
    """Copy the audit stream an older deployment kept in Redis (``<ns>:audit``) into
    ``dead_letter_actions``, oldest first; returns how many rows were added. Idempotent: an
    action already there (same moment, actor, action, connector and message) is skipped."""
    with redis_errors():
        stream = await redis.xrange(audit_log(settings))
    copied = 0
    with database_errors(settings.database):
        async with pool.connection() as conn:
            for _, raw in stream:
                entry = _from_stream(raw)
                cursor = await conn.execute(_INSERT_MISSING, _values(entry))
                copied += cursor.rowcount
    return copied
