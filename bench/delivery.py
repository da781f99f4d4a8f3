"""Delivery benchmark: messages per second one connector process delivers to a fast target.

End to end: the benchmark publishes envelopes to the events exchange with confirms (as the
gateway does), the routing topology puts them on the connector's queue, and one
``returns-gateway connector run`` process takes them through the whole runtime (effect
ledger in Redis, circuit breaker, shared httpx client, ack after the effect) to the sink
target (``bench.sink``). The clock runs from the first publish until the sink holds every
message. A second round makes the sink fail 10 % of messages once (503), so those go
through a retry queue and back (the target tries each call once, ``tries: 1``, so that path
is what is measured; in-process retries, which would absorb those 503s, are ``bench.transient``'s).

Run from the project root: ``.venv/bin/python -m bench.delivery --messages 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import httpx
import msgspec

from bench._server import Target, purge_namespace, running_server, server_env
from gateway.broker import EventPublisher
from gateway.envelope import Envelope, trace_context
from gateway.routing import delete_routing_topology, parse_routing_table
from gateway.runtime import declare_topology
from gateway.settings import PROJECT_ROOT, Settings

DESCRIPTION = "Messages per second one connector process delivers, publish to target."
SINK = Target("sink", "bench.sink:create_app", "/records", ready_path="/stats")
EXAMPLE = PROJECT_ROOT / "contracts" / "return-request" / "v1" / "examples" / "valid"
WARMUP_MESSAGES = 1_000
PUBLISH_BATCH = 500
DEADLINE_SECONDS = 600.0

TABLE = """
connectors:
  sink:
    use: gateway.builtin.webhook:WebhookConnector
    target: {{base_url: "{base_url}", timeout_seconds: 10, max_connections: {connections}, tries: 1}}
    options: {{path: /records}}
    prefetch: {prefetch}
    retry_delays_ms: [100, 1000, 5000]
    circuit: {{open_seconds: 5}}
routes:
  - {{id: returns, message: return-request.v1, to: [sink]}}
"""


@dataclass
class Round:
    messages: int
    seconds: float
    publish_seconds: float
    repeats: int
    faults: int
    connector_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def envelopes(run_id: str, count: int, start: int) -> list[Envelope]:
    """Return requests in the gateway's own envelope, published as the gateway publishes them."""
    payload = msgspec.Raw(sorted(EXAMPLE.glob("*.json"))[0].read_bytes())
    now = dt.datetime.now(dt.UTC)
    return [
        Envelope(
            message_id=f"msg_{run_id}_{n}",
            correlation_id=f"ret_{run_id}_{n}",
            contract="return-request",
            version="v1",
            partner="bench",
            occurred_at=now,
            trace=trace_context(None, None),
            payload=payload,
        )
        for n in range(start, start + count)
    ]


async def publish(publisher: EventPublisher, messages: list[Envelope]) -> None:
    """Publish with confirms, a batch in flight at a time."""
    for start in range(0, len(messages), PUBLISH_BATCH):
        batch = messages[start : start + PUBLISH_BATCH]
        await asyncio.gather(*(publisher.publish(e) for e in batch))


async def wait_for_effects(sink: httpx.AsyncClient, expected: int) -> dict[str, int]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        stats: dict[str, int] = (await sink.get("/stats")).json()
        if stats["effects"] >= expected:
            return stats
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stats['effects']} of {expected} delivered in {DEADLINE_SECONDS:.0f} s")
        await asyncio.sleep(0.02)


async def run_round(args: argparse.Namespace, fault_rate: float) -> Round:
    """Sink, topology and connector process in a fresh namespace; warm up; measure; clean up."""
    run_id = secrets.token_hex(4)
    settings = Settings.from_env(namespace=f"bench{run_id}delivery")
    workdir = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    table_text = ""
    try:
        async with running_server(
            SINK, settings, workers=1, env={"BENCH_SINK_FAULT_RATE": str(fault_rate)}
        ) as sink_server:
            sink_url = sink_server.base_url
            table_text = TABLE.format(base_url=sink_url, prefetch=args.prefetch, connections=args.connections)
            routes = workdir / "routes.yaml"
            routes.write_text(table_text)
            settings = Settings.from_env(namespace=settings.namespace, routes_file=routes)
            await declare_topology(settings, parse_routing_table(table_text))
            env = {**server_env(settings), "RGW_ROUTES_FILE": str(routes)}
            connector = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "connector", "run", "sink", "--log-level", "warning",
                cwd=PROJECT_ROOT, env=env,
            )  # fmt: skip
            connection = await aio_pika.connect(settings.amqp_url)
            try:
                async with connection, httpx.AsyncClient(base_url=sink_url) as sink:
                    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                    publisher = EventPublisher(channel, settings)
                    await publish(publisher, envelopes(run_id, WARMUP_MESSAGES, 0))
                    before = await wait_for_effects(sink, WARMUP_MESSAGES)
                    measured = envelopes(run_id, args.messages, WARMUP_MESSAGES)
                    cpu_before = cpu_seconds(connector.pid)
                    started = time.perf_counter()
                    await publish(publisher, measured)
                    published = time.perf_counter()
                    after = await wait_for_effects(sink, WARMUP_MESSAGES + args.messages)
                    finished = time.perf_counter()
                    cpu = cpu_seconds(connector.pid) - cpu_before
            finally:
                connector.terminate()
                await connector.wait()
        return Round(
            messages=args.messages,
            seconds=finished - started,
            publish_seconds=published - started,
            repeats=after["repeats"],
            faults=after["faults"] - before["faults"],
            connector_cpu_seconds=cpu,
        )
    finally:
        await purge_namespace(settings)
        if table_text:
            await delete_topology(settings, table_text)


async def delete_topology(settings: Settings, table_text: str) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        await delete_routing_topology(await connection.channel(), settings, parse_routing_table(table_text))


def report(name: str, result: Round) -> None:
    print(f"== {name}")
    print(f"messages           {result.messages}")
    print(f"delivered/s        {result.per_second:.0f}  (first publish to last effect at the target)")
    print(f"published/s        {result.messages / result.publish_seconds:.0f}  (with confirms)")
    print(f"injected 503s      {result.faults}")
    print(f"repeats at target  {result.repeats}  (calls for an effect already applied)")
    print(f"connector CPU      {result.connector_cpu_seconds / result.seconds:.0%} of one core")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=DESCRIPTION)
    parser.add_argument("--messages", type=int, default=20_000, help="measured messages per round")
    parser.add_argument("--prefetch", type=int, default=32, help="messages the connector works on at once")
    parser.add_argument("--connections", type=int, default=8, help="pooled connections to the target")
    parser.add_argument("--fault-rate", type=float, default=0.10, help="share failed once in round two")
    args = parser.parse_args(argv)
    if min(args.messages, args.prefetch, args.connections) < 1 or not 0 <= args.fault_rate < 1:
        parser.error("--messages, --prefetch and --connections at least 1, --fault-rate in [0, 1)")
    return args


async def main(args: argparse.Namespace) -> None:
    print(
        f"one connector process, prefetch {args.prefetch}, {args.connections} connections to the target, "
        f"{args.messages} messages per round",
        flush=True,
    )
    report("no faults", await run_round(args, 0.0))
    report(f"{args.fault_rate:.0%} transient faults (503 once)", await run_round(args, args.fault_rate))


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        sys.exit("interrupted")
