"""Connections to PostgreSQL (psycopg 3), its pool, and the translation of its errors.

``url`` is anything libpq takes: ``postgresql://user@host:5432/db`` or ``host=... dbname=...``;
the ``PG*`` environment variables and ``~/.pgpass`` fill in what it leaves out, as for ``psql``.
Messages name the database and its server, never the user's password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from gateway.errors import DatabaseMissing, DatabaseUnavailable, GatewayError
from gateway.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5
"""How long opening one connection may take before the server counts as unavailable."""
APPLICATION_NAME = "returns-gateway"
"""How the gateway's sessions show in ``pg_stat_activity``."""

_NO_SUCH_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def describe(url: str) -> str:
    """Where ``url`` points, for a message: ``database "x" on host:port`` (no credentials)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database of RGW_DATABASE_URL (which libpq cannot read)"
    host = str(parts.get("host") or "the local socket")
    port = str(parts.get("port") or "5432")
    name = str(parts.get("dbname") or parts.get("user") or "(default)")
    return f'database "{name}" on {host}:{port}'


def translate(exc: BaseException, url: str) -> GatewayError | None:
    """Our error for what psycopg (or its pool) raised, or ``None`` when it is not one of ours
    to translate (a programming error, a constraint: the caller's to handle)."""
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(f"PostgreSQL did not give a connection in time ({describe(url)}): {exc}")
    if not isinstance(exc, psycopg.OperationalError):
        return None
    said = " ".join(str(exc).split())
    missing = _NO_SUCH_DATABASE.search(said)
    if missing:
        return DatabaseMissing(
            f"{describe(url)} does not exist: create it (`createdb {missing['name']}` on that server, "
            f"or `bash scripts/services-up.sh` for the local one), then run `returns-gateway db upgrade`"
        )
    return DatabaseUnavailable(f"PostgreSQL unavailable ({describe(url)}): {said}")


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Translate an unreachable, refusing or missing database into our errors
    (:class:`~gateway.errors.DatabaseUnavailable`, :class:`~gateway.errors.DatabaseMissing`)."""
    try:
        yield
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise (translate(exc, url) or exc) from exc


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """One connection, for commands and start-up checks (the running gateway uses a pool)."""
    with database_errors(url):
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
        )


async def open_pool(
    url: str, *, max_size: int = 10, min_size: int = 1, wait_seconds: float = 5.0
) -> AsyncConnectionPool:
    """An open pool of up to ``max_size`` connections, its first ``min_size`` already made (so a
    wrong URL or a server down shows at start-up); the caller closes it (``await pool.close()``).

    ``wait_seconds`` is how long a request waits for a connection before
    :class:`~gateway.errors.DatabaseUnavailable`; wrap uses in :func:`database_errors`.
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=min(min_size, max_size),
        max_size=max_size,
        timeout=wait_seconds,
        open=False,
        name=APPLICATION_NAME,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": APPLICATION_NAME},
    )
    try:
        await pool.open(wait=True, timeout=wait_seconds)
    except PoolTimeout as exc:
        await pool.close()
        raise (await _why_not(url) or translate(exc, url) or exc) from exc
    return pool


async def open_database(settings: Settings) -> AsyncConnectionPool:
    """:func:`open_pool` on ``settings.database`` with ``RGW_DATABASE_POOL_SIZE`` connections at most."""
    return await open_pool(settings.database, max_size=settings.database_pool_size)


async def _why_not(url: str) -> GatewayError | None:
    """What one direct connection says (the pool's timeout alone does not say why)."""
    try:
        probe = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except psycopg.OperationalError as exc:
        return translate(exc, url)
    await probe.close()
    return None
