"""One connector as a process: ``returns-gateway connector run NAME``.

Reads the routing table, declares the topology (idempotent, so the connector can start
before or after the gateway), builds the connector with its target, and runs it until
SIGTERM or SIGINT, then stops gracefully: no new messages, in-flight ones finished, closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool
from tenacity import RetryError

from gateway.broker import until_connected
from gateway.database import ensure_schema_current, open_database
from gateway.errors import from_setting
from gateway.lifecycle import delivery_failed_notice, replay_delivered_notice
from gateway.mapping import MappingCatalog
from gateway.routing import ConnectorSpec, RoutingTable, RoutingTableError, load_routing_table
from gateway.runtime import ConnectorRuntime, build_connector, declare_topology
from gateway.sdk import Connector
from gateway.settings import Settings
from gateway.storage import connect_redis

log = logging.getLogger(__name__)


def _table(settings: Settings) -> RoutingTable:
    if settings.routes_file is None:
        raise RoutingTableError("RGW_ROUTES_FILE is not set: a connector needs the routing table")
    return load_routing_table(settings.routes_file)


def connector_runtime(
    connector: Connector,
    *,
    settings: Settings,
    spec: ConnectorSpec,
    redis: aioredis.Redis,
    database: AsyncConnectionPool | None = None,
    prefetch: int | None = None,
    graceful_timeout: float = 30.0,
) -> ConnectorRuntime:
    """A runtime for ``connector`` as the platform runs every one: a message about a return
    that is dead-lettered is announced to the lifecycle (``delivery-failed``), and so is its
    replayed copy once it goes through (``dead-letter-action`` delivered)."""
    return ConnectorRuntime(
        connector,
        settings=settings,
        spec=spec,
        redis=redis,
        database=database,
        prefetch=prefetch,
        graceful_timeout=graceful_timeout,
        dead_letter_notice=delivery_failed_notice,
        replay_notice=replay_delivered_notice,
    )


async def run_connector(name: str, settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run connector ``name`` until ``stop`` is set (or a termination signal arrives); never
    against a database (``RGW_DATABASE_URL``) whose schema is not this code's."""
    with from_setting("RGW_DATABASE_URL"):
        await asyncio.to_thread(ensure_schema_current, settings.database)
    with from_setting("RGW_ROUTES_FILE"):
        table = _table(settings)
        spec = table.connectors.get(name)
        if spec is None:
            raise RoutingTableError(f"connector '{name}' is not in {settings.routes_file}")
    with from_setting("RGW_MAPPINGS_DIR"):
        mappings = MappingCatalog.load(settings.mappings_dir, settings.contracts_dir)
    connector = build_connector(name, spec, mappings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = connect_redis(settings.redis_url)
    database = await open_database(settings)
    try:
        runtime = connector_runtime(connector, settings=settings, spec=spec, redis=redis, database=database)
        try:
            # Starting while the broker is down (or restarting) waits for it, unless told to stop.
            async for attempt in until_connected().copy(stop=lambda _: stop.is_set()):
                with attempt:
                    await declare_topology(settings, table)
                    await runtime.start()
        except RetryError:
            log.info("connector %s stopped before the broker was reachable", name)
            return
        log.info("connector %s consuming (prefetch %d)", name, spec.prefetch)
        try:
            await stop.wait()
            log.info("connector %s stopping", name)
        finally:
            await runtime.stop()
        log.info("connector %s stopped: %s", name, {o.value: n for o, n in runtime.outcomes.items()})
    finally:
        await connector.aclose()
        await redis.aclose()
        await database.close()
