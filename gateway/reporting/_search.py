"""Searching the record of returns: filters, a sort, and an opaque cursor (keyset pagination).

Every filter is an indexed column of ``returns`` (or ``return_lines.sku``); the sort is the
time the return was accepted (``created_at``) or last changed (``updated_at``), ties broken by
the return id, so a page never repeats or skips a return: the cursor carries the last row's
sort value and id, and the next page starts strictly after them. A return accepted while a
client pages by ``created_at`` lands before the first page (newest first) or after the last
(oldest first), never in the middle. Sorting by ``updated_at`` follows the returns as they stand:
a return that changes while a client pages moves to its new place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.auth import Principal
from gateway.database import database_errors
from gateway.database.tables import RETURN_LINES, RETURNS
from gateway.errors import MalformedRequest

Sort = Literal["created_at", "-created_at", "updated_at", "-updated_at"]
SORTS: Final = ("-created_at", "created_at", "-updated_at", "updated_at")
"""``-`` for newest first; the default is ``-created_at``."""
MAX_PAGE: Final = 200
"""The most returns one page holds."""
DEFAULT_PAGE: Final = 50

_COLUMNS: Final = {"created_at": "accepted_at", "updated_at": "updated_at"}


class ReturnSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One return in a search: where it stands, not the request it carried (that is at
    ``GET /v1/returns/{id}``)."""

    object: str = "return"
    id: str
    partner: str
    external_id: str
    status: str
    channel: str
    reason_code: str
    customer_account: str
    rma_number: str | None
    contract: str
    contract_version: str
    accepted_at: dt.datetime
    updated_at: dt.datetime


class ReturnPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a search, and the cursor of the next (``None`` on the last)."""

    object: str = "list"
    data: list[ReturnSummary]
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class ReturnQuery:
    """What a search asks for; ``None`` leaves a filter out."""

    status: str | None = None
    """The return's current status (the contracts' ``ReturnStatus``)."""
    reason_code: str | None = None
    """The reason of the whole return."""
    channel: str | None = None
    sku: str | None = None
    """Returns with at least one line of this SKU."""
    customer_account: str | None = None
    external_id: str | None = None
    partner: str | None = None
    """Only for ``admin``: one partner's returns (a partner always sees only its own)."""
    created_from: dt.datetime | None = None
    """Accepted at or after (inclusive)."""
    created_to: dt.datetime | None = None
    """Accepted before (exclusive)."""
    updated_from: dt.datetime | None = None
    updated_to: dt.datetime | None = None
    sort: Sort = "-created_at"
    limit: int = DEFAULT_PAGE
    cursor: str | None = None


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    sort: str
    at: dt.datetime
    id: str


_cursor_decoder = msgspec.json.Decoder(_Cursor)


def encode_cursor(sort: str, at: dt.datetime, return_id: str) -> str:
    raw = msgspec.json.encode(_Cursor(sort, at, return_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> _Cursor:
    """The position a cursor names; 400 when it is not one of ours or was made for another sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise MalformedRequest("cursor: not a cursor this API gave; start again without it") from exc
    if position.sort != sort:
        raise MalformedRequest(f"cursor: made for sort '{position.sort}', not '{sort}'")
    if position.at.tzinfo is None:
        raise MalformedRequest("cursor: not a cursor this API gave; start again without it")
    return position


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise MalformedRequest(f"{name}: give a time zone (e.g. 2026-12-01T00:00:00Z)")
    return moment


def build_search(principal: Principal, query: ReturnQuery) -> tuple[sql.Composed, list[Any]]:
    """The SQL of one page of ``query`` as ``principal`` may see it, and its parameters."""
    if query.sort not in SORTS:
        raise MalformedRequest(f"sort: one of {', '.join(SORTS)}")
    if not 1 <= query.limit <= MAX_PAGE:
        raise MalformedRequest(f"limit: from 1 to {MAX_PAGE}")
    # A row the intake reserved but whose publish failed is not a return (yet): never listed.
    where: list[sql.Composable] = [sql.SQL("r.published_at IS NOT NULL")]
    params: list[Any] = []

    def equal(column: str, value: object) -> None:
        if value is not None:
            where.append(sql.SQL("r.{} = %s").format(sql.Identifier(column)))
            params.append(value)

    partner = query.partner if principal.is_admin else principal.partner
    equal("partner_id", partner)
    equal("status", query.status)
    equal("reason_code", query.reason_code)
    equal("channel", query.channel)
    equal("customer_account", query.customer_account)
    equal("external_id", query.external_id)
    if query.sku is not None:
        where.append(
            sql.SQL("EXISTS (SELECT 1 FROM {} l WHERE l.return_id = r.id AND l.sku = %s)").format(
                sql.Identifier(RETURN_LINES)
            )
        )
        params.append(query.sku)
    for column, low, high, name in (
        ("accepted_at", query.created_from, query.created_to, "created"),
        ("updated_at", query.updated_from, query.updated_to, "updated"),
    ):
        if low is not None:
            where.append(sql.SQL("r.{} >= %s").format(sql.Identifier(column)))
            params.append(_aware(low, f"{name}_from"))
        if high is not None:
            where.append(sql.SQL("r.{} < %s").format(sql.Identifier(column)))
            params.append(_aware(high, f"{name}_to"))
    descending = query.sort.startswith("-")
    column = sql.Identifier(_COLUMNS[query.sort.lstrip("-")])
    if query.cursor is not None:
        position = decode_cursor(query.cursor, query.sort)
        after = sql.SQL("<") if descending else sql.SQL(">")
        where.append(sql.SQL("(r.{}, r.id) {} (%s, %s)").format(column, after))
        params += [position.at, position.id]
    direction = sql.SQL("DESC" if descending else "ASC")
    statement = sql.SQL(
        "SELECT r.id, r.partner_id AS partner, r.external_id, r.status, r.channel, r.reason_code, "
        "r.customer_account, r.rma_number, r.contract, r.contract_version, r.accepted_at, r.updated_at "
        "FROM {returns} r {where} ORDER BY r.{column} {direction}, r.id {direction} LIMIT %s"
    ).format(
        returns=sql.Identifier(RETURNS),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where),
        column=column,
        direction=direction,
    )
    params.append(query.limit + 1)
    return statement, params


async def search_returns(
    pool: AsyncConnectionPool, url: str, principal: Principal, query: ReturnQuery
) -> ReturnPage:
    """One page of the returns ``principal`` may see that match ``query``: a partner its own,
    ``admin`` every partner's. PostgreSQL down or out of connections: ``DatabaseUnavailable``."""
    statement, params = build_search(principal, query)
    with database_errors(url):
        async with pool.connection() as connection:
            cursor = connection.cursor(row_factory=dict_row)
            rows = await (await cursor.execute(statement, params)).fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    found = [ReturnSummary(**row) for row in rows]
    next_cursor = None
    if more and found:
        last = found[-1]
        at = last.accepted_at if query.sort.lstrip("-") == "created_at" else last.updated_at
        next_cursor = encode_cursor(query.sort, at, last.id)
    return ReturnPage(data=found, has_more=more, next_cursor=next_cursor)
