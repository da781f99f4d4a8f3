"""Servers under test: each runs as its own uvicorn process, in its own namespace, cleaned after.

A separate process keeps the load generator's CPU out of the server's event loop, and a
throw-away namespace keeps the run's keys, exchanges and queues apart from any other data.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aio_pika
import httpx
import redis.asyncio as aioredis

from gateway.broker import events_exchange_name, unrouted_name
from gateway.database import upgrade
from gateway.sandbox import free_port
from gateway.settings import PROJECT_ROOT, Settings

HOST = "127.0.0.1"
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
_LOG_TAIL_CHARS = 4_000


@dataclass(frozen=True)
class Target:
    """An app to benchmark: how uvicorn builds it, where to post, and how to tell it is ready."""

    name: str
    factory: str
    post_path: str
    ready_path: str = "/health/ready"


GATEWAY = Target("gateway", "gateway.api.app:create_app", "/v1/returns")
FLOOR = Target("floor", "bench.floor_app:create_app", "/floor")
TARGETS = {t.name: t for t in (GATEWAY, FLOOR)}


def server_env(settings: Settings) -> dict[str, str]:
    """The child's environment: ours, with the settings that matter spelled as ``RGW_*``; the
    database is migrated to this code's revision first (a no-op when it is)."""
    upgrade(settings.database)
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "RGW_AMQP_URL": settings.amqp_url,
        "RGW_REDIS_URL": settings.redis_url,
        "RGW_DATABASE_URL": settings.database,
        "RGW_NAMESPACE": settings.namespace,
        "RGW_DEFAULT_RATE_LIMIT": str(settings.default_rate_limit),
    }


def _open_log(name: str) -> IO[bytes]:
    """A temporary file for the server's output: read back only if it fails to start."""
    return tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)


def _log_tail(path: str) -> str:
    return Path(path).read_text(errors="replace")[-_LOG_TAIL_CHARS:]


async def _wait_ready(process: asyncio.subprocess.Process, url: str, log_path: str) -> None:
    """Poll the ready probe until it answers 200; fail fast if the server exits."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as client:
        while loop.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{_log_tail(log_path)}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{_log_tail(log_path)}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM lets uvicorn shut down gracefully (and stop its workers); kill only if it hangs."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


@dataclass(frozen=True)
class RunningServer:
    """Where a started server answers, and its process (its workers are its children)."""

    base_url: str
    pid: int


@asynccontextmanager
async def running_server(
    target: Target, settings: Settings, *, workers: int, env: Mapping[str, str] | None = None
) -> AsyncIterator[RunningServer]:
    """Start ``target`` under uvicorn, yield it once ready, stop it on exit."""
    port = free_port()
    log = _open_log(target.name)
    command = [
        sys.executable, "-m", "uvicorn", "--factory", target.factory,
        "--host", HOST, "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, cwd=PROJECT_ROOT, env={**server_env(settings), **(env or {})}, stdout=log, stderr=log
    )
    base_url = f"http://{HOST}:{port}"
    try:
        await _wait_ready(process, base_url + target.ready_path, log.name)
        yield RunningServer(base_url, process.pid)
    finally:
        await _stop(process)
        log.close()
        os.unlink(log.name)


async def purge_namespace(settings: Settings) -> None:
    """Delete every Redis key and the broker topology of a benchmark namespace."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"*{settings.namespace}*", count=1_000)]
        for start in range(0, len(keys), 1_000):
            await redis.delete(*keys[start : start + 1_000])
    finally:
        await redis.aclose()
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(unrouted_name(settings))
        for exchange in (events_exchange_name(settings), unrouted_name(settings)):
            await channel.exchange_delete(exchange)
