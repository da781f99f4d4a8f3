"""Process reports: the figures the business runs on, computed in SQL from each return's timeline.

Each report is one function, its definition in its docstring (the API shows the same words, and
``docs/reports.md`` gathers them). They read ``returns``, ``return_lines``, ``timeline_entries``
and ``inspections`` as the lifecycle writes them; none writes anything. A ``Scope`` says whose
returns count (one partner, or all for ``admin``) and the window of time a report looks at:
``since`` inclusive, ``until`` exclusive. Durations are seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gateway.database import database_errors

#: Statuses in which a return needed a person or a fix: the exceptions.
EXCEPTION_STATUSES: Final = ("validation_failed", "posting_failed", "on_hold")
#: Credit-aging buckets: (label, up to this many days).
AGING_BUCKETS: Final = (("0-7d", 7), ("8-14d", 14), ("15-30d", 30), ("31-60d", 60), ("over-60d", None))
_SCOPE: Final = "(%(partner)s::text IS NULL OR r.partner_id = %(partner)s)"

CycleGroup = Literal["reason", "partner", "site"]
ReasonGroup = Literal["sku", "site", "carrier"]


@dataclass(frozen=True, kw_only=True)
class Window:
    """Whose returns a report counts, over which time, as of when."""

    partner: str | None
    """One partner's returns, or every partner's (``None``, for ``admin``)."""
    since: dt.datetime
    until: dt.datetime
    now: dt.datetime
    """The moment ages are measured to (queue and credit aging)."""

    def params(self, **more: Any) -> dict[str, Any]:
        return {"partner": self.partner, "since": self.since, "until": self.until, "now": self.now, **more}


class Percentiles(msgspec.Struct, frozen=True, kw_only=True):
    key: str | None
    count: int
    p50_seconds: float | None
    p90_seconds: float | None


class StatusTime(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    stays: int
    """Stays in the status that ended inside the window."""
    average_seconds: float | None
    p50_seconds: float | None
    p90_seconds: float | None
    in_status_now: int
    """Returns in the status now (their stay not ended, so not in the figures)."""


class Exceptions(msgspec.Struct, frozen=True, kw_only=True):
    returns: int
    exceptions: int
    exception_rate: float | None
    touched: int
    """Returns a person acted on at least once."""
    touches: int
    touches_per_return: float | None
    touchless_rate: float | None
    """Share of the returns no person acted on."""


class QueueAge(msgspec.Struct, frozen=True, kw_only=True):
    queue: str
    waiting: int
    oldest_seconds: float | None
    p50_seconds: float | None
    over_1d: int
    over_3d: int
    over_7d: int
    overdue: int | None
    """Inspections only: past their due time."""


class CreditAge(msgspec.Struct, frozen=True, kw_only=True):
    bucket: str
    currency: str | None
    returns: int
    amount: str
    """Authorized value (authorized quantity times unit price), decimal string."""


class ReasonCount(msgspec.Struct, frozen=True, kw_only=True):
    key: str | None
    reason_code: str
    returns: int
    quantity: str | None
    """By SKU: units returned for that reason."""


class SupplierRecovery(msgspec.Struct, frozen=True, kw_only=True):
    vendor: str | None
    currency: str | None
    claims_raised: int
    claims_credited: int
    recovery_rate: float | None
    amount_claimed: str


class PostingLatency(msgspec.Struct, frozen=True, kw_only=True):
    document: str
    system: str | None
    postings: int
    p50_seconds: float | None
    p90_seconds: float | None
    max_seconds: float | None


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _amount(value: Decimal | None) -> str:
    return f"{(value or Decimal(0)):.2f}"


async def _rows(
    pool: AsyncConnectionPool, url: str, query: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    with database_errors(url):
        async with pool.connection() as connection:
            cursor = connection.cursor(row_factory=dict_row)
            return await (await cursor.execute(query.encode(), params)).fetchall()  # type: ignore[arg-type]


_CYCLE_KEYS: Final = {"reason": "reason_code", "partner": "partner_id", "site": "return_site"}


async def cycle_time(
    pool: AsyncConnectionPool, url: str, window: Window, by: CycleGroup
) -> list[Percentiles]:
    """Cycle time from request to credit: for each return credited inside the window, the time
    from the gateway accepting its request (``accepted_at``) to its first timeline entry into
    ``credited``; p50 and p90 per reason (the whole return's), partner or return site (the one the
    RMA named; none when it named none). Returns closed without a credit are not counted."""
    key = _CYCLE_KEYS[by]
    query = f"""
        WITH credited AS (
            SELECT r.id, r.{key} AS key, min(t.at) - r.accepted_at AS took
            FROM returns r JOIN timeline_entries t ON t.return_id = r.id
            WHERE t.to_status = 'credited' AND {_SCOPE}
            GROUP BY r.id
            HAVING min(t.at) >= %(since)s AND min(t.at) < %(until)s
        )
        SELECT key, count(*) AS count,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM took)) AS p50,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM took)) AS p90
        FROM credited GROUP BY key ORDER BY key NULLS LAST"""
    return [
        Percentiles(
            key=row["key"], count=row["count"], p50_seconds=_float(row["p50"]), p90_seconds=_float(row["p90"])
        )
        for row in await _rows(pool, url, query, window.params())
    ]


async def status_times(pool: AsyncConnectionPool, url: str, window: Window) -> list[StatusTime]:
    """Time spent in each status: a stay starts at a timeline entry into the status (``to_status``)
    and ends at the return's next one; stays that ended inside the window count (average, p50,
    p90). Stays not ended yet are left out of the figures and counted in ``in_status_now``."""
    query = f"""
        WITH stays AS (
            SELECT t.to_status AS status, t.at,
                lead(t.at) OVER (PARTITION BY t.return_id ORDER BY t.at, t.id) AS left_at
            FROM timeline_entries t JOIN returns r ON r.id = t.return_id
            WHERE t.to_status IS NOT NULL AND {_SCOPE}
        ), ended AS (
            SELECT status, extract(epoch FROM left_at - at) AS took FROM stays
            WHERE left_at >= %(since)s AND left_at < %(until)s
        ), figures AS (
            SELECT status, count(*) AS stays, avg(took) AS average,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY took) AS p50,
                percentile_cont(0.9) WITHIN GROUP (ORDER BY took) AS p90
            FROM ended GROUP BY status
        ), now_in AS (
            SELECT r.status, count(*) AS n FROM returns r WHERE {_SCOPE} GROUP BY r.status
        )
        SELECT coalesce(f.status, n.status) AS status, coalesce(f.stays, 0) AS stays, f.average, f.p50,
            f.p90, coalesce(n.n, 0) AS in_status_now
        FROM figures f FULL JOIN now_in n ON n.status = f.status ORDER BY 1"""
    return [
        StatusTime(
            status=row["status"],
            stays=row["stays"],
            average_seconds=_float(row["average"]),
            p50_seconds=_float(row["p50"]),
            p90_seconds=_float(row["p90"]),
            in_status_now=row["in_status_now"],
        )
        for row in await _rows(pool, url, query, window.params())
    ]


async def exceptions(pool: AsyncConnectionPool, url: str, window: Window) -> Exceptions:
    """Exception rate and touch count, over the returns accepted inside the window. An exception
    is a return that ever entered ``validation_failed``, ``posting_failed`` or ``on_hold``, or
    had a message dead-lettered (a ``delivery_failed`` entry). A touch is a timeline entry whose
    actor is a person (``actor.type = 'user'``: an approver, someone holding or releasing, a
    warehouse receipt or inspection keyed by a person, an operator on the dead-letter desk)."""
    query = f"""
        WITH per AS (
            SELECT r.id,
                coalesce(bool_or(t.to_status IN ('validation_failed', 'posting_failed', 'on_hold')
                    OR t.action = 'delivery_failed'), false) AS exception,
                count(t.id) FILTER (WHERE t.actor ->> 'type' = 'user') AS touches
            FROM returns r LEFT JOIN timeline_entries t ON t.return_id = r.id
            WHERE r.accepted_at >= %(since)s AND r.accepted_at < %(until)s AND {_SCOPE}
            GROUP BY r.id
        )
        SELECT count(*) AS returns, count(*) FILTER (WHERE exception) AS exceptions,
            count(*) FILTER (WHERE touches > 0) AS touched, coalesce(sum(touches), 0)::bigint AS touches
        FROM per"""
    (row,) = await _rows(pool, url, query, window.params())
    returns = int(row["returns"])
    return Exceptions(
        returns=returns,
        exceptions=row["exceptions"],
        exception_rate=_rate(row["exceptions"], returns),
        touched=row["touched"],
        touches=row["touches"],
        touches_per_return=_rate(row["touches"], returns),
        touchless_rate=_rate(returns - row["touched"], returns),
    )


async def queue_aging(pool: AsyncConnectionPool, url: str, window: Window) -> list[QueueAge]:
    """Approval, hold and inspection queue aging, now (the window is not used): ``approvals`` are
    returns in ``pending_approval`` or ``validation_failed``, ``holds`` returns ``on_hold``, each
    aged from when it entered that status (``status_since``); ``inspections`` are inspection tasks
    not inspected yet, aged from when the task was raised, ``overdue`` past their due time."""
    query = f"""
        WITH waiting AS (
            SELECT CASE WHEN r.status = 'on_hold' THEN 'holds' ELSE 'approvals' END AS queue,
                extract(epoch FROM %(now)s - r.status_since) AS age, NULL::boolean AS overdue
            FROM returns r
            WHERE r.status IN ('pending_approval', 'validation_failed', 'on_hold') AND {_SCOPE}
            UNION ALL
            SELECT 'inspections', extract(epoch FROM %(now)s - i.requested_at), i.due_by < %(now)s
            FROM inspections i JOIN returns r ON r.id = i.return_id
            WHERE i.inspected_at IS NULL AND {_SCOPE}
        ), queues(queue) AS (VALUES ('approvals'), ('holds'), ('inspections'))
        SELECT q.queue, count(w.age) AS waiting, max(w.age) AS oldest,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY w.age) AS p50,
            count(*) FILTER (WHERE w.age > 86400) AS over_1d,
            count(*) FILTER (WHERE w.age > 3 * 86400) AS over_3d,
            count(*) FILTER (WHERE w.age > 7 * 86400) AS over_7d,
            count(*) FILTER (WHERE w.overdue) AS overdue
        FROM queues q LEFT JOIN waiting w ON w.queue = q.queue GROUP BY q.queue ORDER BY q.queue"""
    return [
        QueueAge(
            queue=row["queue"],
            waiting=row["waiting"],
            oldest_seconds=_float(row["oldest"]),
            p50_seconds=_float(row["p50"]),
            over_1d=row["over_1d"],
            over_3d=row["over_3d"],
            over_7d=row["over_7d"],
            overdue=row["overdue"] if row["queue"] == "inspections" else None,
        )
        for row in await _rows(pool, url, query, window.params())
    ]


async def credit_aging(pool: AsyncConnectionPool, url: str, window: Window) -> list[CreditAge]:
    """Credit aging, now (the window is not used): returns authorized (a timeline entry into
    ``authorized``) and not credited yet (neither ``credited``, ``closed`` nor ``rejected``), by
    days since their first authorization: 0-7, 8-14, 15-30, 31-60, over 60; with the value
    authorized (authorized quantity, or the requested one before the lines say, times unit price) per
    currency. A return with lines in two currencies counts once in each."""
    query = f"""
        WITH waiting AS (
            SELECT r.id, %(now)s - min(t.at) AS age
            FROM returns r JOIN timeline_entries t ON t.return_id = r.id
            WHERE t.to_status = 'authorized' AND r.status NOT IN ('credited', 'closed', 'rejected')
                AND {_SCOPE}
            GROUP BY r.id
        ), bucketed AS (
            SELECT id, CASE WHEN age < interval '8 days' THEN '0-7d'
                WHEN age < interval '15 days' THEN '8-14d' WHEN age < interval '31 days' THEN '15-30d'
                WHEN age < interval '61 days' THEN '31-60d' ELSE 'over-60d' END AS bucket
            FROM waiting
        )
        SELECT b.bucket, l.currency, count(DISTINCT b.id) AS returns,
            sum(coalesce(l.authorized_quantity, l.quantity) * l.unit_price) AS amount
        FROM bucketed b LEFT JOIN return_lines l ON l.return_id = b.id
        GROUP BY b.bucket, l.currency"""
    order = {label: rank for rank, (label, _) in enumerate(AGING_BUCKETS)}
    rows = sorted(
        await _rows(pool, url, query, window.params()),
        key=lambda r: (order[r["bucket"]], r["currency"] or ""),
    )
    return [
        CreditAge(
            bucket=row["bucket"],
            currency=row["currency"],
            returns=row["returns"],
            amount=_amount(row["amount"]),
        )
        for row in rows
    ]


_REASON_QUERIES: Final = {
    "sku": """
        SELECT l.sku AS key, coalesce(l.reason_code, r.reason_code) AS reason_code,
            count(DISTINCT r.id) AS returns, sum(l.quantity) AS quantity
        FROM returns r JOIN return_lines l ON l.return_id = r.id
        WHERE {where} GROUP BY 1, 2""",
    "site": """
        SELECT r.return_site AS key, r.reason_code, count(*) AS returns, NULL::numeric AS quantity
        FROM returns r WHERE {where} GROUP BY 1, 2""",
    "carrier": """
        SELECT c.carrier AS key, r.reason_code, count(*) AS returns, NULL::numeric AS quantity
        FROM returns r LEFT JOIN LATERAL (
            SELECT t.actor ->> 'name' AS carrier FROM timeline_entries t
            WHERE t.return_id = r.id AND t.actor ->> 'id' = 'carrier' AND t.actor ? 'name'
            ORDER BY t.id LIMIT 1
        ) c ON true
        WHERE {where} GROUP BY 1, 2""",
}
REASON_LIMIT: Final = 1000


async def reasons(pool: AsyncConnectionPool, url: str, window: Window, by: ReasonGroup) -> list[ReasonCount]:
    """Reasons by SKU, site or carrier, over the returns accepted inside the window, most first.
    By SKU: each line, under its own reason or else the return's, with the units returned. By
    site: the return site its RMA named (none before one did). By carrier: the carrier of its
    first tracking entry on the timeline (none when no carrier reported on it). At most 1000 rows."""
    where = f"r.accepted_at >= %(since)s AND r.accepted_at < %(until)s AND {_SCOPE}"
    query = (
        _REASON_QUERIES[by].format(where=where) + f" ORDER BY 3 DESC, 1 NULLS LAST, 2 LIMIT {REASON_LIMIT}"
    )
    return [
        ReasonCount(
            key=row["key"],
            reason_code=row["reason_code"],
            returns=row["returns"],
            quantity=None if row["quantity"] is None else f"{row['quantity'].normalize():f}",
        )
        for row in await _rows(pool, url, query, window.params())
    ]


async def supplier_recovery(pool: AsyncConnectionPool, url: str, window: Window) -> list[SupplierRecovery]:
    """Supplier recovery, per vendor and currency: claims raised inside the window (each
    ``supplier_claim`` entry on a timeline: ``claim <number> to vendor <vendor>: <amount>
    <currency>``) against those credited (a ``documents`` row of the return, kind
    ``supplier_claim``, with the claim's number and status ``credited``), and their rate."""
    query = f"""
        WITH claims AS (
            SELECT r.id AS return_id,
                substring(t.detail FROM '^claim (\\S+) to vendor') AS number,
                substring(t.detail FROM ' to vendor (\\S+):') AS vendor,
                substring(t.detail FROM ': (-?[0-9.]+) [A-Z]{{3}}$')::numeric AS amount,
                substring(t.detail FROM ' ([A-Z]{{3}})$') AS currency
            FROM timeline_entries t JOIN returns r ON r.id = t.return_id
            WHERE t.action = 'supplier_claim' AND t.at >= %(since)s AND t.at < %(until)s AND {_SCOPE}
        )
        SELECT c.vendor, c.currency, count(*) AS raised,
            count(*) FILTER (WHERE EXISTS (
                SELECT 1 FROM documents d WHERE d.return_id = c.return_id AND d.kind = 'supplier_claim'
                    AND d.number = c.number AND d.status = 'credited')) AS credited,
            sum(c.amount) AS amount
        FROM claims c GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST"""
    return [
        SupplierRecovery(
            vendor=row["vendor"],
            currency=row["currency"],
            claims_raised=row["raised"],
            claims_credited=row["credited"],
            recovery_rate=_rate(row["credited"], row["raised"]),
            amount_claimed=_amount(row["amount"]),
        )
        for row in await _rows(pool, url, query, window.params())
    ]


async def posting_latency(pool: AsyncConnectionPool, url: str, window: Window) -> list[PostingLatency]:
    """ERP posting latency, per document and system, for postings inside the window. ``rma``: from
    the return's latest entry into ``authorized`` (the lifecycle asks the ERP for the RMA) to the
    first ``document_posted`` entry after it (the ERP's RMA). ``credit_memo``: from its latest
    entry into ``dispositioned`` (the credit memo is drafted there, or again on a release or
    replay back to it) to its first entry into ``credited``. The system is the posting entry's
    actor. p50, p90 and the longest."""
    query = f"""
        WITH posted AS (
            SELECT 'rma' AS document, t.actor ->> 'id' AS system, t.at, (
                SELECT max(a.at) FROM timeline_entries a
                WHERE a.return_id = t.return_id AND a.to_status = 'authorized' AND a.at <= t.at
            ) AS asked
            FROM timeline_entries t JOIN returns r ON r.id = t.return_id
            WHERE t.action = 'document_posted' AND {_SCOPE} AND t.id = (
                SELECT min(f.id) FROM timeline_entries f
                WHERE f.return_id = t.return_id AND f.action = 'document_posted')
            UNION ALL
            SELECT 'credit_memo', t.actor ->> 'id', t.at, (
                SELECT max(a.at) FROM timeline_entries a
                WHERE a.return_id = t.return_id AND a.to_status = 'dispositioned' AND a.at <= t.at
            )
            FROM timeline_entries t JOIN returns r ON r.id = t.return_id
            WHERE t.to_status = 'credited' AND {_SCOPE} AND t.id = (
                SELECT min(f.id) FROM timeline_entries f
                WHERE f.return_id = t.return_id AND f.to_status = 'credited')
        ), took AS (
            SELECT document, system, extract(epoch FROM at - asked) AS seconds FROM posted
            WHERE asked IS NOT NULL AND at >= %(since)s AND at < %(until)s
        )
        SELECT document, system, count(*) AS postings,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
            percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90, max(seconds) AS longest
        FROM took GROUP BY 1, 2 ORDER BY 1 DESC, 2 NULLS LAST"""
    return [
        PostingLatency(
            document=row["document"],
            system=row["system"],
            postings=row["postings"],
            p50_seconds=_float(row["p50"]),
            p90_seconds=_float(row["p90"]),
            max_seconds=_float(row["longest"]),
        )
        for row in await _rows(pool, url, query, window.params())
    ]
