"""CPU used by each party to a load run: the server under test, Redis and RabbitMQ.

On a shared 2-core machine throughput drifts with whatever else the host runs; CPU
seconds per accepted request drift far less, so they show what a change really costs and
where. The server is measured with its worker processes; Redis reports its own CPU
(``INFO cpu``); RabbitMQ is measured only when its Erlang VM runs on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import redis.asyncio as aioredis

RABBITMQ_PROCESS = "beam.smp"


def _tree_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and its live children, in seconds."""
    total = 0.0
    for member in (process, *process.children(recursive=True)):
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _local_rabbitmq() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == RABBITMQ_PROCESS:
            return process
    return None


async def _redis_seconds(redis: aioredis.Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass(frozen=True)
class CpuSeconds:
    """CPU seconds by party: the counters at one moment, or what was used between two."""

    server: float
    redis: float
    rabbitmq: float | None

    def since(self, earlier: CpuSeconds) -> CpuSeconds:
        """What each party used from ``earlier`` until this snapshot."""
        rabbitmq = (
            self.rabbitmq - earlier.rabbitmq
            if self.rabbitmq is not None and earlier.rabbitmq is not None
            else None
        )
        return CpuSeconds(self.server - earlier.server, self.redis - earlier.redis, rabbitmq)


class CpuMeter:
    """Snapshots of the server's, Redis's and (when local) RabbitMQ's CPU counters."""

    def __init__(self, server_pid: int, redis_url: str) -> None:
        self._server = psutil.Process(server_pid)
        self._rabbitmq = _local_rabbitmq()
        self._redis_url = redis_url

    async def snapshot(self) -> CpuSeconds:
        redis = aioredis.Redis.from_url(self._redis_url)
        try:
            redis_seconds = await _redis_seconds(redis)
        finally:
            await redis.aclose()
        rabbitmq = _tree_seconds(self._rabbitmq) if self._rabbitmq is not None else None
        return CpuSeconds(_tree_seconds(self._server), redis_seconds, rabbitmq)
