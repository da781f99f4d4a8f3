"""The migrations: an empty database reaches the head, every migration goes down and up again to
the very same schema, the history is one line, and the SQL printed for a DBA builds the same."""

from __future__ import annotations

import psycopg
from alembic.config import Config
from alembic.script import ScriptDirectory

from gateway.database import (
    MIGRATIONS,
    current_revision,
    downgrade,
    head_revision,
    revisions,
    upgrade,
    upgrade_sql,
)
from gateway.database import tables as t
from tests.database.conftest import snapshot


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    return {row[0] for row in rows}


def test_an_empty_database_is_upgraded_to_the_head(empty_database: str) -> None:
    assert current_revision(empty_database) is None
    upgrade(empty_database)
    assert current_revision(empty_database) == head_revision()
    assert _tables(empty_database) == {*t.TABLES, t.VERSION_TABLE}
    with psycopg.connect(empty_database) as connection:
        sequence = connection.execute("SELECT to_regclass(%s)", [t.EDI_ACK_CONTROL_SEQUENCE]).fetchone()
    assert sequence is not None and sequence[0] == t.EDI_ACK_CONTROL_SEQUENCE


def test_upgrading_a_current_database_changes_nothing(empty_database: str) -> None:
    upgrade(empty_database)
    before = snapshot(empty_database)
    upgrade(empty_database)
    assert snapshot(empty_database) == before


def test_the_history_is_one_line_ending_at_the_head() -> None:
    listed = [revision for revision, _ in revisions()]
    assert listed == sorted(listed) and len(set(listed)) == len(listed)
    assert listed[-1] == head_revision()
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [head_revision()]
    for earlier, later in zip([None, *listed], listed, strict=False):
        script = scripts.get_revision(later)
        assert script is not None and script.down_revision == earlier
        assert "Reversible" in (script.module.__doc__ or ""), f"{later} must say whether it is reversible"


def test_every_migration_goes_down_and_up_to_the_same_schema(empty_database: str) -> None:
    """Each revision in turn: up, down to the one before (base for the first), and up again,
    with the schema compared at each point; at base nothing of ours is left."""
    url = empty_database
    base = snapshot(url)
    previous, before = "base", base
    for revision, _ in revisions():
        upgrade(url, revision)
        after = snapshot(url)
        assert after != before, f"{revision} changed nothing"
        downgrade(url, previous)
        assert current_revision(url) == (None if previous == "base" else previous)
        assert snapshot(url) == before, f"downgrading {revision} did not give back {previous}'s schema"
        upgrade(url, revision)
        assert snapshot(url) == after, f"{revision} again is not the {revision} it was"
        previous, before = revision, after

    downgrade(url, "base")
    assert current_revision(url) is None
    assert _tables(url) == {t.VERSION_TABLE}  # alembic keeps its (empty) table
    assert snapshot(url) == base
    upgrade(url)
    assert current_revision(url) == head_revision()


def test_the_sql_for_a_dba_builds_the_same_schema(empty_database: str, database: str) -> None:
    sql = upgrade_sql()
    assert "CREATE TABLE returns" in sql and f"GRANT SELECT, INSERT ON {t.TIMELINE_ENTRIES}" in sql
    with psycopg.connect(empty_database, autocommit=True) as connection:
        connection.execute(sql.encode())
    assert current_revision(empty_database) == head_revision()
    assert snapshot(empty_database) == snapshot(database)


def test_the_role_outlives_a_downgrade_and_is_created_once(empty_database: str) -> None:
    """The role belongs to the cluster (other databases may use it): a downgrade leaves it, and
    an upgrade finds it there."""
    upgrade(empty_database)
    downgrade(empty_database, "base")
    with psycopg.connect(empty_database) as connection:
        roles = connection.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = %s", [t.APP_ROLE]
        ).fetchone()
        grants = connection.execute(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = %s", [t.APP_ROLE]
        ).fetchone()
    assert roles == (1,) and grants == (0,)
    upgrade(empty_database)
    assert current_revision(empty_database) == head_revision()
