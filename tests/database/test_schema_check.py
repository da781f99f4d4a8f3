"""The start-up check: a gateway or connector refuses a database whose schema is not its code's,
or that is missing, with a message saying what, where, and which command fixes it."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient
from psycopg.conninfo import conninfo_to_dict

from gateway.api import create_app
from gateway.database import (
    current_revision,
    database_errors,
    describe,
    ensure_schema_current,
    head_revision,
    open_database,
    open_pool,
    upgrade,
)
from gateway.database.tables import RETURNS, VERSION_TABLE
from gateway.errors import ConfigurationError, DatabaseMissing, DatabaseUnavailable, SchemaOutOfDate
from gateway.registry import ContractRegistry
from gateway.settings import DEFAULT_DATABASE_URL, Settings
from gateway.worker import run_connector
from tests.support.database import name_of

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/returns_gateway"
"""Nothing listens on port 1."""


def test_a_current_schema_passes(database: str) -> None:
    assert ensure_schema_current(database) == head_revision()


def test_an_empty_database_is_refused_with_the_command_that_fixes_it(empty_database: str) -> None:
    with pytest.raises(SchemaOutOfDate) as caught:
        ensure_schema_current(empty_database)
    said = str(caught.value)
    assert f"{describe(empty_database)} has no schema yet" in said
    assert head_revision() in said and "`returns-gateway db upgrade`" in said
    assert caught.value.current is None and caught.value.head == head_revision()
    assert isinstance(caught.value, ConfigurationError)  # it refuses to start


def test_an_older_schema_is_refused_naming_both_revisions(empty_database: str) -> None:
    upgrade(empty_database, "0002")
    with pytest.raises(SchemaOutOfDate) as caught:
        ensure_schema_current(empty_database)
    said = str(caught.value)
    assert f"at revision 0002, older than this gateway's {head_revision()}" in said
    assert "run `returns-gateway db upgrade` with RGW_DATABASE_URL set to it" in said
    assert caught.value.current == "0002"


def test_a_schema_from_a_newer_release_is_refused(empty_database: str) -> None:
    upgrade(empty_database)
    with psycopg.connect(empty_database) as connection:
        connection.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(SchemaOutOfDate) as caught:
        ensure_schema_current(empty_database)
    assert "at revision 9999, which this gateway does not know" in str(caught.value)
    assert "a newer release migrated it" in str(caught.value)


def test_a_missing_database_is_named_with_how_to_create_it(missing_database_url: str) -> None:
    name = name_of(missing_database_url)
    with pytest.raises(DatabaseMissing) as caught:
        ensure_schema_current(missing_database_url)
    said = str(caught.value)
    assert f'database "{name}" on ' in said and " does not exist: create it" in said
    assert f"`createdb {name}`" in said and "`returns-gateway db upgrade`" in said


def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        current_revision(UNREACHABLE)
    assert 'PostgreSQL unavailable (database "returns_gateway" on 127.0.0.1:1)' in str(caught.value)


def test_messages_never_show_the_password() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        current_revision("postgresql://gateway:s3cret-pw@127.0.0.1:1/returns_gateway")
    assert "s3cret-pw" not in str(caught.value)


def test_without_rgw_database_url_the_local_database_is_the_record() -> None:
    assert Settings.from_env({}).database == DEFAULT_DATABASE_URL
    assert Settings.from_env({"RGW_DATABASE_URL": ""}).database == DEFAULT_DATABASE_URL


def test_rgw_database_url_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"RGW_DATABASE_URL": UNREACHABLE, "RGW_DATABASE_POOL_SIZE": "3"})
    assert settings.database == UNREACHABLE
    assert settings.database_pool_size == 3


async def test_the_gateway_refuses_to_start_on_an_older_schema(
    empty_database: str, registry: ContractRegistry, settings: Settings, amqp: AbstractRobustConnection
) -> None:
    upgrade(empty_database, "0001")
    older = dataclasses.replace(settings, database_url=empty_database)
    with pytest.raises(BaseExceptionGroup) as caught:  # raised by its lifespan, as it starts
        async with AsyncTestClient(create_app(older, registry)):
            pass
    assert caught.group_contains(SchemaOutOfDate, match="at revision 0001, older than")
    upgrade(empty_database)
    async with AsyncTestClient(create_app(older, registry)) as client:
        assert (await client.get("/health/live")).status_code == 200


async def test_a_connector_refuses_to_start_on_a_missing_database(missing_database_url: str) -> None:
    with pytest.raises(DatabaseMissing):  # before the routing table, the broker or Redis
        await run_connector("erp", Settings(database_url=missing_database_url, routes_file=None))


async def test_the_pool_serves_connections(database: str) -> None:
    pool = await open_database(Settings(database_url=database, database_pool_size=2))
    assert pool.max_size == 2
    try:
        with database_errors(database):
            async with pool.connection() as connection:
                cursor = await connection.execute(f"SELECT count(*) FROM {RETURNS}")
                assert await cursor.fetchone() == (0,)
    finally:
        await pool.close()


async def test_a_pool_on_a_missing_database_says_so(missing_database_url: str) -> None:
    with pytest.raises(DatabaseMissing):
        await open_pool(missing_database_url, wait_seconds=0.5)


async def test_a_pool_on_an_unreachable_server_is_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable):
        await open_pool(UNREACHABLE, wait_seconds=0.5)


def test_a_database_url_may_be_a_uri_or_a_libpq_string(database: str) -> None:
    parts = conninfo_to_dict(database)
    uri = f"postgresql://{parts['user']}@{parts['host']}:{parts.get('port', 5432)}/{parts['dbname']}"
    keywords = " ".join(f"{key}={value}" for key, value in parts.items())
    assert current_revision(uri) == current_revision(keywords) == head_revision()
    assert (
        describe(uri)
        == describe(keywords)
        == f'database "{parts["dbname"]}" on {parts["host"]}:' + str(parts.get("port", 5432))
    )
