"""Hostile bodies against normal traffic: does one abusive client hurt everyone else?

One gateway process (as ``bench.intake`` starts it). ``wrk`` loads it with valid return
requests (a Lua script gives each a fresh ``Idempotency-Key`` and ``external_id``), in rounds
that alternate: *quiet* (wrk alone) and *hostile* (wrk, plus one client sending 1 MB return
requests of ~333,000 empty lines back to back). In every round a probe asks ``GET
/health/live`` every 10 ms. At the end, after at least 100 hostile requests, the server's
resident memory is read.

Figures: accepted returns/s in each round and the drop from quiet to hostile (median over
the pairs of neighbouring rounds), the gateway's CPU per accepted return (steadier than
throughput on a shared machine; in hostile rounds it includes the hostile bodies), the
liveness p50/p99 in each kind of round, the hostile requests' answers, and RSS before and
after. Targets: liveness p99 under 100 ms during the
hostile load, accepted/s dropping less than 20 %, RSS under 400 MB.

Run from the project root (``wrk`` on the PATH: ``apt-get install -y wrk``):
``.venv/bin/python -m bench.hostile --rounds 3 --duration 8``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import psutil

from bench._load import percentile
from bench._server import GATEWAY, RunningServer, purge_namespace, running_server
from bench.intake import EXAMPLES_DIR, RATE_LIMIT, cancel_on_sigterm, create_key
from gateway.settings import Settings

DESCRIPTION = "Normal traffic and liveness while one client sends hostile 1 MB bodies."
HOSTILE_BYTES = 1_000_000
PROBE_INTERVAL_SECONDS = 0.01
WARMUP_SECONDS = 5.0
RSS_AFTER_HOSTILE = 100
TARGETS = {"health p99 ms": 100.0, "accepted/s drop %": 20.0, "RSS MB": 400.0}
_PLACEHOLDER = "@@EXTERNAL_ID@@"

# wrk runs this in each of its threads: every request a new external id and idempotency key,
# cycling through the contract's valid examples; it counts the 202s and the rest.
_LUA = """
local run = "{run}"
local auth = "{auth}"
local templates = {{ {templates} }}
local threads = {{}}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  sent, accepted, other = 0, 0, 0
end

function request()
  sent = sent + 1
  local template = templates[(sent % #templates) + 1]
  local id = run .. "-" .. tid .. "-" .. sent
  return wrk.format("POST", "/v1/returns", {{
    ["Authorization"] = auth,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "k-" .. id,
  }}, template[1] .. id .. template[2])
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    o = o + thread:get("other")
  end
  io.write(string.format("RESULT accepted=%d other=%d duration_us=%d p99_us=%d\\n",
    a, o, summary.duration, latency:percentile(99)))
end
"""
_RESULT = re.compile(r"RESULT accepted=(\d+) other=(\d+) duration_us=(\d+) p99_us=(\d+)")


def wrk_script(run_id: str, secret: str) -> str:
    """The Lua script, with the valid examples split around their external id."""
    templates = []
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        document = {**msgspec.json.decode(path.read_bytes()), "external_id": _PLACEHOLDER}
        before, after = msgspec.json.encode(document).decode().split(_PLACEHOLDER)
        templates.append(f"{{[==[{before}]==], [==[{after}]==]}}")
    return _LUA.format(run=run_id, auth=f"Bearer {secret}", templates=", ".join(templates))


def hostile_body() -> bytes:
    """A return request of empty lines only, just under ``HOSTILE_BYTES``."""
    lines = (HOSTILE_BYTES - len(b'{"lines":[]}') + 1) // 3
    return b'{"lines":[' + b",".join([b"{}"] * lines) + b"]}"


@dataclass
class Round:
    kind: str
    accepted: int = 0
    other: int = 0
    seconds: float = 0.0
    wrk_p99_ms: float = 0.0
    probes_ms: list[float] = field(default_factory=list)
    probe_failures: int = 0
    server_cpu: float = 0.0
    """CPU seconds the gateway process used during the round."""
    hostile_sent: int = 0

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_accepted(self) -> float:
        return 1_000 * self.server_cpu / self.accepted if self.accepted else 0.0


@dataclass
class Hostile:
    """What the hostile client saw."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    largest_answer: int = 0
    sample: str = ""

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


async def send_hostile(client: httpx.AsyncClient, body: bytes, secret: str, seen: Hostile) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(
            "/v1/returns",
            content=body,
            headers={
                "Authorization": f"Bearer {secret}",
                "Content-Type": "application/json",
                "Idempotency-Key": secrets.token_hex(8),
            },
        )
    except httpx.HTTPError as exc:
        seen.statuses[type(exc).__name__] += 1
        return
    seen.latencies_ms.append((time.perf_counter() - started) * 1_000)
    seen.statuses[str(response.status_code)] += 1
    seen.largest_answer = max(seen.largest_answer, len(response.content))
    seen.sample = seen.sample or response.text[:300]


async def hostile_loop(base_url: str, secret: str, seen: Hostile, stop: asyncio.Event) -> None:
    body = hostile_body()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        while not stop.is_set():
            await send_hostile(client, body, secret, seen)


async def probe_loop(base_url: str, into: Round, stop: asyncio.Event) -> None:
    """``GET /health/live`` every 10 ms; a probe slower than 5 s counts as failed."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await client.get("/health/live")
                if answer.status_code != 200:
                    into.probe_failures += 1
            except httpx.HTTPError:
                into.probe_failures += 1
            into.probes_ms.append((time.perf_counter() - started) * 1_000)
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)


async def run_wrk(
    base_url: str, script: Path, args: argparse.Namespace, duration: float
) -> tuple[int, int, float, float]:
    """wrk's accepted and other answers, the seconds it ran and its p99 in milliseconds."""
    process = await asyncio.create_subprocess_exec(
        args.wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration:g}s",
        "--timeout", "10s", "-s", str(script), base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode(errors="replace")
    found = _RESULT.search(output)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    accepted, other, duration_us, p99_us = (int(g) for g in found.groups())
    return accepted, other, duration_us / 1e6, p99_us / 1e3


async def measure_round(
    kind: str, server: RunningServer, script: Path, secret: str, seen: Hostile, args: argparse.Namespace
) -> Round:
    result = Round(kind)
    stop = asyncio.Event()
    helpers = [asyncio.create_task(probe_loop(server.base_url, result, stop))]
    if kind == "hostile":
        helpers.append(asyncio.create_task(hostile_loop(server.base_url, secret, seen, stop)))
    cpu_before, hostile_before = cpu_seconds(server.pid), seen.sent
    try:
        result.accepted, result.other, result.seconds, result.wrk_p99_ms = await run_wrk(
            server.base_url, script, args, args.duration
        )
        result.server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        stop.set()
        await asyncio.gather(*helpers)
    result.hostile_sent = seen.sent - hostile_before
    return result


def cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in (process, *process.children(recursive=True)))


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True))) / 2**20


def report_round(number: int, result: Round) -> None:
    probes = result.probes_ms
    print(
        f"round {number} {result.kind:7}  accepted/s {result.accepted_per_second:7.1f}  "
        f"(202: {result.accepted}, other: {result.other}, wrk p99 {result.wrk_p99_ms:.0f} ms, "
        f"server CPU {result.server_cpu / result.seconds:.0%}, {result.cpu_ms_per_accepted:.2f} ms per 202)  "
        f"health p50 {percentile(probes, 50):.1f} ms  p99 {percentile(probes, 99):.1f} ms  "
        f"max {max(probes):.1f} ms  ({len(probes)} probes, {result.probe_failures} failed)"
        + (f"  {result.hostile_sent} hostile requests" if result.kind == "hostile" else ""),
        flush=True,
    )


def summarize(rounds: list[Round], seen: Hostile, rss_before: float, rss_after: float) -> None:
    quiet = [r for r in rounds if r.kind == "quiet"]
    hostile = [r for r in rounds if r.kind == "hostile"]
    drops = [
        100 * (1 - h.accepted_per_second / q.accepted_per_second) for q, h in zip(quiet, hostile, strict=True)
    ]
    health = {
        kind: [ms for r in rounds if r.kind == kind for ms in r.probes_ms] for kind in ("quiet", "hostile")
    }
    figures = {
        "health p99 ms": percentile(health["hostile"], 99),
        "accepted/s drop %": statistics.median(drops),
        "RSS MB": rss_after,
    }
    print("== summary")
    for kind in ("quiet", "hostile"):
        rates = [r.accepted_per_second for r in rounds if r.kind == kind]
        listed = ", ".join(f"{r:.1f}" for r in rates)
        cpu = statistics.median(r.cpu_ms_per_accepted for r in rounds if r.kind == kind)
        print(
            f"{kind:7}  accepted/s median {statistics.median(rates):.1f} ({listed})  "
            f"server CPU ms per 202 {cpu:.2f}  "
            f"health p50 {percentile(health[kind], 50):.1f} ms  p99 {percentile(health[kind], 99):.1f} ms  "
            f"max {max(health[kind]):.1f} ms"
        )
    print(f"accepted/s drop, quiet to hostile, per pair: {', '.join(f'{d:.1f} %' for d in drops)}")
    statuses = ", ".join(f"{k}: {n}" for k, n in sorted(seen.statuses.items()))
    print(
        f"hostile requests {seen.sent} ({statuses}), {len(hostile_body()):,} bytes each; answer p50 "
        f"{percentile(seen.latencies_ms, 50):.0f} ms, p99 {percentile(seen.latencies_ms, 99):.0f} ms, "
        f"largest answer {seen.largest_answer:,} bytes"
    )
    print(f"hostile answer sample: {seen.sample}")
    print(
        f"server RSS: {rss_before:.0f} MB before the hostile client, "
        f"{rss_after:.0f} MB after {seen.sent} hostile requests"
    )
    for name, value in figures.items():
        verdict = "ok" if value < TARGETS[name] else "MISSED"
        print(f"target {name} < {TARGETS[name]:g}: {value:.1f}  {verdict}")


async def bench(args: argparse.Namespace) -> None:
    run_id = secrets.token_hex(4)
    settings = Settings.from_env(namespace=f"bench{run_id}hostile", default_rate_limit=RATE_LIMIT)
    try:
        partner, abuser = await create_key(settings), await create_key(settings)
        with tempfile.NamedTemporaryFile("w", prefix="bench-hostile-", suffix=".lua", delete=False) as lua:
            lua.write(wrk_script(run_id, partner))
        script = Path(lua.name)
        seen = Hostile()
        rounds: list[Round] = []
        async with running_server(GATEWAY, settings, workers=1) as server:
            print(f"== gateway at {server.base_url}; wrk -t{args.threads} -c{args.connections}, "
                  f"{args.rounds} x (quiet, hostile) rounds of {args.duration:g} s", flush=True)  # fmt: skip
            await run_wrk(server.base_url, script, args, WARMUP_SECONDS)  # not counted
            rss_before = rss_mb(server.pid)
            for number in range(1, args.rounds + 1):
                order = ("quiet", "hostile") if number % 2 else ("hostile", "quiet")
                for kind in order:
                    rounds.append(await measure_round(kind, server, script, abuser, seen, args))
                    report_round(number, rounds[-1])
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
                body = hostile_body()
                while seen.sent < RSS_AFTER_HOSTILE:
                    await send_hostile(client, body, abuser, seen)
            rss_after = rss_mb(server.pid)
        summarize(rounds, seen, rss_before, rss_after)
    finally:
        if "script" in locals():
            os.unlink(script)
        await purge_namespace(settings)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=DESCRIPTION)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of quiet and hostile rounds")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (requests in flight)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk", help="the wrk executable")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1 or args.threads < 1:
        parser.error("--rounds, --connections and --threads at least 1, --duration positive")
    if shutil.which(args.wrk) is None:
        parser.error(f"{args.wrk} not found: apt-get install -y wrk")
    return args


async def main(args: argparse.Namespace) -> None:
    cancel_on_sigterm()
    await bench(args)


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit("interrupted: server stopped, bench namespace purged")
