"""The schema's revisions: migrate a database (alembic) and check it is the one the code needs.

The migrations ship inside the package (``gateway/database/migrations``), so an installed
gateway migrates its database with ``returns-gateway db upgrade``; no ``alembic.ini`` is needed.
History is linear: each revision has one parent, and the newest is the *head* this code needs.
alembic (and SQLAlchemy under it) is imported only to migrate or to learn the head, never by
the request path.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from gateway.database._connect import connect, describe, translate
from gateway.database.tables import APP_ROLE, VERSION_TABLE
from gateway.errors import ConfigurationError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = "gateway.database:migrations"
"""Where alembic finds ``env.py`` and ``versions/`` (a package resource, so it works installed)."""
UPGRADE_HINT = "run `returns-gateway db upgrade` with RGW_DATABASE_URL set to it"


def _config(*, output: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    config = Config(output_buffer=output)
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("path_separator", "os")
    return config


@functools.cache
def head_revision() -> str:
    """The revision this code was written for."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations have no revision"
    return head


def revisions() -> list[tuple[str, str]]:
    """Every revision, oldest first, with the first line of its docstring."""
    from alembic.script import ScriptDirectory

    scripts = list(ScriptDirectory.from_config(_config()).walk_revisions())
    return [(s.revision, (s.doc or "").strip().splitlines()[0]) for s in reversed(scripts)]


def current_revision(url: str) -> str | None:
    """The revision of the database's schema; ``None`` for a database without one (empty, or
    downgraded to the base)."""
    with connect(url) as connection:
        try:
            rows = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        except psycopg.errors.UndefinedTable:
            return None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ConfigurationError(
                f"the login of RGW_DATABASE_URL may not read {VERSION_TABLE} in {describe(url)}: make it "
                f"a member of the application role (GRANT {APP_ROLE} TO <login>)"
            ) from exc
    if len(rows) > 1:
        raise ConfigurationError(f"{describe(url)} holds {len(rows)} schema revisions; expected one")
    return str(rows[0][0]) if rows else None


def ensure_schema_current(url: str) -> str:
    """The database's revision if it is this code's head; else :class:`SchemaOutOfDate` saying
    which revision it is at, which one is needed, and the command that fixes it
    (:class:`~gateway.errors.DatabaseMissing` or :class:`~gateway.errors.DatabaseUnavailable`
    when there is no database to look at)."""
    head = head_revision()
    current = current_revision(url)
    if current == head:
        return current
    where = describe(url)
    if current is None:
        raise SchemaOutOfDate(
            f"{where} has no schema yet; this gateway needs revision {head}: {UPGRADE_HINT}",
            current=None,
            head=head,
        )
    if current in {revision for revision, _ in revisions()}:
        raise SchemaOutOfDate(
            f"the schema of {where} is at revision {current}, older than this gateway's {head}: "
            f"{UPGRADE_HINT}",
            current=current,
            head=head,
        )
    raise SchemaOutOfDate(
        f"the schema of {where} is at revision {current}, which this gateway does not know (it "
        f"needs {head}): a newer release migrated it; run that release, or downgrade the database "
        f"with it (`returns-gateway db downgrade {head}`) before starting this one",
        current=current,
        head=head,
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (each migration in a transaction of its own)."""
    from alembic import command

    with _connected(url) as config:
        command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base``: no schema left). Drops data."""
    from alembic import command

    with _connected(url) as config:
        command.downgrade(config, revision)


def upgrade_sql(revision: str = "head", *, since: str | None = None) -> str:
    """The SQL that upgrades from ``since`` (default: an empty database) to ``revision``, for a
    DBA who applies migrations by hand; nothing is connected to."""
    from alembic import command

    output = io.StringIO()
    command.upgrade(_config(output=output), f"{since}:{revision}" if since else revision, sql=True)
    return output.getvalue()


@contextmanager
def _connected(url: str) -> Iterator[Config]:
    """A configuration whose ``env.py`` migrates over one connection to ``url``; what PostgreSQL
    says on the way comes out as our errors."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    creator: Callable[[], psycopg.Connection] = lambda: connect(url)  # noqa: E731
    engine = create_engine("postgresql+psycopg://", creator=creator, poolclass=NullPool)
    config = _config()
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            yield config
    except DBAPIError as exc:
        translated = translate(exc.orig, url) if exc.orig is not None else None
        if translated is None:
            raise
        raise translated from exc
    finally:
        engine.dispose()
