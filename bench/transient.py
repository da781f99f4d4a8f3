"""Delivery under transient faults: the NetSuite connector, its sandbox failing 30 % of calls.

One ``returns-gateway connector run erp`` process, configured as ``routes.yaml`` ships the
``erp`` connector (its target settings, circuit, prefetch, retry tiers, attempts and delivery
limit; only the URLs point at the sandbox), delivers returns to the NetSuite sandbox, which
runs as ``returns-gateway sandbox run netsuite`` in a process of its own. Each return is two
messages: a ``return-request`` (NetSuite reads the order, invoice and shipment: six GETs,
answered as a ``return-documents`` event) and its ``return-decision`` (the RMA is created: a
POST and a GET, answered as a ``return-authorization``).

Rounds alternate: without faults, then with the sandbox answering ``--fault-rate`` of every
call, the token grant's included, with 503 or 429 (half each) and ``Retry-After: 1``. Each
round has a fresh namespace and sandbox; a first connector process warms the sandbox up and
stops, every return is published into the connector's queue, and a second connector process
drains it, the clock running from its first answer until each message is answered (or
dead-lettered). Printed per round:

* ``delivered/s``: the sustained rate, while the middle 80 % of the messages were answered
  (10 % to 90 %), and the whole batch's, first answer to last. A batch always ends
  in a tail: the unluckiest of ten thousand calls fails seven or eight times in a row, each
  time told to wait a second. The sustained rate is the connector's capacity under the
  faults; the whole batch's includes that tail, which the p99 and last times show;
* dead letters, answers published twice, RMA creates that reached NetSuite again (refused
  there as ``DUP_RCRD``), RMAs held twice, calls and faults injected, circuit openings, and
  the CPU the connector and the sandbox used.

Then each pair's ratios (faults ÷ no faults) and their medians. The issue's target: a ratio
of at least 0.5 and no dead letter for transient errors.

Run from the project root: ``.venv/bin/python -m bench.transient --returns 1000 --rounds 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from bench._server import HOST, purge_namespace, server_env
from bench.delivery import cpu_seconds
from gateway.broker import EventPublisher, events_exchange_name
from gateway.envelope import Envelope, trace_context
from gateway.registry import ContractRegistry
from gateway.routing import (
    OAuth2ClientCredentials,
    Route,
    RoutingTable,
    dead_letter_queue,
    delete_routing_topology,
    load_routing_table,
)
from gateway.runtime import declare_topology
from gateway.sandbox import free_port
from gateway.settings import PROJECT_ROOT, Settings

DESCRIPTION = "Messages per second the NetSuite connector delivers with and without 30 % transient faults."
CONNECTOR = "erp"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
RMA_PATH = "/services/rest/record/v1/returnAuthorization"
ANSWERS = ("return-documents.v1", "return-authorization.v1")
DEAD_NOTICE = "delivery-failed.v1"
MARKER = "bench.marker"
WARMUP_RETURNS = 50
PUBLISH_BATCH = 500
DEADLINE_SECONDS = 900.0
CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
REQUEST = CONTRACTS.require("return-request", "v1").valid_examples[0].payload


@dataclass
class Round:
    faults: bool
    messages: int
    settled_at: list[float]
    """Seconds from the first answer until each message was answered, in order."""
    dead: int
    answered_twice: int
    creates_repeated: int
    rmas_twice: int
    calls: int
    injected: int
    circuit_opened: int
    connector_cpu: float
    sandbox_cpu: float
    """CPU seconds each process used while the batch was drained (the connector's start included)."""

    def at(self, share: float) -> float:
        return self.settled_at[min(len(self.settled_at) - 1, int(len(self.settled_at) * share))]

    @property
    def seconds(self) -> float:
        return self.settled_at[-1]

    @property
    def sustained(self) -> float:
        """Messages per second while the middle 80 % were answered."""
        return 0.8 * self.messages / (self.at(0.9) - self.at(0.1))

    @property
    def whole(self) -> float:
        return self.messages / self.seconds


# -- what is sent ----------------------------------------------------------------------------
def shipped_table(sandbox_url: str) -> RoutingTable:
    """The ``erp`` connector as ``routes.yaml`` ships it, pointed at the sandbox, with only the
    routes that bring it return requests and decisions."""
    erp = load_routing_table(PROJECT_ROOT / "routes.yaml").connectors[CONNECTOR]
    assert erp.target is not None and isinstance(erp.target.auth, OAuth2ClientCredentials)
    auth = msgspec.structs.replace(erp.target.auth, token_url=sandbox_url + TOKEN_PATH)
    target = msgspec.structs.replace(erp.target, base_url=sandbox_url, auth=auth)
    return RoutingTable(
        connectors={CONNECTOR: msgspec.structs.replace(erp, target=target)},
        routes=[
            Route(id="requests", message="return-request.v1", to=[CONNECTOR]),
            Route(id="decisions", message="return-decision.v1", to=[CONNECTOR]),
        ],
    )


def decision(request: dict[str, Any], return_id: str) -> dict[str, Any]:
    """The lifecycle authorizing ``request`` in full."""
    return {
        "return_id": return_id,
        "external_id": request["external_id"],
        "decision": "authorized",
        "decided_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "decided_by": {"type": "system", "id": "lifecycle"},
        "rule": {"id": "auto-authorize", "version": "2026-12-01"},
        "lines": [
            {
                "line_number": line["line_number"],
                "sku": line["sku"],
                "requested_quantity": line["quantity"],
                "authorized_quantity": line["quantity"],
                "unit_of_measure": line["unit_of_measure"],
            }
            for line in request["lines"]
        ],
        "request": request,
    }


def envelopes(run_id: str, start: int, count: int) -> list[Envelope]:
    """Per return: its request, then its decision, in the gateway's envelope."""
    now = dt.datetime.now(dt.UTC)
    out: list[Envelope] = []
    for n in range(start, start + count):
        request = copy.deepcopy(REQUEST)
        request["external_id"] = f"RMA-{run_id}-{n}"
        return_id = f"ret_{uuid.uuid4().hex}"
        messages = (("return-request", request), ("return-decision", decision(request, return_id)))
        for contract, payload in messages:
            out.append(
                Envelope(
                    message_id=f"msg_{run_id}_{n}_{contract}",
                    correlation_id=return_id,
                    contract=contract,
                    version="v1",
                    partner="bench",
                    occurred_at=now,
                    trace=trace_context(None, None),
                    payload=msgspec.Raw(msgspec.json.encode(payload)),
                )
            )
    return out


async def publish(publisher: EventPublisher, messages: list[Envelope]) -> None:
    """Publish with confirms, a batch in flight at a time."""
    for start in range(0, len(messages), PUBLISH_BATCH):
        await asyncio.gather(*(publisher.publish(e) for e in messages[start : start + PUBLISH_BATCH]))


# -- what comes back -------------------------------------------------------------------------
class Answers:
    """What the connector published back (a queue bound to its answers and to the notices of
    its dead letters), counted by message id, with the time each message was settled."""

    def __init__(self) -> None:
        self.answers: collections.Counter[str] = collections.Counter()
        self.dead: set[str] = set()
        self.times: list[float] = []
        self.marker_seen = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        if message.routing_key == MARKER:
            self.marker_seen.set()
            return
        if message.routing_key == DEAD_NOTICE:
            self.dead.add(str(msgspec.json.decode(message.body)["causation_id"]))
        else:
            self.answers[str(message.message_id)] += 1
            if self.answers[str(message.message_id)] > 1:
                return
        self.times.append(time.perf_counter())

    def settled(self) -> int:
        return len(self.answers) + len(self.dead)


async def dead_letters(channel: AbstractChannel, settings: Settings) -> int:
    """Messages in the connector's dead-letter queue (the broker's own dead letters too, which
    no notice announces)."""
    queue = await channel.declare_queue(dead_letter_queue(settings, CONNECTOR), passive=True)
    return int(queue.declaration_result.message_count or 0)


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = DEADLINE_SECONDS
) -> None:
    """Poll ``condition`` until it holds, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        held = condition()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.05)


# -- one round ------------------------------------------------------------------------------
@asynccontextmanager
async def process(command: list[str], env: dict[str, str], log: Path) -> AsyncIterator[int]:
    """Run ``command`` (its output in ``log``), yield its pid; SIGTERM (then kill) on exit."""
    with log.open("wb") as out:
        child = await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
        )
        try:
            yield child.pid
        finally:
            if child.returncode is None:
                child.terminate()
                try:
                    await asyncio.wait_for(child.wait(), 20)
                except TimeoutError:
                    child.kill()
                    await child.wait()


async def _listening(sandbox: httpx.AsyncClient) -> bool:
    try:
        return (await sandbox.get("/_sandbox/faults")).status_code == 200
    except httpx.TransportError:
        return False


async def run_round(args: argparse.Namespace, with_faults: bool, workdir: Path) -> Round:
    """A fresh namespace, sandbox and connector; warm up; publish every return; wait for all."""
    run_id = secrets.token_hex(4)
    port = free_port()
    table = shipped_table(f"http://{HOST}:{port}")
    routes = workdir / f"routes-{run_id}.yaml"
    routes.write_bytes(msgspec.yaml.encode(table))
    settings = Settings.from_env(namespace=f"bench{run_id}transient", routes_file=routes)
    env = {
        **server_env(settings),
        "RGW_ROUTES_FILE": str(routes),
        "RGW_ERP_CLIENT_ID": "sandbox-client",
        "RGW_ERP_CLIENT_SECRET": "sandbox-secret",
    }
    cli = [sys.executable, "-m", "gateway.cli"]
    sandbox_command = [*cli, "sandbox", "run", "netsuite", "--port", str(port)]
    connector_command = [*cli, "connector", "run", CONNECTOR, "--log-level", "warning"]
    connector_log = workdir / f"connector-{run_id}.log"
    try:
        await declare_topology(settings, table)
        connection = await aio_pika.connect(settings.amqp_url)
        async with (
            connection,
            process(sandbox_command, env, workdir / f"sandbox-{run_id}.log") as sandbox_pid,
            httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=60) as sandbox,
        ):
            await wait_for(lambda: _listening(sandbox), "the sandbox to start", within=30)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            events = await channel.get_exchange(events_exchange_name(settings))
            answers = Answers()
            queue = await channel.declare_queue(exclusive=True)
            for key in (*ANSWERS, DEAD_NOTICE, MARKER):
                await queue.bind(events, key)
            await queue.consume(answers.on_message)
            publisher = EventPublisher(channel, settings)

            async def all_settled(expected: int) -> bool:
                if answers.settled() >= expected:
                    return True
                return len(answers.answers) + await dead_letters(channel, settings) >= expected

            async with process(connector_command, env, connector_log):  # warms up the sandbox
                warmup = envelopes(run_id, 0, WARMUP_RETURNS)
                await publish(publisher, warmup)
                await wait_for(lambda: all_settled(len(warmup)), "the warm-up")
            warm_calls = len((await sandbox.get("/_sandbox/requests")).json())
            # The whole batch waits in the queue, then a connector process drains it: the
            # publisher does not compete with it for the CPU while it is measured.
            measured = envelopes(run_id, WARMUP_RETURNS, args.returns)
            await publish(publisher, measured)
            if with_faults:
                faults = [
                    {"status": status, "retry_after": "1", "rate": args.fault_rate / 2}
                    for status in (503, 429)
                ]
                (await sandbox.post("/_sandbox/faults", json=faults)).raise_for_status()
            async with process(connector_command, env, connector_log) as connector_pid:
                cpu = cpu_seconds(connector_pid), cpu_seconds(sandbox_pid)
                await wait_for(lambda: all_settled(len(warmup) + len(measured)), "the measured messages")
                connector_cpu = cpu_seconds(connector_pid) - cpu[0]
                sandbox_cpu = cpu_seconds(sandbox_pid) - cpu[1]
                times = answers.times[len(warmup) :]
                settled_at = [t - times[0] for t in times]
                await sandbox.delete("/_sandbox/faults")
                # A marker last: the queue is FIFO, so an answer published twice is in before it.
                await events.publish(aio_pika.Message(b"{}"), routing_key=MARKER)
                await wait_for(answers.marker_seen.is_set, "the marker", within=60)
            seen = (await sandbox.get("/_sandbox/requests")).json()[warm_calls:]
            rmas = (await sandbox.get("/_sandbox/records")).json().get("returnAuthorization", [])
            dead = max(await dead_letters(channel, settings), len(answers.dead))
    finally:
        await purge_namespace(settings)
        await _delete_topology(settings, table)
    creates = collections.Counter(
        s["idempotency"] for s in seen if (s["method"], s["path"], s["status"]) == ("POST", RMA_PATH, 0)
    )
    return Round(
        faults=with_faults,
        messages=len(measured),
        settled_at=settled_at,
        dead=dead,
        answered_twice=sum(n - 1 for n in answers.answers.values()),
        creates_repeated=sum(n - 1 for n in creates.values()),
        rmas_twice=sum(n - 1 for n in collections.Counter(r["externalId"] for r in rmas).values()),
        calls=len(seen),
        injected=sum(1 for s in seen if s["status"] in (429, 503)),
        circuit_opened=connector_log.read_text(errors="replace").count("circuit open"),
        connector_cpu=connector_cpu,
        sandbox_cpu=sandbox_cpu,
    )


async def _delete_topology(settings: Settings, table: RoutingTable) -> None:
    with suppress(Exception):
        connection = await aio_pika.connect(settings.amqp_url)
        async with connection:
            await delete_routing_topology(await connection.channel(), settings, table)


# -- the report -----------------------------------------------------------------------------
def report(result: Round, fault_rate: float) -> None:
    name = f"{fault_rate:.0%} of calls 503/429, Retry-After: 1" if result.faults else "no faults"
    print(f"== {name}")
    print(f"messages              {result.messages}  ({result.messages // 2} returns: request + decision)")
    print(f"delivered/s           {result.sustained:.0f} sustained (10-90 %), {result.whole:.0f} whole batch")
    print(
        f"answered after        p50 {result.at(0.5):.1f} s, p99 {result.at(0.99):.1f} s, "
        f"last {result.seconds:.1f} s  (from the first answer)"
    )
    print(f"dead letters          {result.dead}")
    print(f"answers twice         {result.answered_twice}  (the same event published again)")
    print(f"RMA creates repeated  {result.creates_repeated}  (reached NetSuite again, refused as DUP_RCRD)")
    print(f"RMAs held twice       {result.rmas_twice}")
    print(f"calls at NetSuite     {result.calls}  ({result.injected} answered 503/429 on purpose)")
    print(f"circuit opened        {result.circuit_opened}")
    print(
        f"CPU                   connector {result.connector_cpu / result.seconds:.0%}, "
        f"sandbox {result.sandbox_cpu / result.seconds:.0%} of a core",
        flush=True,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.transient", description=DESCRIPTION)
    parser.add_argument("--returns", type=int, default=1_000, help="returns per round (two messages each)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of rounds: no faults, then faults")
    parser.add_argument("--fault-rate", type=float, default=0.30, help="share of calls failed with faults")
    args = parser.parse_args(argv)
    if args.returns < 1 or args.rounds < 1 or not 0 <= args.fault_rate <= 1:
        parser.error("--returns and --rounds at least 1, --fault-rate in [0, 1]")
    return args


async def main(args: argparse.Namespace) -> None:
    erp = shipped_table("http://sandbox").connectors[CONNECTOR]
    assert erp.target is not None
    print(
        f"NetSuite connector as routes.yaml ships it: prefetch {erp.prefetch}, "
        f"{erp.target.max_connections} connections, {erp.target.tries} tries per call, "
        f"circuit {msgspec.to_builtins(erp.circuit)}, retry tiers {erp.retry_delays_ms} ms, "
        f"max_attempts {erp.max_attempts}; {args.returns} returns per round",
        flush=True,
    )
    sustained, whole = [], []
    with tempfile.TemporaryDirectory(prefix="bench-transient-") as tmp:
        for pair in range(args.rounds):
            clean = await run_round(args, False, Path(tmp))
            report(clean, args.fault_rate)
            faulty = await run_round(args, True, Path(tmp))
            report(faulty, args.fault_rate)
            sustained.append(faulty.sustained / clean.sustained)
            whole.append(faulty.whole / clean.whole)
            print(
                f"-- pair {pair + 1}: faults ÷ no faults {sustained[-1]:.2f} sustained, "
                f"{whole[-1]:.2f} whole batch",
                flush=True,
            )
    print(
        f"== ratio, median of {len(sustained)} pairs: {statistics.median(sustained):.2f} sustained, "
        f"{statistics.median(whole):.2f} whole batch  (target ≥ 0.5, and no dead letter)"
    )


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        sys.exit("interrupted")
