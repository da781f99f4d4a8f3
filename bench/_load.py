"""A closed-loop load generator: a fixed number of requests in flight, for a fixed time.

One asyncio process keeps the client's own CPU use small on a 2-core machine; each of
``concurrency`` tasks sends its next request as soon as the previous one answers, so
throughput and latency are both the server's.

Each task has its own single-connection ``httpx.AsyncClient``: one client with a shared
pool of 32 connections spends most of its CPU in httpcore's pool bookkeeping, which scans
every connection on each request (encode/httpx#3215, encode/httpcore#1035), and at ~400
requests/s that made the load generator, not the server, the bottleneck.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

ACCEPTED = 202
_SAMPLE_CHARS = 1_000

RequestFactory = Callable[[], tuple[dict[str, str], bytes]]
"""Returns the per-request headers and body of the next request."""


@dataclass
class LoadResult:
    """What one load run observed."""

    statuses: Counter[str] = field(default_factory=Counter)
    """Responses by status code, plus transport errors by exception name."""
    accepted_ms: list[float] = field(default_factory=list)
    """Latency of every 202, in milliseconds."""
    samples: dict[str, str] = field(default_factory=dict)
    """The first body seen for each non-202 outcome, to tell what went wrong."""
    elapsed: float = 0.0
    client_cpu: float = 0.0
    """CPU seconds the load generator used; near ``elapsed`` means the client was the limit."""

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def accepted(self) -> int:
        return self.statuses[str(ACCEPTED)]

    @property
    def not_accepted(self) -> dict[str, int]:
        return {k: n for k, n in sorted(self.statuses.items()) if k != str(ACCEPTED)}

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu / self.elapsed if self.elapsed else 0.0

    def record(self, outcome: str, latency_ms: float, body: str) -> None:
        self.statuses[outcome] += 1
        if outcome == str(ACCEPTED):
            self.accepted_ms.append(latency_ms)
        elif outcome not in self.samples:
            self.samples[outcome] = body[:_SAMPLE_CHARS]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a latency some request actually had, no interpolation."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def _send(
    client: httpx.AsyncClient, path: str, next_request: RequestFactory, result: LoadResult
) -> None:
    headers, body = next_request()
    started = time.perf_counter()
    try:
        response = await client.post(path, content=body, headers=headers)
    except httpx.HTTPError as exc:
        result.record(type(exc).__name__, 0.0, repr(exc))
        return
    result.record(str(response.status_code), (time.perf_counter() - started) * 1_000, response.text)


async def run_load(
    clients: Sequence[httpx.AsyncClient], path: str, next_request: RequestFactory, *, duration: float
) -> LoadResult:
    """Keep one request in flight per client until ``duration`` has passed.

    No request starts after the deadline, but those in flight are awaited and counted, and
    the rate is computed over the time until the last one answered.
    """
    result = LoadResult()
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + duration

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            await _send(client, path, next_request, result)

    await asyncio.gather(*(worker(client) for client in clients))
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - cpu_started
    return result
