"""Databases of the tests' own on the local PostgreSQL: created per test (or per module, at head)
with a random name and dropped afterwards, so runs never share or leave a schema behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gateway.database import upgrade
from gateway.database.tables import VERSION_TABLE
from tests.support.database import new_database, url_of


@pytest.fixture
def empty_database() -> Iterator[str]:
    """The URL of a new, empty database of this test's own."""
    with new_database() as url:
        yield url


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """The URL of a database of this module's own, upgraded to the head revision."""
    with new_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def missing_database_url() -> str:
    """A URL to a database that does not exist on the tests' server."""
    return url_of(f"rgw_test_missing_{uuid.uuid4().hex[:12]}")


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the schema is: columns, indexes, constraints, sequences, comments and the application
    role's grants, each sorted, alembic's version table left out (to compare a schema after a
    downgrade and an upgrade with the one before)."""
    queries = {
        "columns": """
            SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
            FROM information_schema.columns WHERE table_schema = current_schema()""",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
        "constraints": """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = current_schema()::regnamespace""",
        "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()",
        "grants": """
            SELECT table_name, privilege_type FROM information_schema.role_table_grants
            WHERE grantee = 'returns_gateway_app'""",
        "comments": """
            SELECT c.relname, a.attname, d.description FROM pg_description d
            JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
            WHERE c.relnamespace = current_schema()::regnamespace""",
    }
    with psycopg.connect(url) as connection:
        return {
            what: sorted(
                (row for row in connection.execute(query).fetchall() if VERSION_TABLE not in str(row[:2])),
                key=repr,
            )
            for what, query in queries.items()
        }
