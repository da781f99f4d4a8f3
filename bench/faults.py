"""Fault benchmark: the fault suite's scenarios (``tests/faults``) at scale.

For each scenario, a stack of its own (the gateway and one process per connector, the four
sandboxes, a Redis server of its own, a namespace of its own on the local RabbitMQ) takes
``--returns`` returns submitted ``--rate`` a second; the fault comes once a third of them were
sent. Once the queues are quiet the connectors are stopped and the run is counted: accepted,
delivered per system, duplicates, missing, dead letters, drain time (see ``bench.faultlab``).

Run from the project root: ``.venv/bin/python -m bench.faults --returns 10000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.faultlab import SCENARIOS, SYSTEMS, StackOptions, Tally, format_tally, run_scenario

DESCRIPTION = "The fault suite's scenarios at scale: what each fault costs in postings and drain time."


def _per_system(counts: dict[str, int]) -> str:
    return "/".join(str(counts[s]) for s in SYSTEMS)


def summary(tallies: list[Tally]) -> str:
    """One line per scenario, as a Markdown table (docs/faults.md keeps it). Per system the
    figures read erp/wms/carrier/crm; duplicates count returns posted twice under one id or
    two (strays); a drain time with ``+`` ran out of time."""
    lines = [
        "| scenario | accepted | delivered | duplicates | missing | dead letters | drain s | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in tallies:
        drain = f"{t.drain_seconds:.1f}" + ("" if t.drained else "+")
        dead = sum(t.dead_letters.values())
        verdict = "ok" if not t.problems() else "FAILED"
        twice = {system: t.duplicates[system] + t.strays[system] for system in SYSTEMS}
        lines.append(
            f"| {t.scenario} | {t.accepted}/{t.asked} | {_per_system(t.delivered)}"
            f" | {_per_system(twice)} | {_per_system(t.missing)} | {dead} | {drain} | {verdict} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=DESCRIPTION)
    parser.add_argument("--returns", type=int, default=10_000, help="returns submitted per scenario")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="run only this one (repeatable)"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="returns submitted per second")
    parser.add_argument(
        "--drain-within", type=float, default=1800.0, help="seconds to wait for the queues after submitting"
    )
    parser.add_argument("--prefetch", type=int, default=32, help="messages each connector works on at once")
    parser.add_argument(
        "--lease-seconds", type=float, default=15.0, help="RGW_EFFECT_LEASE_SECONDS of every connector"
    )
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this folder")
    args = parser.parse_args(argv)
    if args.returns < 1 or args.rate <= 0 or args.prefetch < 1:
        parser.error("--returns and --prefetch at least 1, --rate above 0")
    return args


async def main(args: argparse.Namespace) -> None:
    names = args.scenario or list(SCENARIOS)
    amqp_url = os.environ.get("RGW_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    print(
        f"{args.returns} returns per scenario at {args.rate:g}/s; scenarios: {', '.join(names)}", flush=True
    )
    tallies = []
    for name in names:
        started = time.monotonic()
        options = StackOptions(
            amqp_url=amqp_url,
            prefetch=args.prefetch,
            lease_seconds=args.lease_seconds,
            log_dir=args.logs / name if args.logs else None,
        )
        tally = await run_scenario(
            SCENARIOS[name],
            returns=args.returns,
            rate=args.rate,
            options=options,
            drain_within=args.drain_within,
        )
        tallies.append(tally)
        print(
            f"\n{format_tally(tally)}\n  whole run           {time.monotonic() - started:.0f} s", flush=True
        )
    print("\n" + summary(tallies))


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        sys.exit("interrupted")
