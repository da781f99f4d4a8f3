"""A return's dead letters: what the lifecycle keeps of each one announced about it, so the
return shows its open exceptions until each is delivered again or discarded.

Three publishers speak of one dead letter, and their events may be applied in any order: the
runtime that dead-lettered it (``delivery-failed``), the desk that replayed or discarded it and
the runtime that delivered the replayed copy (``dead-letter-action``). A record is known by its
connector and the ids it went by (the dead letter's, and the copy's after a replay), so:

* a replay that dies again reopens the same record, under the copy's id;
* an outcome (delivered, discarded) that finds no record leaves a closed one behind, and a
  ``delivery-failed`` older than an outcome already recorded is stale: it opens nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

#: Closed records kept per return (open ones are all kept): enough to know a late notice as stale.
_CLOSED_KEPT = 20


class DeadLetterRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One dead letter about a return, open until it is delivered or discarded."""

    connector: str
    """The connector whose dead-letter queue holds (or held) it."""
    message_id: str
    """Its id in that queue: what the desk shows, replays and discards."""
    message_type: str
    error: str | None = None
    detail: str | None = None
    """Why it died, as the runtime said (the target's own message)."""
    status_code: int | None = None
    dead_lettered_at: dt.datetime | None = None
    replayed_as: str | None = None
    """The id of the copy a replay sent (its own, unless the payload was corrected)."""
    replayed_at: dt.datetime | None = None
    resolution: str | None = None
    """``delivered`` or ``discarded``; ``None`` while it is open."""
    resolved_at: dt.datetime | None = None
    resolved_by: dict[str, str] | None = None

    @property
    def is_open(self) -> bool:
        return self.resolution is None

    def goes_by(self, connector: str, ids: Iterable[str]) -> bool:
        """Whether this is the record of a dead letter of ``connector`` known by one of ``ids``."""
        return self.connector == connector and bool({self.message_id, self.replayed_as} & set(ids))

    def link(self) -> dict[str, str]:
        """How the timeline links it: the connector and the id the desk knows it by."""
        return {"connector": self.connector, "message_id": self.message_id}


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def record_failure(records: list[DeadLetterRecord], failed: Mapping[str, Any]) -> DeadLetterRecord | None:
    """Open the record of a ``delivery-failed`` payload (or reopen the record of the message
    it replays); ``None`` when an outcome already recorded is newer than the failure."""
    connector, message_id = str(failed["connector"]), str(failed["message_id"])
    died = _when(failed.get("dead_lettered_at"))
    known = [r for r in records if r.goes_by(connector, [message_id])]
    for record in known:
        if not record.is_open and (died is None or record.resolved_at is None or died <= record.resolved_at):
            return None
    fresh = DeadLetterRecord(
        connector=connector,
        message_id=message_id,
        message_type=str(failed["message_type"]),
        error=str(failed.get("error") or "") or None,
        detail=str(failed.get("detail") or "")[:500] or None,
        status_code=failed.get("status_code"),
        dead_lettered_at=died,
    )
    if known:
        records[records.index(known[0])] = fresh
        for record in known[1:]:
            records.remove(record)
    else:
        records.append(fresh)
    return fresh


def record_replay(
    records: list[DeadLetterRecord], connector: str, message_id: str, replayed_as: str, at: dt.datetime
) -> None:
    """Note that an open record was replayed as ``replayed_as``. If that copy already died and
    is recorded under its own id, that record carries on and this one goes."""
    found = [r for r in records if r.is_open and r.goes_by(connector, [message_id])]
    copy = [r for r in records if r.is_open and r.connector == connector and r.message_id == replayed_as]
    for record in found:
        if copy and record not in copy:
            records.remove(record)
        else:
            record.replayed_as, record.replayed_at = replayed_as, at


def resolve(
    records: list[DeadLetterRecord],
    connector: str,
    ids: Iterable[str],
    *,
    message_type: str,
    resolution: str,
    by: dict[str, str],
    at: dt.datetime,
) -> list[DeadLetterRecord]:
    """Close the open records of the dead letter known by ``ids``; answer them. With no record
    of it at all, a closed one is left, so its ``delivery-failed`` arriving late opens nothing."""
    ids = list(ids)
    known = [r for r in records if r.goes_by(connector, ids)]
    closed = [r for r in known if r.is_open]
    for record in closed:
        record.resolution, record.resolved_at, record.resolved_by = resolution, at, by
    if not known:
        records.append(
            DeadLetterRecord(
                connector=connector,
                message_id=ids[0],
                message_type=message_type,
                replayed_as=ids[1] if len(ids) > 1 else None,
                resolution=resolution,
                resolved_at=at,
                resolved_by=by,
            )
        )
    done = [r for r in records if not r.is_open]
    for record in done[: max(0, len(done) - _CLOSED_KEPT)]:
        records.remove(record)
    return closed
