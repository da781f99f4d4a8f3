"""Retention: personal data on closed returns is erased once the retention period is over.

Personal data, as the contracts hold it in the request a return was accepted with
(``returns.request``): the ``contact`` (a person's name, e-mail, phone), the ``ship_from``
address, and the free-text ``notes`` of the request and of each line. A closed return whose
status has not changed for ``RGW_RETENTION_DAYS`` has them removed from its request; the rest
stays: amounts, SKUs, quantities, the customer's account, and the audit trail (the timeline,
approvals and documents are never touched). Erasing is one ``UPDATE`` per batch and idempotent:
a return erased has nothing left to erase, so a second run finds nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import msgspec
from psycopg import AsyncConnection

from gateway.database import database_errors

PERSONAL_FIELDS: Final = ("contact", "ship_from", "notes")
"""Top-level fields of a return request that are personal data; each line's ``notes`` too."""
BATCH: Final = 500
"""Returns erased per statement (and per transaction): a purge never holds many rows locked."""

_HAS_PERSONAL = (
    "(r.request ?| array['contact', 'ship_from', 'notes'] "
    "OR jsonb_path_exists(r.request, '$.lines[*].notes'))"
)
_DUE = f"r.status = 'closed' AND r.status_since < %(cutoff)s AND {_HAS_PERSONAL}"
# The request without its personal fields; each line without its notes, in its order.
_ERASED = """
    (r.request - 'contact' - 'ship_from' - 'notes') || jsonb_build_object('lines', (
        SELECT coalesce(jsonb_agg(line - 'notes' ORDER BY n), '[]'::jsonb)
        FROM jsonb_array_elements(r.request -> 'lines') WITH ORDINALITY AS l(line, n)))"""


class DueForErasure(msgspec.Struct, frozen=True, kw_only=True):
    """A closed return whose personal data is due to go, and which fields it still holds."""

    return_id: str
    partner: str
    closed_at: dt.datetime
    fields: list[str]


def cutoff(now: dt.datetime, retention_days: int) -> dt.datetime:
    """Returns closed before this moment are past their retention."""
    return now - dt.timedelta(days=retention_days)


async def due_for_erasure(connection: AsyncConnection, url: str, before: dt.datetime) -> list[DueForErasure]:
    """The closed returns (closed before ``before``) that still hold personal data, oldest first."""
    query = f"""
        SELECT r.id, r.partner_id, r.status_since,
            array_remove(ARRAY[
                CASE WHEN r.request ? 'contact' THEN 'contact' END,
                CASE WHEN r.request ? 'ship_from' THEN 'ship_from' END,
                CASE WHEN r.request ? 'notes' THEN 'notes' END,
                CASE WHEN jsonb_path_exists(r.request, '$.lines[*].notes') THEN 'lines.notes' END
            ], NULL) AS fields
        FROM returns r WHERE {_DUE} ORDER BY r.status_since, r.id"""
    with database_errors(url):
        rows = await (await connection.execute(query.encode(), {"cutoff": before})).fetchall()
    return [DueForErasure(return_id=i, partner=p, closed_at=at, fields=list(f)) for i, p, at, f in rows]


async def erase_personal_data(connection: AsyncConnection, url: str, before: dt.datetime) -> int:
    """Erase the personal data of every closed return closed before ``before``; how many returns
    were erased (0 when run again). Each batch commits on its own."""
    query = f"""
        UPDATE returns r SET request = {_ERASED}
        WHERE r.id IN (
            SELECT r.id FROM returns r WHERE {_DUE} ORDER BY r.id LIMIT {BATCH} FOR UPDATE SKIP LOCKED
        )"""
    erased = 0
    with database_errors(url):
        while True:
            async with connection.transaction():
                cursor = await connection.execute(query.encode(), {"cutoff": before})
            erased += cursor.rowcount
            if cursor.rowcount < BATCH:
                return erased
