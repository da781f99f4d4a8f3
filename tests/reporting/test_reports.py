"""Process reports on hand-made timelines whose figures are worked out by hand (in the comments).

Nine returns of one partner, accepted from T0 on; the reports are asked as of T0 + 30 days over
the window [T0, T0 + 60 days). Hours after each return's acceptance:

- R1 defective, site DE-HAM, lines SSD-1 and HDD-9 (no_longer_needed): validated 1, authorized 2,
  RMA posted by netsuite 3, UPS scan 4, received by a person 5, inspected by a person 6, claim of
  120.50 EUR to V100 (credited) 6, dispositioned 6, credited by netsuite 10, closed 10.
- R2 defective, DE-HAM, accepted T0 + 1 day: validated 1, pending_approval 2, authorized by a person
  4, RMA 5, received (WMS) 9, inspected by a person 10, claim of 30.00 EUR to V100 10, dispositioned
  10, credited 20, closed 20.
- R3 wrong_item_shipped, US-CHI, CAB-2 x 2, T0 + 2 days: validated 1, authorized 2, RMA 4, DHL
  scan 5, received (WMS) 5, inspected by a person 6, dispositioned 6, credited 10, closed 10.
- R4 T0 + 3 days: validated 1, authorized 2 (3 units authorized 2, 10.00 EUR each); no credit yet.
- R5 T0 + 25 days: validated 1, authorized 2, held by a person 3.
- R6 T0 + 29 days: validated 1, pending_approval 2.
- R7 T0 + 20 days: validation_failed 1.
- R8 T0 + 27 days: validated 1, authorized 2, received by a person 24 (inspection due at 48).
- R9 T0 + 4 days: validated 1, rejected by a person 2, closed 2.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from gateway.database import open_pool
from gateway.reporting import (
    Window,
    credit_aging,
    cycle_time,
    exceptions,
    posting_latency,
    queue_aging,
    reasons,
    status_times,
    supplier_recovery,
)
from tests.conftest import Gateway, KeyFactory
from tests.support.records import T0, Records

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
NOW = T0 + 30 * DAY
PERSON = {"type": "user", "id": "u-warehouse"}
APPROVER = {"type": "user", "id": "u-approver"}
NETSUITE = {"type": "system", "id": "netsuite"}
WMS = {"type": "system", "id": "wms"}


def _credited_path(
    records: Records, rid: str, start: dt.datetime, steps: list[tuple[float, str, dict[str, str]]]
) -> None:
    for hours, what, actor in steps:
        at = start + hours * HOUR
        if what == "rma":
            records.note(
                rid,
                "document_posted",
                at,
                actor,
                detail="RMA issued",
                documents=[{"system": "netsuite", "document_type": "rma", "id": "1"}],
            )
        elif what.startswith("carrier:"):
            carrier = {"type": "system", "id": "carrier", "name": what.split(":")[1]}
            records.note(rid, "carrier_exception", at, carrier, detail="scan")
        elif what.startswith("claim:"):
            _, number, amount = what.split(":")
            records.note(rid, "supplier_claim", at, detail=f"claim {number} to vendor V100: {amount} EUR")
        else:
            records.move(rid, what, at, actor)


@pytest.fixture(scope="module")
def scenario(database_url: str) -> Iterator[str]:
    """The nine returns, once for the module; their partner."""
    records = Records(database_url)
    partner = records.partner()
    life = {"type": "system", "id": "lifecycle"}
    r1 = records.accept(
        partner, at=T0, lines=[{"sku": "SSD-1"}, {"sku": "HDD-9", "reason": "no_longer_needed"}]
    )
    _credited_path(
        records,
        r1,
        T0,
        [
            (1, "validated", life),
            (2, "authorized", life),
            (3, "rma", NETSUITE),
            (4, "carrier:UPS", life),
            (5, "received", PERSON),
            (6, "inspected", PERSON),
            (6, "claim:CLM-R1-supplier:120.50", life),
            (6, "dispositioned", life),
            (10, "credited", NETSUITE),
            (10, "closed", life),
        ],
    )
    records.db.execute(
        "INSERT INTO documents (return_id, system, kind, number, status) "
        "VALUES (%s, 'netsuite', 'supplier_claim', 'CLM-R1-supplier', 'credited')",
        [r1],
    )
    r2 = records.accept(partner, at=T0 + DAY)
    _credited_path(
        records,
        r2,
        T0 + DAY,
        [
            (1, "validated", life),
            (2, "pending_approval", life),
            (4, "authorized", APPROVER),
            (5, "rma", NETSUITE),
            (9, "received", WMS),
            (10, "inspected", PERSON),
            (10, "claim:CLM-R2-supplier:30.00", life),
            (10, "dispositioned", life),
            (20, "credited", NETSUITE),
            (20, "closed", life),
        ],
    )
    r3 = records.accept(
        partner, at=T0 + 2 * DAY, reason="wrong_item_shipped", lines=[{"sku": "CAB-2", "quantity": 2}]
    )
    _credited_path(
        records,
        r3,
        T0 + 2 * DAY,
        [
            (1, "validated", life),
            (2, "authorized", life),
            (4, "rma", NETSUITE),
            (5, "carrier:DHL", life),
            (5, "received", WMS),
            (6, "inspected", PERSON),
            (6, "dispositioned", life),
            (10, "credited", NETSUITE),
            (10, "closed", life),
        ],
    )
    for rid, site in ((r1, "DE-HAM"), (r2, "DE-HAM"), (r3, "US-CHI")):
        records.update(rid, return_site=site)
    r4 = records.accept(partner, at=T0 + 3 * DAY, lines=[{"sku": "SSD-1", "quantity": 3}])
    _credited_path(records, r4, T0 + 3 * DAY, [(1, "validated", life), (2, "authorized", life)])
    records.db.execute("UPDATE return_lines SET authorized_quantity = 2 WHERE return_id = %s", [r4])
    r5 = records.accept(partner, at=T0 + 25 * DAY)
    _credited_path(
        records,
        r5,
        T0 + 25 * DAY,
        [(1, "validated", life), (2, "authorized", life), (3, "on_hold", APPROVER)],
    )
    r6 = records.accept(partner, at=T0 + 29 * DAY)
    _credited_path(records, r6, T0 + 29 * DAY, [(1, "validated", life), (2, "pending_approval", life)])
    r7 = records.accept(partner, at=T0 + 20 * DAY)
    _credited_path(records, r7, T0 + 20 * DAY, [(1, "validation_failed", life)])
    r8 = records.accept(partner, at=T0 + 27 * DAY)
    _credited_path(
        records,
        r8,
        T0 + 27 * DAY,
        [(1, "validated", life), (2, "authorized", life), (24, "received", PERSON)],
    )
    records.db.execute(
        """INSERT INTO inspections
               (task_number, return_id, site, priority, due_by, rule, raised_by, requested_at)
           VALUES (%s, %s, 'DE-HAM', 'normal', %s, '{"id": "inspect", "version": "1"}', 'receipt', %s)""",
        [f"INSP-{r8[4:16]}", r8, T0 + 29 * DAY, T0 + 28 * DAY],
    )
    r9 = records.accept(partner, at=T0 + 4 * DAY)
    _credited_path(
        records, r9, T0 + 4 * DAY, [(1, "validated", life), (2, "rejected", APPROVER), (2, "closed", life)]
    )
    records.close()
    yield partner


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(database_url, max_size=2)
    yield opened
    await opened.close()


def _window(partner: str | None) -> Window:
    return Window(partner=partner, since=T0, until=T0 + 60 * DAY, now=NOW)


def _by(rows: list[Any], *fields: str) -> dict[Any, Any]:
    return {
        tuple(getattr(r, f) for f in fields) if len(fields) > 1 else getattr(r, fields[0]): r for r in rows
    }


async def test_cycle_time_from_request_to_credit(
    scenario: str, pool: AsyncConnectionPool, database_url: str
) -> None:
    # Credited after 10 h (R1), 20 h (R2), 10 h (R3).
    by_reason = _by(await cycle_time(pool, database_url, _window(scenario), "reason"), "key")
    assert by_reason.keys() == {"defective", "wrong_item_shipped"}
    assert (by_reason["defective"].count, by_reason["defective"].p50_seconds) == (2, 54000.0)
    assert by_reason["defective"].p90_seconds == 68400.0  # 36000 + 0.9 x 36000
    assert (
        by_reason["wrong_item_shipped"].p50_seconds == by_reason["wrong_item_shipped"].p90_seconds == 36000.0
    )
    by_site = _by(await cycle_time(pool, database_url, _window(scenario), "site"), "key")
    assert {k: (v.count, v.p50_seconds) for k, v in by_site.items()} == {
        "DE-HAM": (2, 54000.0),
        "US-CHI": (1, 36000.0),
    }
    (everyone,) = await cycle_time(pool, database_url, _window(scenario), "partner")
    assert (everyone.key, everyone.count, everyone.p50_seconds, everyone.p90_seconds) == (
        scenario,
        3,
        36000.0,
        64800.0,
    )
    later = Window(partner=scenario, since=T0 + 2 * DAY, until=T0 + 60 * DAY, now=NOW)
    assert [(r.key, r.count) for r in await cycle_time(pool, database_url, later, "reason")] == [
        ("wrong_item_shipped", 1)
    ]


async def test_time_in_each_status(scenario: str, pool: AsyncConnectionPool, database_url: str) -> None:
    stays = _by(await status_times(pool, database_url, _window(scenario)), "status")
    # Dispositioned 4 h (R1), 10 h (R2), 4 h (R3).
    dispositioned = stays["dispositioned"]
    assert (dispositioned.stays, dispositioned.average_seconds, dispositioned.p50_seconds) == (
        3,
        21600.0,
        14400.0,
    )
    assert dispositioned.p90_seconds == 31680.0
    # Every return left requested after an hour; validated too, but R7 never was.
    assert (stays["requested"].stays, stays["requested"].p90_seconds) == (9, 3600.0)
    assert (stays["validated"].stays, stays["validated"].p50_seconds) == (8, 3600.0)
    assert (stays["closed"].stays, stays["closed"].in_status_now) == (0, 4)
    assert stays["authorized"].in_status_now == 1 and stays["on_hold"].in_status_now == 1


async def test_exception_rate_and_touches(
    scenario: str, pool: AsyncConnectionPool, database_url: str
) -> None:
    figures = await exceptions(pool, database_url, _window(scenario))
    # R5 held, R7 failed validation; people acted on R1 (2), R2 (2), R3, R5, R8, R9.
    assert (figures.returns, figures.exceptions, figures.exception_rate) == (9, 2, 0.2222)
    assert (figures.touched, figures.touches, figures.touches_per_return, figures.touchless_rate) == (
        6,
        8,
        0.8889,
        0.3333,
    )


async def test_queue_aging(scenario: str, pool: AsyncConnectionPool, database_url: str) -> None:
    queues = _by(await queue_aging(pool, database_url, _window(scenario)), "queue")
    approvals, holds, inspections = queues["approvals"], queues["holds"], queues["inspections"]
    # R6 waits 22 h, R7 9 days 23 h.
    assert (approvals.waiting, approvals.oldest_seconds, approvals.p50_seconds) == (2, 860400.0, 469800.0)
    assert (approvals.over_1d, approvals.over_3d, approvals.over_7d, approvals.overdue) == (1, 1, 1, None)
    # R5 held for 4 days 21 h.
    assert (holds.waiting, holds.oldest_seconds, holds.over_3d, holds.over_7d) == (1, 421200.0, 1, 0)
    # R8's task raised 2 days ago, due a day ago.
    assert (inspections.waiting, inspections.oldest_seconds, inspections.overdue) == (1, 172800.0, 1)


async def test_credit_aging(scenario: str, pool: AsyncConnectionPool, database_url: str) -> None:
    aging = await credit_aging(pool, database_url, _window(scenario))
    # R5 (held) and R8 authorized days ago, 10.00 each; R4 26 days 22 h ago, 2 of 3 at 10.00.
    assert [(a.bucket, a.currency, a.returns, a.amount) for a in aging] == [
        ("0-7d", "EUR", 2, "20.00"),
        ("15-30d", "EUR", 1, "20.00"),
    ]


async def test_reasons_by_sku_site_and_carrier(
    scenario: str, pool: AsyncConnectionPool, database_url: str
) -> None:
    window = _window(scenario)
    by_sku = [
        (r.key, r.reason_code, r.returns, r.quantity)
        for r in await reasons(pool, database_url, window, "sku")
    ]
    assert by_sku == [
        ("SSD-1", "defective", 8, "10"),
        ("CAB-2", "wrong_item_shipped", 1, "2"),
        ("HDD-9", "no_longer_needed", 1, "1"),
    ]
    by_site = [(r.key, r.reason_code, r.returns) for r in await reasons(pool, database_url, window, "site")]
    assert by_site == [
        (None, "defective", 6),
        ("DE-HAM", "defective", 2),
        ("US-CHI", "wrong_item_shipped", 1),
    ]
    by_carrier = [
        (r.key, r.reason_code, r.returns) for r in await reasons(pool, database_url, window, "carrier")
    ]
    assert by_carrier == [(None, "defective", 7), ("DHL", "wrong_item_shipped", 1), ("UPS", "defective", 1)]


async def test_supplier_recovery(scenario: str, pool: AsyncConnectionPool, database_url: str) -> None:
    (vendor,) = await supplier_recovery(pool, database_url, _window(scenario))
    assert (vendor.vendor, vendor.currency, vendor.claims_raised, vendor.claims_credited) == (
        "V100",
        "EUR",
        2,
        1,
    )
    assert (vendor.recovery_rate, vendor.amount_claimed) == (0.5, "150.50")


async def test_posting_latency(scenario: str, pool: AsyncConnectionPool, database_url: str) -> None:
    latency = _by(await posting_latency(pool, database_url, _window(scenario)), "document")
    rma, credit = latency["rma"], latency["credit_memo"]
    # RMAs 1 h, 1 h and 2 h after authorization; credit memos 4 h, 10 h and 4 h after disposition.
    assert (rma.system, rma.postings, rma.p50_seconds, rma.p90_seconds, rma.max_seconds) == (
        "netsuite",
        3,
        3600.0,
        6480.0,
        7200.0,
    )
    assert (credit.system, credit.postings, credit.p50_seconds, credit.p90_seconds, credit.max_seconds) == (
        "netsuite",
        3,
        14400.0,
        31680.0,
        36000.0,
    )


async def test_another_partners_window_is_empty(
    scenario: str, pool: AsyncConnectionPool, database_url: str
) -> None:
    window = _window("nobody-else")
    assert await cycle_time(pool, database_url, window, "reason") == []
    assert (await exceptions(pool, database_url, window)).returns == 0
    assert [q.waiting for q in await queue_aging(pool, database_url, window)] == [0, 0, 0]


async def test_the_api_answers_each_report_to_those_allowed(
    scenario: str, gateway: Gateway, make_key: KeyFactory
) -> None:
    reader = await make_key(scenario, ("reports:read",))
    admin = await make_key("ops", ("admin",))
    partner_only = await make_key(scenario, ("returns:read",))
    window = {"since": T0.isoformat(), "until": (T0 + 60 * DAY).isoformat()}
    paths = [
        "cycle-time",
        "status-times",
        "exceptions",
        "queues",
        "credit-aging",
        "reasons",
        "supplier-recovery",
        "posting-latency",
    ]
    for path in paths:
        response = await gateway.client.get(
            f"/v1/reports/{path}", params=window, headers={"Authorization": f"Bearer {reader}"}
        )
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        assert (body["object"], body["report"], body["partner"]) == ("report", path, scenario)
        assert body["definition"] and "data" in body
    cycle = await gateway.client.get(
        "/v1/reports/cycle-time",
        params={**window, "group_by": "site", "partner": scenario},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert [(g["key"], g["count"]) for g in cycle.json()["data"]] == [("DE-HAM", 2), ("US-CHI", 1)]
    # A partner's reports:read key cannot look at another partner's figures.
    other = await gateway.client.get(
        "/v1/reports/exceptions",
        params={**window, "partner": "ops"},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert other.json()["partner"] == scenario and other.json()["data"]["returns"] == 9
    refused = await gateway.client.get(
        "/v1/reports/exceptions", headers={"Authorization": f"Bearer {partner_only}"}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    for bad in (
        {"since": "2026-11-02T00:00:00"},
        {"since": window["until"], "until": window["since"]},
        {"by": "x"},
    ):
        response = await gateway.client.get(
            "/v1/reports/reasons", params=bad, headers={"Authorization": f"Bearer {reader}"}
        )
        assert response.status_code == 400, (bad, response.text)
