"""What the record (PostgreSQL) holds about the tests' returns, read as the owner would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from gateway.database.tables import IDEMPOTENCY_KEYS, RETURN_LINES, RETURNS


async def query(url: str, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    """The rows ``sql`` answers on database ``url`` (a connection of its own, closed after)."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        return await (await connection.execute(sql, params)).fetchall()  # type: ignore[arg-type]


async def published_returns(url: str, partner: str, external_ids: Sequence[str]) -> list[str]:
    """Ids of the partner's published returns with these external ids."""
    rows = await query(
        url,
        f"""SELECT id FROM {RETURNS}
            WHERE partner_id = %s AND external_id = ANY(%s) AND published_at IS NOT NULL""",
        [partner, list(external_ids)],
    )
    return [str(row[0]) for row in rows]


async def returns_of(url: str, partner: str, external_id: str) -> list[tuple[Any, ...]]:
    """(id, message_id, published_at) of every row the partner's external id has (one at most)."""
    return await query(
        url,
        f"SELECT id, message_id, published_at FROM {RETURNS} WHERE partner_id = %s AND external_id = %s",
        [partner, external_id],
    )


async def lines_of(url: str, return_id: str) -> list[tuple[Any, ...]]:
    """(line_number, sku, quantity) of a return's lines, in order."""
    return await query(
        url,
        f"SELECT line_number, sku, quantity FROM {RETURN_LINES} WHERE return_id = %s ORDER BY line_number",
        [return_id],
    )


async def key_rows(url: str, partner: str) -> list[tuple[Any, ...]]:
    """(state, return_id) of the partner's idempotency keys."""
    return await query(
        url, f"SELECT state, return_id FROM {IDEMPOTENCY_KEYS} WHERE partner_id = %s", [partner]
    )
