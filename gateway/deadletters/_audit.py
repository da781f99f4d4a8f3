"""The audit log of what operators did to dead letters: who replayed or discarded what, and why.

A Redis stream (``<ns>:audit``): appended once per action, ordered by time, read newest first,
shared by every gateway replica and the CLI. Each entry is also logged, so the log holds it
even if Redis refuses the write after the action was done.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

import msgspec
import redis.asyncio as aioredis

from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import audit_log

log = logging.getLogger(__name__)

Action = Literal["replay", "discard"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One operator action on one dead letter."""

    id: str = ""
    """The stream entry id (time-ordered); empty until stored."""
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


def _fields(entry: AuditEntry) -> dict[str, str]:
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "connector": entry.connector,
        "message_id": entry.message_id,
        "replayed_as": entry.replayed_as or "",
        "payload_corrected": "true" if entry.payload_corrected else "false",
        "reason": entry.reason or "",
        "note": entry.note or "",
    }


def _entry(entry_id: bytes, raw: dict[bytes, bytes]) -> AuditEntry:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return AuditEntry(
        id=entry_id.decode(),
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


class AuditLog:
    """Append and read the operators' audit stream."""

    def __init__(self, redis: aioredis.Redis, settings: Settings, *, max_entries: int = 100_000) -> None:
        self._redis = redis
        self._key = audit_log(settings)
        self._max_entries = max_entries
        """Approximate cap (XADD MAXLEN ~), so the stream cannot grow without bound."""

    async def check(self) -> None:
        """Raise :class:`~gateway.errors.StoreUnavailable` now, before an action we could not record."""
        with redis_errors():
            await self._redis.ping()

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Log the entry and append it; returns it with its stream id."""
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
        with redis_errors():
            entry_id = await self._redis.xadd(
                self._key,
                _fields(entry),  # type: ignore[arg-type]
                maxlen=self._max_entries,
                approximate=True,
            )
        return msgspec.structs.replace(entry, id=entry_id.decode())

    async def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The latest ``limit`` entries, newest first."""
        with redis_errors():
            rows = await self._redis.xrevrange(self._key, count=limit)
        return [_entry(entry_id, raw) for entry_id, raw in rows]
