"""Intake benchmark: accepted returns per second through the gateway, against the floor.

The gateway authenticates, rate-limits, validates against ``return-request`` v1, claims
an idempotency key in Redis, publishes with confirms and records the return. The floor
(``bench.floor_app``) only decodes and publishes the same way. Both are loaded alike and
one after the other, so ``gateway ÷ floor`` is the share of raw publish throughput that
survives the governance work.

On a shared 2-core machine the speed of the whole box drifts by tens of percent from
minute to minute, so a single pair of runs says little; ``--rounds N`` alternates the two
targets N times and reports the median of the N ratios, each taken between neighbours.

Run from the project root: ``.venv/bin/python -m bench.intake --duration 10 --rounds 9``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import signal
import statistics
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from bench._cpu import CpuMeter, CpuSeconds
from bench._load import LoadResult, percentile, run_load
from bench._server import GATEWAY, TARGETS, RunningServer, Target, purge_namespace, running_server
from gateway.auth import KeyStore, Scope
from gateway.database import open_pool
from gateway.settings import PROJECT_ROOT, Settings

DESCRIPTION = "Accepted returns per second through the gateway, against the floor."
EXAMPLES_DIR = PROJECT_ROOT / "contracts" / "return-request" / "v1" / "examples" / "valid"
WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 30.0
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
"""Per client: each load task owns one client and one keep-alive connection (see bench._load)."""
PARTNER = "bench"
RATE_LIMIT = 1_000_000
"""Requests per second per partner: far above what 2 cores can serve, so the limiter counts
every request (its Redis cost is part of the gateway) but never throttles."""


class ReturnRequests:
    """Valid return requests, each with a fresh ``external_id`` and ``Idempotency-Key``.

    The gateway refuses a second return with the same external id (409) and replays a
    repeated key, so reusing either would benchmark a different path.
    """

    def __init__(self, run_id: str) -> None:
        paths = sorted(EXAMPLES_DIR.glob("*.json"))
        if not paths:
            raise RuntimeError(f"no example documents in {EXAMPLES_DIR}")
        self._templates: list[dict[str, Any]] = [msgspec.json.decode(p.read_bytes()) for p in paths]
        self._run_id = run_id
        self._counter = itertools.count()

    def next(self) -> tuple[dict[str, str], bytes]:
        """Headers and body of the next request, cycling through the contract's valid examples."""
        n = next(self._counter)
        document = {**self._templates[n % len(self._templates)], "external_id": f"BENCH-{self._run_id}-{n}"}
        return {"Idempotency-Key": f"bench-{self._run_id}-{n}"}, msgspec.json.encode(document)


async def create_key(settings: Settings) -> str:
    """A partner key in the bench namespace, with a limit that is enforced but never reached."""
    database = await open_pool(settings.database, max_size=1)
    try:
        scopes = [Scope.RETURNS_WRITE.value, Scope.RETURNS_READ.value]
        issued = await KeyStore(database, settings).create(
            PARTNER, scopes, rate_limit=RATE_LIMIT, label="bench"
        )
    finally:
        await database.close()
    return issued.secret


async def client_headers(target: Target, settings: Settings) -> dict[str, str]:
    """Headers on every request; the floor gets a dummy key so both cost the client the same."""
    secret = await create_key(settings) if target is GATEWAY else "floor-checks-no-key"
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Measured:
    """One target's measured period: what the clients saw and what each party's CPU did."""

    load: LoadResult
    cpu: CpuSeconds

    def cpu_ms_per_accepted(self) -> dict[str, float]:
        """CPU milliseconds per accepted return, by party (RabbitMQ only when it runs here)."""
        if not self.load.accepted:
            return {}
        used = {"load generator": self.load.client_cpu, "server": self.cpu.server, "redis": self.cpu.redis}
        if self.cpu.rabbitmq is not None:
            used["rabbitmq"] = self.cpu.rabbitmq
        return {party: 1_000 * seconds / self.load.accepted for party, seconds in used.items()}


async def measure(
    server: RunningServer,
    target: Target,
    headers: dict[str, str],
    requests: ReturnRequests,
    args: argparse.Namespace,
    settings: Settings,
) -> Measured:
    """Warm up (connections, caches, the broker channel) without counting, then measure."""
    base_url = server.base_url
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=base_url, headers=headers, limits=ONE_CONNECTION, timeout=REQUEST_TIMEOUT_SECONDS
                )
            )
            for _ in range(args.concurrency)
        ]
        await run_load(clients, target.post_path, requests.next, duration=WARMUP_SECONDS)
        meter = CpuMeter(server.pid, settings.redis_url)
        before = await meter.snapshot()
        load = await run_load(clients, target.post_path, requests.next, duration=args.duration)
        return Measured(load, (await meter.snapshot()).since(before))


async def bench_target(target: Target, args: argparse.Namespace, run_id: str) -> Measured:
    """Start ``target`` in a fresh namespace, load it, then remove everything it left behind."""
    settings = Settings.from_env(namespace=f"bench{run_id}{target.name}", default_rate_limit=RATE_LIMIT)
    try:
        headers = await client_headers(target, settings)
        async with running_server(target, settings, workers=args.workers) as server:
            return await measure(server, target, headers, ReturnRequests(settings.namespace), args, settings)
    finally:
        await purge_namespace(settings)


def report(measured: Measured) -> None:
    """Print one target's figures; the first body of each non-202 outcome tells why."""
    result = measured.load
    not_accepted = result.not_accepted
    print(f"requests sent      {result.sent}")
    print(f"accepted (202)     {result.accepted}")
    print(f"non-202            {', '.join(f'{k}: {n}' for k, n in not_accepted.items()) or 'none'}")
    print(f"accepted/s         {result.accepted_per_second:.1f}")
    if result.accepted_ms:
        p50, p90, p99 = (percentile(result.accepted_ms, p) for p in (50, 90, 99))
        print(f"latency ms (202)   p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}")
    print(f"load generator CPU {result.client_cpu_share:.0%} of one core")
    per_request = measured.cpu_ms_per_accepted()
    if per_request:
        print("CPU ms per 202     " + "  ".join(f"{party} {ms:.2f}" for party, ms in per_request.items()))
    for outcome, body in result.samples.items():
        print(f"sample {outcome} body: {body}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=DESCRIPTION)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per target")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at once")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes per server")
    parser.add_argument("--target", choices=[*TARGETS, "both"], default="both")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times each target is measured, alternating; the median ratio wins",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("--duration must be positive, --concurrency, --workers and --rounds at least 1")
    return args


def cancel_on_sigterm() -> None:
    """Turn SIGTERM into cancellation, as asyncio does for Ctrl-C, so the servers are still
    stopped and the bench namespaces purged by the ``finally`` blocks on the way out."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def main(args: argparse.Namespace) -> None:
    """Benchmark the chosen targets one after the other, so they never share the CPU."""
    cancel_on_sigterm()
    run_id = secrets.token_hex(4)
    names = list(TARGETS) if args.target == "both" else [args.target]
    ratios: list[float] = []
    cpu: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_number in range(1, args.rounds + 1):
        results: dict[str, Measured] = {}
        for name in names:
            target = TARGETS[name]
            print(
                f"== round {round_number}/{args.rounds}, {name}: POST {target.post_path}, "
                f"{args.workers} worker(s), concurrency {args.concurrency}, "
                f"{args.duration:g} s after {WARMUP_SECONDS:g} s warm-up",
                flush=True,
            )
            results[name] = await bench_target(target, args, f"{run_id}r{round_number}")
            report(results[name])
            cpu[name].append(results[name].cpu_ms_per_accepted())
        if len(results) == len(TARGETS) and results["floor"].load.accepted_per_second:
            ratios.append(
                results["gateway"].load.accepted_per_second / results["floor"].load.accepted_per_second
            )
            print(f"== round {round_number} gateway ÷ floor accepted/s: {ratios[-1]:.1%}", flush=True)
    if ratios:
        listed = ", ".join(f"{r:.1%}" for r in ratios)
        median = statistics.median(ratios)
        print(f"== gateway ÷ floor accepted/s, median of {len(ratios)} round(s): {median:.1%} ({listed})")
    for name, rounds in cpu.items():
        parties = rounds[0].keys() if rounds and all(rounds) else ()
        medians = "  ".join(f"{p} {statistics.median(r[p] for r in rounds):.2f}" for p in parties)
        print(f"== {name} CPU ms per 202, median of {len(rounds)} round(s): {medians or 'nothing accepted'}")


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit("interrupted: servers stopped, bench namespaces purged")
