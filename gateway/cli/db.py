"""``returns-gateway db``: migrate the PostgreSQL schema and say where it stands.

The database is ``RGW_DATABASE_URL`` (unset: the local default of
:data:`~gateway.settings.DEFAULT_DATABASE_URL`). Run the migrations as the database's owner,
not as the gateway's own login (a member of ``returns_gateway_app``, which has no DDL).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from gateway.cli.import_redis import import_redis
from gateway.cli.purge import purge
from gateway.errors import GatewayError
from gateway.settings import Settings

db_app = typer.Typer(
    help="The PostgreSQL schema (RGW_DATABASE_URL): upgrade, downgrade, current revision; purge.",
    no_args_is_help=True,
)
err = Console(stderr=True)
T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """Run ``action`` with alembic's progress lines on stderr; our errors end the command (1)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    migration = logging.getLogger("alembic.runtime.migration")
    migration.addHandler(handler)
    migration.setLevel(logging.INFO)
    try:
        return action()
    except GatewayError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    finally:
        migration.removeHandler(handler)


def _say_where(url: str) -> None:
    from gateway import database

    revision = _run(lambda: database.current_revision(url))
    typer.echo(f"{database.describe(url)}: at revision {revision or 'none (empty)'}")


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Revision to reach (default: the newest).")] = "head",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it (connects to nothing).")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="With --sql: the revision the database is at (default: empty).")
    ] = None,
) -> None:
    """Migrate the schema up to REVISION (each migration in its own transaction)."""
    from gateway import database

    if sql:
        typer.echo(_run(lambda: database.upgrade_sql(revision, since=since)), nl=False)
        return
    url = Settings.from_env().database
    _run(lambda: database.upgrade(url, revision))
    _say_where(url)


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Revision to go back to: an id, -1, or base (no schema).")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask: the tables undone lose their data.")
    ] = False,
) -> None:
    """Migrate the schema down to REVISION; the tables it undoes are dropped with their data."""
    from gateway import database

    url = Settings.from_env().database
    if not yes:
        typer.confirm(f"downgrade {database.describe(url)} to {revision}, dropping data?", abort=True)
    _run(lambda: database.downgrade(url, revision))
    _say_where(url)


@db_app.command("current")
def current() -> None:
    """Print the schema's revision and whether it is the one this code needs (exit 1 if not)."""
    from gateway import database

    url = Settings.from_env().database
    revision = _run(lambda: database.current_revision(url))
    head = database.head_revision()
    state = "up to date" if revision == head else f"not current: this code needs {head}"
    typer.echo(f"{database.describe(url)}: revision {revision or 'none (empty)'}, {state}")
    if revision != head:
        raise typer.Exit(code=1)


db_app.command("purge")(purge)
db_app.command("import-redis")(import_redis)
