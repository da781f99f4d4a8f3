"""Databases of the tests' own on the local PostgreSQL, created with a random name and dropped
afterwards, so runs never share or leave a schema behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SERVER_URL = os.environ.get("RGW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""A database on the server the tests use, to create and drop theirs from (needs CREATEDB)."""


def url_of(name: str) -> str:
    """The URL of database ``name`` on the tests' server."""
    return make_conninfo(SERVER_URL, dbname=name)


def name_of(url: str) -> str:
    """The database ``url`` names."""
    return str(conninfo_to_dict(url)["dbname"])


@contextmanager
def new_database() -> Iterator[str]:
    """A new, empty database with a random name; dropped afterwards, even with sessions open."""
    name = f"rgw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def copy_of(template: str) -> Iterator[str]:
    """A new database copied from ``template`` (which nothing may be connected to), dropped
    afterwards: a database of a test's own at the head revision in a fraction of a migration's
    time, for tests that read a whole table rather than their own partners' rows."""
    name = f"rgw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{name_of(template)}"')
    try:
        yield url_of(name)
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
