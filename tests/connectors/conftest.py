"""Connector fixtures: a sandbox target, a routing table naming it, a gateway routing by it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.database import open_pool
from gateway.registry import ContractRegistry
from gateway.routing import parse_routing_table
from gateway.runtime import ConnectorRuntime, build_connector
from gateway.settings import Settings
from gateway.worker import connector_runtime
from tests.conftest import KeyFactory
from tests.support.broker import delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.sandbox import SandboxState, running_sandbox

TABLE = """
connectors:
  records:
    use: gateway.builtin.webhook:WebhookConnector
    target: {{base_url: "{base_url}", timeout_seconds: 30}}
    options: {{path: /records}}
    prefetch: 16
    retry_delays_ms: [200, 500, 1000]
routes:
  - {{id: requests, message: return-request.v1, to: [records]}}
"""


@dataclass
class RoutedGateway:
    client: AsyncTestClient  # type: ignore[type-arg]
    sandbox: SandboxState
    settings: Settings
    """The test's settings with ``routes_file`` set."""
    table: str


@asynccontextmanager
async def routed_gateway(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    amqp: AbstractRobustConnection,
    table: str,
    **fields: object,
) -> AsyncIterator[RoutedGateway]:
    """A sandbox target, ``table`` filled in with its ``base_url`` (and ``fields``), and a
    gateway routing by that table; the table's topology is deleted afterwards."""
    with running_sandbox() as (base_url, sandbox):
        text = table.format(base_url=base_url, **fields)
        path = tmp_path / "routes.yaml"
        path.write_text(text)
        routed = dataclasses.replace(settings, routes_file=path)
        try:
            async with AsyncTestClient(create_app(routed, registry)) as client:
                yield RoutedGateway(client, sandbox, routed, text)
        finally:
            await delete_routing_topology(amqp, settings, text)


@asynccontextmanager
async def running_connector(
    routed: RoutedGateway, name: str, redis: aioredis.Redis, database: AsyncConnectionPool | None = None
) -> AsyncIterator[ConnectorRuntime]:
    """Connector ``name`` of the routed gateway's table, built and run as ``connector run`` does
    (with a pool on the test run's database lent to it)."""
    spec = parse_routing_table(routed.table).connectors[name]
    connector = build_connector(name, spec)
    own = database is None
    if database is None:
        database = await open_pool(routed.settings.database, max_size=2)
    runtime = connector_runtime(
        connector, settings=routed.settings, spec=spec, redis=redis, database=database
    )
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        await connector.aclose()
        if own:
            await database.close()


@dataclass
class Setup:
    client: AsyncTestClient  # type: ignore[type-arg]
    sandbox: SandboxState
    key: str
    env: dict[str, str]
    settings: Settings

    async def submit(self, idempotency_key: str | None = None) -> int:
        response = await self.client.post(
            "/v1/returns", json=return_request(), headers=headers(self.key, idempotency_key)
        )
        return response.status_code


@pytest.fixture
async def setup(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Setup]:
    async with routed_gateway(tmp_path, settings, registry, amqp, TABLE) as routed:
        env = {
            "RGW_AMQP_URL": settings.amqp_url,
            "RGW_REDIS_URL": settings.redis_url,
            "RGW_NAMESPACE": settings.namespace,
            "RGW_ROUTES_FILE": str(routed.settings.routes_file),
            "RGW_EFFECT_LEASE_SECONDS": "2",
        }
        yield Setup(routed.client, routed.sandbox, await make_key(), env, routed.settings)
