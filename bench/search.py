"""Search and reports on a large record: ``python -m bench.search [--returns 100000]``.

Creates a database of its own on the server of ``RGW_DATABASE_URL`` (or the local default),
migrates it to head, loads ``--returns`` returns (20 partners, 1 to 3 lines each, a timeline of
two to five entries, a year of acceptance times, statuses weighted as a live deployment's are),
``ANALYZE``s it, then runs each search of :data:`SEARCHES` ``--repeat`` times through
:func:`gateway.reporting.search_returns` (the code ``GET /v1/returns`` runs, with its pool) and
prints p50 and p99 in milliseconds, and each report once. The database is dropped at the end.
Target: every filtered page under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from gateway.auth import Principal
from gateway.database import open_pool, upgrade
from gateway.reporting import (
    ReturnQuery,
    Window,
    credit_aging,
    cycle_time,
    exceptions,
    posting_latency,
    queue_aging,
    reasons,
    search_returns,
    status_times,
    supplier_recovery,
)
from gateway.settings import Settings

PARTNERS = 20
ORIGIN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""The first return's acceptance; one more every five minutes."""

# Weighted statuses (per hundred returns of a partner): most closed, a few waiting in each queue.
_WEIGHTS = (
    (70, "closed"),
    (75, "authorized"),
    (78, "pending_approval"),
    (80, "validation_failed"),
    (83, "on_hold"),
    (88, "in_transit"),
    (91, "received"),
    (93, "posting_failed"),
    (96, "rejected"),
)
_STATUS = (
    "CASE "
    + " ".join(f"WHEN (g / {PARTNERS}) %% 100 < {upto} THEN '{status}'" for upto, status in _WEIGHTS)
    + " ELSE 'requested' END"
)
_REASONS = (
    "ARRAY['no_longer_needed', 'ordered_in_error', 'damaged_in_transit', 'wrong_item_shipped', 'defective', "
    "'warranty_claim', 'quantity_discrepancy', 'late_delivery', 'not_as_described', 'product_recall', "
    "'unauthorized_return', 'field_service_return', 'other']"
)
_CHANNELS = "ARRAY['portal', 'api', 'edi', 'email', 'phone', 'field_service']"


def load(url: str, count: int, *, first: int = 0, partner_prefix: str = "bench-p") -> None:
    """Write ``count`` returns numbered from ``first`` (ids ``ret_<md5 of the number>``)."""
    params: dict[str, Any] = {
        "first": first,
        "last": first + count - 1,
        "origin": ORIGIN,
        "prefix": partner_prefix,
    }
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "INSERT INTO partners (id) SELECT %(prefix)s || g FROM generate_series(0, 19) g "
            "ON CONFLICT DO NOTHING",
            params,
        )
        db.execute(
            f"""
            INSERT INTO returns (id, partner_id, external_id, channel, customer_account, customer_name,
                reason_code, requested_date, contract, contract_version, message_id, request, accepted_at,
                updated_at, status, status_since, return_site, published_at)
            SELECT 'ret_' || md5(%(prefix)s || g), %(prefix)s || (g %% {PARTNERS}), 'EXT-' || g,
                ({_CHANNELS})[1 + g %% 6], 'C' || lpad((g %% 2000)::text, 5, '0'),
                'Customer ' || (g %% 2000), ({_REASONS})[1 + (g * 7) %% 13],
                (%(origin)s + g * interval '5 minutes')::date, 'return-request', 'v1',
                'msg_' || md5(%(prefix)s || g),
                jsonb_build_object('external_id', 'EXT-' || g, 'contact', jsonb_build_object('name', 'Jana'),
                    'notes', 'call before pickup', 'lines', '[]'::jsonb),
                %(origin)s + g * interval '5 minutes',
                %(origin)s + g * interval '5 minutes' + (g %% 240) * interval '1 hour',
                {_STATUS}, %(origin)s + g * interval '5 minutes' + (g %% 240) * interval '1 hour',
                'SITE-' || (g %% 7), %(origin)s + g * interval '5 minutes'
            FROM generate_series(%(first)s::int, %(last)s::int) g""",
            params,
        )
        db.execute(
            """
            INSERT INTO return_lines
                (return_id, line_number, sku, quantity, unit_of_measure, unit_price, currency)
            SELECT 'ret_' || md5(%(prefix)s || g), n,
                'SKU-' || lpad(((g * 31 + n * 7) %% 5000)::text, 4, '0'), 1 + n, 'C62', 10 + (g %% 90), 'EUR'
            FROM generate_series(%(first)s::int, %(last)s::int) g, generate_series(1, 1 + g %% 3) n""",
            params,
        )
        db.execute(
            f"""
            INSERT INTO timeline_entries (return_id, at, action, actor, message_id, from_status, to_status)
            SELECT 'ret_' || md5(%(prefix)s || g),
                %(origin)s + g * interval '5 minutes' + s.hours * interval '1 hour',
                'status_changed', s.actor, 'msg_' || g || '.' || s.step, s.came_from, s.went_to
            FROM generate_series(%(first)s::int, %(last)s::int) g
            CROSS JOIN LATERAL (VALUES
                (0, 0, NULL, 'requested', '{{"type": "partner", "id": "p"}}'::jsonb),
                (1, 1, 'requested', 'validated', '{{"type": "system", "id": "lifecycle"}}'),
                (2, 2, 'validated', 'authorized', '{{"type": "system", "id": "lifecycle"}}'),
                (3, 100 + g %% 140, 'dispositioned', 'credited', '{{"type": "system", "id": "netsuite"}}'),
                (4, 100 + g %% 140, 'credited', 'closed', '{{"type": "system", "id": "lifecycle"}}')
            ) AS s(step, hours, came_from, went_to, actor)
            WHERE s.step < 3 OR {_STATUS} = 'closed'""",
            params,
        )
        db.execute("ANALYZE")


SEARCHES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "admin, newest first": (None, {}),
    "admin, status=pending_approval": (None, {"status": "pending_approval"}),
    "admin, reason=defective, 30 days": (
        None,
        {
            "reason_code": "defective",
            "created_from": ORIGIN + dt.timedelta(days=200),
            "created_to": ORIGIN + dt.timedelta(days=230),
        },
    ),
    "admin, sku": (None, {"sku": "SKU-0042"}),
    "admin, customer": (None, {"customer_account": "C00123"}),
    "admin, external_id": (None, {"external_id": "EXT-4242"}),
    "admin, channel=edi, by updated_at": (None, {"channel": "edi", "sort": "-updated_at"}),
    "admin, updated in a week, oldest first": (
        None,
        {
            "updated_from": ORIGIN + dt.timedelta(days=100),
            "updated_to": ORIGIN + dt.timedelta(days=107),
            "sort": "updated_at",
        },
    ),
    "partner, newest first": ("bench-p3", {}),
    "partner, status=on_hold": ("bench-p3", {"status": "on_hold"}),
    "partner, reason=warranty_claim, by updated_at": (
        "bench-p3",
        {"reason_code": "warranty_claim", "sort": "-updated_at"},
    ),
    "partner, sku": ("bench-p3", {"sku": "SKU-0042"}),
}


def _principal(partner: str | None) -> Principal:
    scopes = frozenset({"admin"} if partner is None else {"returns:read"})
    return Principal(partner=partner or "ops", key_id="bench", scopes=scopes, rate_limit=0)


async def _measure(repeat: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    timings: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, repeat: int, limit: int) -> None:
    pool = await open_pool(url, max_size=2)
    try:
        print(f"{'search (page of ' + str(limit) + ')':48} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8}")
        for name, (partner, filters) in SEARCHES.items():
            query = ReturnQuery(limit=limit, **filters)
            principal = _principal(partner)
            page = await search_returns(pool, url, principal, query)
            timings = await _measure(repeat, lambda q=query, p=principal: search_returns(pool, url, p, q))
            print(f"{name:48} {len(page.data):>5} {_p(timings, 0.5):>8.2f} {_p(timings, 0.99):>8.2f}")
        # Deep in the results: the 40th page, by cursor.
        query = ReturnQuery(limit=limit)
        page = await search_returns(pool, url, _principal(None), query)
        for _ in range(39):
            query = ReturnQuery(limit=limit, cursor=page.next_cursor)
            page = await search_returns(pool, url, _principal(None), query)
        timings = await _measure(repeat, lambda: search_returns(pool, url, _principal(None), query))
        name = "admin, page 40 by cursor"
        print(f"{name:48} {len(page.data):>5} {_p(timings, 0.5):>8.2f} {_p(timings, 0.99):>8.2f}")

        window = Window(partner=None, since=ORIGIN, until=ORIGIN + dt.timedelta(days=400), now=ORIGIN)
        reports: dict[str, Callable[[], Awaitable[Any]]] = {
            "cycle-time by reason": lambda: cycle_time(pool, url, window, "reason"),
            "status-times": lambda: status_times(pool, url, window),
            "exceptions": lambda: exceptions(pool, url, window),
            "queues": lambda: queue_aging(pool, url, window),
            "credit-aging": lambda: credit_aging(pool, url, window),
            "reasons by sku": lambda: reasons(pool, url, window, "sku"),
            "supplier-recovery": lambda: supplier_recovery(pool, url, window),
            "posting-latency": lambda: posting_latency(pool, url, window),
        }
        print(f"\n{'report (every partner, whole record)':48} {'ms':>8}")
        for name, call in reports.items():
            (took,) = await _measure(1, call)
            print(f"{name:48} {took:>8.1f}")
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=100_000, help="returns to load (default 100000)")
    parser.add_argument("--repeat", type=int, default=200, help="times each search runs (default 200)")
    parser.add_argument("--limit", type=int, default=50, help="page size (default 50)")
    args = parser.parse_args()
    server = Settings.from_env().database
    name = f"rgw_bench_search_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    try:
        upgrade(url)
        started = time.perf_counter()
        load(url, args.returns)
        print(f"loaded {args.returns} returns in {time.perf_counter() - started:.1f} s ({name})\n")
        asyncio.run(measure(url, args.repeat, args.limit))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
