"""A return's open exceptions as the API shows them: each dead letter about it that was neither
delivered again nor discarded, linked to the dead-letter desk (``admin`` scope) where an
operator replays or discards it. The timeline links its dead letters the same way."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import msgspec

from gateway.lifecycle import ReturnState, TimelineEntry

#: Where :mod:`gateway.api.admin` serves the dead-letter desk.
DESK = "/v1/admin/dead-letters"


def dead_letter_path(connector: str, message_id: str) -> str:
    """One dead letter on the desk (``/replay`` and ``/discard`` below it)."""
    return f"{DESK}/{quote(connector, safe='')}/{quote(message_id, safe='')}"


class ReturnException(msgspec.Struct, kw_only=True):
    """Something that keeps a return from going on by itself until a person acts."""

    kind: str
    """``dead_letter``: a message about the return is in a connector's dead-letter queue."""
    connector: str
    message_id: str
    message_type: str
    error: str | None
    reason: str | None
    """Why it died, as the system (or the gateway) said."""
    status_code: int | None
    since: dt.datetime | None
    """When it was dead-lettered."""
    replayed_at: dt.datetime | None
    """When an operator last replayed it (it stays open until the copy is delivered)."""
    href: str
    """The dead letter on the desk (``POST {href}/replay`` or ``/discard``)."""


def open_exceptions(state: ReturnState | None) -> list[ReturnException]:
    """The return's open exceptions, oldest first (none before the lifecycle holds it)."""
    if state is None:
        return []
    return [
        ReturnException(
            kind="dead_letter",
            connector=record.connector,
            message_id=record.message_id,
            message_type=record.message_type,
            error=record.error,
            reason=record.detail,
            status_code=record.status_code,
            since=record.dead_lettered_at,
            replayed_at=record.replayed_at,
            href=dead_letter_path(record.connector, record.message_id),
        )
        for record in state.open_dead_letters
    ]


def linked(entry: TimelineEntry) -> TimelineEntry:
    """A timeline line with its dead letter's link on the desk (``href``), if it names one."""
    letter = entry.dead_letter
    if not letter or "connector" not in letter or "message_id" not in letter:
        return entry
    href = dead_letter_path(letter["connector"], letter["message_id"])
    return msgspec.structs.replace(entry, dead_letter={**letter, "href": href})
