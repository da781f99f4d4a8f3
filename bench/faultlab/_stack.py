"""The whole product as separate processes, for fault scenarios: a Redis server of its own,
the four sandboxes (threads of this process, so their records are read directly), the gateway
and one process per connector, on the shared RabbitMQ in a namespace of their own.

Wired the way the demo wires it (``gateway.demo``'s routing table, credentials and sandbox
options), so a scenario runs the same product a user meets with ``returns-gateway demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path

import httpx
import msgspec

from bench.faultlab._broker import drop_topology, ready_counts
from bench.faultlab._processes import ChildProcess, connector_process, gateway_process
from bench.faultlab._redis import RedisServer
from gateway.auth import KeyStore
from gateway.database import open_database, upgrade
from gateway.demo._stack import SYSTEMS, credentials_env, routing_table
from gateway.partners.endpoints import generate_key as generate_secrets_key
from gateway.routing import RoutingTable, connector_queue, parse_routing_table
from gateway.runtime import declare_topology
from gateway.sandbox import Sandbox, build_sandbox, free_port, running
from gateway.settings import DEFAULT_DATABASE_URL, Settings
from gateway.storage import connect_redis

PROFILES = ("netsuite", "extensiv", "easypost", "salesforce")
START_TIMEOUT_SECONDS = 120.0
"""Starting eight processes on two busy cores can take a minute."""
RATE_LIMIT = 1_000_000
"""Requests per second allowed to the partner and per webhook source: the limiter runs, never throttles."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StackOptions:
    """How to build a stack; every field has a default fit for the test suite."""

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    """The shared broker; the stack keeps to a namespace of its own on it."""
    namespace: str = ""
    """Empty: ``faults<random>``."""
    database_url: str = dataclasses.field(
        default_factory=lambda: os.environ.get("RGW_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    """The record (PostgreSQL), migrated to this code's revision as the stack starts (a no-op
    when it is); the test suite's run database when set, else the local one."""
    partner: str = ""
    """Empty: ``faults<random>``, so what one run records (returned quantities against the
    sandbox's document numbers, say) never meets another run's returns."""
    prefetch: int = 32
    """Messages each connector works on at once (the routing table's default; the demo's table
    says 8). Waits of the target's ``Retry-After`` are spent holding a message: a larger window
    keeps a connector busy meanwhile."""
    lease_seconds: float = 15.0
    """``RGW_EFFECT_LEASE_SECONDS`` of every connector (the default): renewed while its process
    lives, so it is how long a message a killed process held stays ``busy``."""
    redis_appendonly: bool = True
    """Whether the stack's Redis keeps an append-only file (so a restart keeps its data)."""
    log_dir: Path | None = None
    """Where the processes' logs go; ``None``: a temporary folder removed with the stack."""


@dataclasses.dataclass
class FaultStack:
    """A running stack; ``connectors`` and ``redis`` may be killed and started again."""

    settings: Settings
    table: RoutingTable
    sandboxes: dict[str, Sandbox]
    """By role: erp, wms, carrier, crm."""
    redis: RedisServer
    gateway: ChildProcess
    connectors: dict[str, ChildProcess]
    gateway_url: str
    api_key: str
    partner: str
    http: httpx.AsyncClient
    log_dir: Path

    async def issue_key(self) -> str:
        """A key for the partner, written to the stack's Redis (again after it lost its data)."""
        redis = connect_redis(self.settings.redis_url)
        try:
            database = await open_database(self.settings)
            try:
                issued = await KeyStore(database, self.settings).create(
                    self.partner, ["returns:write", "returns:read"], label="faults", rate_limit=RATE_LIMIT
                )
            finally:
                await database.close()
        finally:
            await redis.aclose()
        self.api_key = issued.secret
        return issued.secret

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def consuming(
        self, names: list[str] | None = None, *, within: float = START_TIMEOUT_SECONDS
    ) -> None:
        """Wait until each named connector (all by default) has a consumer on its queue again."""
        names = list(self.connectors) if names is None else names
        queues = {connector_queue(self.settings, n): n for n in names}
        deadline = time.monotonic() + within
        while True:
            counts = await ready_counts(self.settings, list(queues))
            idle = [queues[q] for q in queues if q not in counts or counts[q].consumers < 1]
            if not idle:
                return
            dead = [n for n in idle if not self.connectors[n].alive]
            if dead or time.monotonic() > deadline:
                tails = "\n".join(f"{n}:\n{self.connectors[n].log_tail()}" for n in idle)
                raise RuntimeError(f"connectors not consuming within {within:.0f} s: {idle}\n{tails}")
            await asyncio.sleep(0.1)

    async def restart_connector(self, name: str) -> None:
        """Start a killed (or stopped) connector again and wait until it consumes."""
        self.connectors[name].start()
        await self.consuming([name])


def child_env(settings: Settings, credentials: Mapping[str, str]) -> dict[str, str]:
    """What every child process reads: the settings as ``RGW_*`` variables and the credentials."""
    assert settings.routes_file is not None
    return {
        "RGW_AMQP_URL": settings.amqp_url,
        "RGW_REDIS_URL": settings.redis_url,
        "RGW_DATABASE_URL": settings.database,
        "RGW_NAMESPACE": settings.namespace,
        "RGW_ROUTES_FILE": str(settings.routes_file),
        "RGW_SECRETS_KEY": settings.secrets_key,
        "RGW_DEFAULT_RATE_LIMIT": str(RATE_LIMIT),
        "RGW_WEBHOOK_RATE_LIMIT": str(RATE_LIMIT),
        "RGW_EFFECT_LEASE_SECONDS": str(settings.effect_lease_seconds),
        **credentials,
    }


def fault_routing_table(
    urls: Mapping[str, str], sandboxes: Mapping[str, Sandbox], *, prefetch: int
) -> RoutingTable:
    """The demo's routing table (NetSuite as the ERP) with every connector's ``prefetch`` set."""
    table = parse_routing_table(routing_table(urls, sandboxes, "netsuite"))
    connectors = {
        name: msgspec.structs.replace(spec, prefetch=prefetch) for name, spec in table.connectors.items()
    }
    return msgspec.structs.replace(table, connectors=connectors)


def _sandbox(profile: str) -> Sandbox:
    sandbox = build_sandbox(profile)
    if hasattr(sandbox, "api_limit"):  # Salesforce's daily API allowance: not what a run measures
        sandbox.api_limit = 1_000_000_000
    return sandbox


async def _wait_ready(gateway: ChildProcess, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/health/ready")).status_code == 200:
                    return
            if not gateway.alive or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not become ready:\n{gateway.log_tail()}")
            await asyncio.sleep(0.1)


async def _stop_all(processes: list[ChildProcess]) -> None:
    """Stop every process at once (each gracefully, killed if it hangs)."""
    await asyncio.gather(*(p.stop() for p in processes))


@contextlib.asynccontextmanager
async def running_fault_stack(options: StackOptions | None = None) -> AsyncIterator[FaultStack]:
    """Start everything; on the way out stop it all and delete the namespace from the broker."""
    options = options or StackOptions()
    namespace = options.namespace or f"faults{uuid.uuid4().hex[:10]}"
    by_profile = {p: _sandbox(p) for p in PROFILES}
    credentials = credentials_env(by_profile)
    with ExitStack() as sync, tempfile.TemporaryDirectory(prefix="rgw-faults-") as scratch:
        folder = Path(scratch)
        log_dir = options.log_dir or folder / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        redis = RedisServer(folder / "redis", appendonly=options.redis_appendonly)
        redis.start()
        sync.callback(redis.kill)
        urls = {p: sync.enter_context(running(by_profile[p])) for p in PROFILES}
        # The sandboxes' litestar sets the root logger to INFO: one line per request is noise.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        table = fault_routing_table(urls, by_profile, prefetch=options.prefetch)
        routes = folder / "routes.yaml"
        routes.write_bytes(msgspec.yaml.encode(table))
        settings = Settings(
            amqp_url=options.amqp_url,
            redis_url=redis.url,
            database_url=options.database_url,
            namespace=namespace,
            routes_file=routes,
            secrets_key=generate_secrets_key(),
            effect_lease_seconds=options.lease_seconds,
        )
        env = child_env(settings, credentials)
        async with AsyncExitStack() as stack:
            await asyncio.to_thread(upgrade, settings.database)
            await declare_topology(settings, table)
            stack.push_async_callback(drop_topology, settings, table)
            port = free_port()
            gateway = gateway_process(port, env, log_dir)
            connectors = {name: connector_process(name, env, log_dir) for name in table.connectors}
            http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
            stack.push_async_callback(http.aclose)
            faults = FaultStack(
                settings=settings,
                table=table,
                sandboxes={SYSTEMS[p]["role"]: s for p, s in by_profile.items()},
                redis=redis,
                gateway=gateway,
                connectors=connectors,
                gateway_url=f"http://127.0.0.1:{port}",
                api_key="",
                partner=options.partner or f"faults{uuid.uuid4().hex[:10]}",
                http=http,
                log_dir=log_dir,
            )
            await faults.issue_key()
            processes = [gateway, *connectors.values()]
            stack.push_async_callback(_stop_all, processes)
            for process in processes:
                process.start()
            await _wait_ready(gateway, faults.gateway_url)
            await faults.consuming()
            yield faults
