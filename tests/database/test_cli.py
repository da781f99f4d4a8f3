"""``returns-gateway db upgrade | downgrade | current`` against a database of the test's own
(in-process through typer's runner; once as a real process)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.database import current_revision, describe, head_revision
from tests.support.server import cli


@pytest.fixture
def run(empty_database: str) -> CliRunner:
    return CliRunner(env={"RGW_DATABASE_URL": empty_database})


def test_upgrade_current_and_downgrade(run: CliRunner, empty_database: str) -> None:
    where = describe(empty_database)
    head = head_revision()

    before = run.invoke(app, ["db", "current"])
    assert before.exit_code == 1, before.output
    assert f"{where}: revision none (empty), not current: this code needs {head}" in before.stdout

    upgraded = run.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"{where}: at revision {head}" in upgraded.stdout
    assert "Running upgrade  -> 0001" in upgraded.stderr  # alembic's progress, one line per migration

    now = run.invoke(app, ["db", "current"])
    assert now.exit_code == 0 and f"revision {head}, up to date" in now.stdout

    down = run.invoke(app, ["db", "downgrade", "0002", "--yes"])
    assert down.exit_code == 0, down.output
    assert f"{where}: at revision 0002" in down.stdout
    assert current_revision(empty_database) == "0002"

    again = run.invoke(app, ["db", "upgrade", "0003"])
    assert again.exit_code == 0 and current_revision(empty_database) == "0003"


def test_downgrade_asks_first(run: CliRunner, empty_database: str) -> None:
    assert run.invoke(app, ["db", "upgrade"]).exit_code == 0
    refused = run.invoke(app, ["db", "downgrade", "base"], input="n\n")
    assert refused.exit_code != 0 and "dropping data?" in refused.stdout
    assert current_revision(empty_database) == head_revision()
    agreed = run.invoke(app, ["db", "downgrade", "base"], input="y\n")
    assert agreed.exit_code == 0 and current_revision(empty_database) is None


def test_upgrade_sql_prints_the_migrations_without_a_database() -> None:
    runner = CliRunner(env={"RGW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    printed = runner.invoke(app, ["db", "upgrade", "--sql"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith("BEGIN;") and "CREATE TABLE timeline_entries" in printed.stdout
    assert f"UPDATE alembic_version SET version_num='{head_revision()}'" in printed.stdout
    since = runner.invoke(app, ["db", "upgrade", "--sql", "--since", "0003"])
    assert since.exit_code == 0, since.output
    assert "CREATE TABLE dead_letter_actions" in since.stdout and "CREATE TABLE returns" not in since.stdout


@pytest.mark.parametrize("args", [["db", "current"], ["db", "upgrade"], ["db", "downgrade", "base", "--yes"]])
def test_a_missing_database_is_an_error_message(missing_database_url: str, args: list[str]) -> None:
    result = CliRunner(env={"RGW_DATABASE_URL": missing_database_url}).invoke(app, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # ended on purpose, not by an exception escaping
    said = " ".join(result.stderr.split())
    assert "does not exist: create it" in said and "returns-gateway db upgrade" in said


def test_the_installed_command_refuses_to_serve_an_old_schema(empty_database: str) -> None:
    """A real process: one clear line on stderr and exit 2, no traceback, nothing listening."""
    result = cli({"RGW_DATABASE_URL": empty_database}, "serve", "--port", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert "has no schema yet" in said and "run `returns-gateway db upgrade`" in said
