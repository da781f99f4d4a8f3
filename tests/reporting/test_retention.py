"""Retention: personal data on returns closed longer than RGW_RETENTION_DAYS is erased, the
amounts and the audit trail stay; ``db purge --dry-run`` lists it first; erasing twice is once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.database.tables import APP_ROLE
from gateway.reporting import cutoff, due_for_erasure, erase_personal_data
from tests.support.records import Records

DAY = dt.timedelta(days=1)


@pytest.fixture
def records(database_url: str) -> Iterator[Records]:
    writer = Records(database_url)
    yield writer
    writer.close()


def _closed(records: Records, partner: str, days_ago: int, *, personal: bool = True) -> str:
    start = dt.datetime.now(dt.UTC) - days_ago * DAY - 5 * DAY
    rid = records.accept(partner, at=start, personal=personal, lines=[{"sku": "SSD-1"}, {"sku": "HDD-9"}])
    records.walk(rid, start, ("validated", 1), ("rejected", 1))
    records.move(rid, "closed", dt.datetime.now(dt.UTC) - days_ago * DAY)
    return rid


def _request(records: Records, rid: str) -> dict[str, Any]:
    row = records.db.execute("SELECT request FROM returns WHERE id = %s", [rid]).fetchone()
    assert row is not None
    request: dict[str, Any] = row[0]
    return request


def _trail(records: Records, rid: str) -> list[tuple[Any, ...]]:
    return records.db.execute(
        "SELECT id, at, action, actor, from_status, to_status, detail FROM timeline_entries "
        "WHERE return_id = %s ORDER BY id",
        [rid],
    ).fetchall()


async def test_personal_data_goes_after_the_retention_and_the_rest_stays(
    records: Records, database_url: str
) -> None:
    partner = records.partner()
    old = _closed(records, partner, 400)
    recent = _closed(records, partner, 10)
    old_without = _closed(records, partner, 400, personal=False)
    start = dt.datetime.now(dt.UTC) - 400 * DAY
    still_open = records.accept(partner, at=start)
    records.walk(still_open, start, ("validated", 1), ("authorized", 1))
    before = cutoff(dt.datetime.now(dt.UTC), 365)
    kept = {rid: _request(records, rid) for rid in (old, recent, old_without, still_open)}
    trail = _trail(records, old)

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        await connection.execute(f"SET ROLE {APP_ROLE}")  # what the gateway's own login may do is enough
        due = [d for d in await due_for_erasure(connection, database_url, before) if d.partner == partner]
        assert [(d.return_id, d.fields) for d in due] == [
            (old, ["contact", "ship_from", "notes", "lines.notes"])
        ]
        assert await erase_personal_data(connection, database_url, before) >= 1
        assert await erase_personal_data(connection, database_url, before) == 0
        assert await due_for_erasure(connection, database_url, before) == []

    erased = _request(records, old)
    assert not {"contact", "ship_from", "notes"} & erased.keys()
    assert all("notes" not in line for line in erased["lines"])
    expected = {k: v for k, v in kept[old].items() if k not in ("contact", "ship_from", "notes")}
    expected["lines"] = [{k: v for k, v in line.items() if k != "notes"} for line in kept[old]["lines"]]
    assert erased == expected  # amounts, SKUs, quantities, customer, references: all there
    assert _trail(records, old) == trail  # the audit trail is untouched
    for rid in (recent, old_without, still_open):
        assert _request(records, rid) == kept[rid]


def test_purge_command_lists_then_erases(records: Records, database_url: str) -> None:
    partner = records.partner()
    old = _closed(records, partner, 40)
    recent = _closed(records, partner, 5)
    run = CliRunner(env={"RGW_DATABASE_URL": database_url, "RGW_RETENTION_DAYS": "30"})

    listed = run.invoke(app, ["db", "purge", "--dry-run"])
    assert listed.exit_code == 0, listed.output
    assert "would erase personal data of" in listed.stdout and "(30 days of retention)" in listed.stdout
    assert old in listed.stdout and recent not in listed.stdout
    assert "contact, ship_from, notes, lines.notes" in listed.stdout
    assert "contact" in _request(records, old)  # a dry run changes nothing

    erased = run.invoke(app, ["db", "purge"])
    assert erased.exit_code == 0, erased.output
    assert "erased personal data of" in erased.stdout
    assert "contact" not in _request(records, old) and "contact" in _request(records, recent)
    again = run.invoke(app, ["db", "purge"])
    assert again.exit_code == 0 and "erased personal data of 0 return(s)" in again.stdout
    assert old not in run.invoke(app, ["db", "purge", "--dry-run"]).stdout

    shorter = run.invoke(app, ["db", "purge", "--days", "4"])
    assert shorter.exit_code == 0 and "contact" not in _request(records, recent)


def test_purge_says_when_the_database_is_away() -> None:
    run = CliRunner(env={"RGW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    refused = run.invoke(app, ["db", "purge", "--dry-run"])
    assert refused.exit_code == 1
    assert "PostgreSQL unavailable" in refused.stderr
