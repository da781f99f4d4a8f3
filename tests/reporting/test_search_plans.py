"""Each search filter is answered from an index, not by reading the whole table: the plans of the
benchmark's searches (``bench/search.py``), on 20,000 returns in a database of this module's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bench.search import SEARCHES, load
from gateway.auth import Principal
from gateway.database import upgrade
from gateway.reporting import ReturnQuery, build_search
from tests.support.database import new_database


@pytest.fixture(scope="module")
def loaded() -> Iterator[str]:
    with new_database() as url:
        upgrade(url)
        load(url, 20_000)
        yield url


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


@pytest.mark.parametrize("name", list(SEARCHES))
def test_the_search_reads_an_index(loaded: str, name: str) -> None:
    partner, filters = SEARCHES[name]
    scopes = frozenset({"admin"} if partner is None else {"returns:read"})
    principal = Principal(partner=partner or "ops", key_id="k", scopes=scopes, rate_limit=0)
    statement, params = build_search(principal, ReturnQuery(**filters))
    with psycopg.connect(loaded) as db:
        explain = psycopg.sql.SQL("EXPLAIN (FORMAT JSON) ") + statement
        row = db.execute(explain, params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    scans = _scans(plan[0]["Plan"])
    assert not [s for s in scans if s[0] == "Seq Scan"], (name, scans)
    assert any("Index" in node for node, _ in scans), (name, scans)
