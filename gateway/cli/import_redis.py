"""``returns-gateway db import-redis``: copy what a deployment kept in Redis into PostgreSQL.

For a deployment that ran before the record moved: each store that moved reads the Redis format
it replaced and writes its rows, skipping what is already there, so the command can run again
(after a partial run, or while the old release still writes) and copies nothing twice.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import typer

from gateway.errors import GatewayError
from gateway.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from psycopg_pool import AsyncConnectionPool

Importer = Callable[["aioredis.Redis", Settings, "AsyncConnectionPool"], Awaitable[int]]

#: What moved, in an order that keeps references whole (partners before their endpoints,
#: returns before what points at them): (what it is, the module with its ``import_from_redis``).
IMPORTS: tuple[tuple[str, str], ...] = (
    ("API keys and partners", "gateway.auth"),
    ("webhook endpoints", "gateway.partners.endpoints"),
    ("accepted returns and their idempotency keys", "gateway.records"),
    ("return lifecycles", "gateway.lifecycle"),
    ("EDI interchanges and acknowledgements", "gateway.edi.intake"),
    ("dead-letter audit", "gateway.deadletters"),
)


def importer(module: str) -> Importer:
    """The ``import_from_redis`` of ``module``."""
    found: Importer = importlib.import_module(module).import_from_redis
    return found


async def import_everything(settings: Settings, say: Callable[[str], None]) -> dict[str, int]:
    """Run every store's import against ``settings``' Redis and database; how many rows each wrote."""
    from gateway.database import open_database
    from gateway.storage import connect_redis

    redis = connect_redis(settings.redis_url)
    pool = await open_database(settings)
    copied: dict[str, int] = {}
    try:
        for what, module in IMPORTS:
            copied[what] = await importer(module)(redis, settings, pool)
            say(f"{what}: {copied[what]} copied")
    finally:
        await pool.close()
        await redis.aclose()
    return copied


def import_redis() -> None:
    """Copy keys, partners, endpoints, returns, their lifecycles, EDI records and the dead-letter audit from
    Redis (RGW_REDIS_URL, RGW_NAMESPACE) into PostgreSQL (RGW_DATABASE_URL); safe to run again."""
    try:
        asyncio.run(import_everything(Settings.from_env(), typer.echo))
    except GatewayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
