"""Shared fixtures: each test gets its own namespace on the real RabbitMQ and Redis, cleaned after."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import aio_pika
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from litestar import Litestar
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.auth import KeyStore
from gateway.broker import events_exchange_name, unrouted_name
from gateway.database import open_pool, upgrade
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT, Settings
from tests.support.database import new_database
from tests.support.waiting import wait_until

#: Encrypts partners' webhook secrets in tests (RGW_SECRETS_KEY); made for the tests, used nowhere else.
SECRETS_KEY = "c2VjcmV0cy1rZXktZm9yLXRoZS10ZXN0cy1vbmx5LTA="
AMQP_URL = os.environ.get("RGW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("RGW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def registry() -> ContractRegistry:
    return ContractRegistry.from_folder(PROJECT_ROOT / "contracts")


@pytest.fixture(scope="session", autouse=True)
def database_url() -> Iterator[str]:
    """This run's own database, at the head revision, dropped at the end. The processes the
    tests start find it too (``RGW_DATABASE_URL``); tests tell their rows apart by their own
    partners and ids, as they tell Redis keys apart by namespace."""
    with new_database() as url:
        upgrade(url)
        saved = os.environ.get("RGW_DATABASE_URL")
        os.environ["RGW_DATABASE_URL"] = url
        try:
            yield url
        finally:
            if saved is None:
                os.environ.pop("RGW_DATABASE_URL", None)
            else:
                os.environ["RGW_DATABASE_URL"] = saved


@pytest.fixture
def namespace() -> str:
    return f"test{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(namespace: str, database_url: str) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        redis_url=REDIS_URL,
        database_url=database_url,
        namespace=namespace,
        publish_timeout_seconds=2.0,
        auth_cache_seconds=0.0,
        retry_after_seconds=1,
        secrets_key=SECRETS_KEY,
    )


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"*{settings.namespace}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    """A small pool on this run's database (``settings.database``) for the test's own stores."""
    pool = await open_pool(settings.database, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def amqp(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    """A direct broker connection for the test; deletes the namespace's topology afterwards."""
    connection = await aio_pika.connect_robust(AMQP_URL)
    yield connection
    # A test may have restarted the broker: let the robust connection come back first.
    await wait_until(connection.connected.is_set, within=30, what="the broker connection to recover")
    channel = await connection.channel()
    for queue in [unrouted_name(settings), *[settings.amqp_name("capture", n) for n in ("events", "all")]]:
        await channel.queue_delete(queue)
    for exchange in (events_exchange_name(settings), unrouted_name(settings)):
        await channel.exchange_delete(exchange)
    await connection.close()


@dataclass
class Gateway:
    app: Litestar
    client: AsyncTestClient[Litestar]
    settings: Settings


@pytest.fixture
async def gateway(
    settings: Settings, registry: ContractRegistry, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> AsyncIterator[Gateway]:
    app = create_app(settings, registry)
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(app, client, settings)


KeyFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_key(database: AsyncConnectionPool, settings: Settings) -> KeyFactory:
    """Issue an API key straight into this run's database (the partner is recorded on its
    first key; a later key's ``rate_limit`` sets the partner's)."""

    async def issue(
        partner: str = "acme",
        scopes: tuple[str, ...] = ("returns:write", "returns:read"),
        rate_limit: int = 1000,
    ) -> str:
        issued = await KeyStore(database, settings).create(partner, list(scopes), rate_limit=rate_limit)
        return issued.secret

    return issue
