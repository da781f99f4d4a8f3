"""The fault scenarios, and the run of one: start the stack, submit the returns, inject the
fault mid-run, wait until the queues are quiet, stop the connectors, count.

Each scenario injects one class of fault once a share of the returns has been submitted:

* ``lifecycle-kill``  — ``kill -9`` the lifecycle process, start it again 2 s later;
* ``redis-stop``      — stop the stack's Redis for 10 s (its append-only file keeps the data),
                        then start it again on the same port;
* ``transient-30``    — from then on, 30 % of every ERP and CRM call answers 503 or 429 with
                        ``Retry-After: 1`` (half each), until the end of the run;
* ``connector-kill``  — ``kill -9`` each connector process in turn, each started again at once;
* ``redis-flush``     — (bench only) kill the stack's Redis and start it empty: what the gateway
                        holds only in Redis is lost (a key is issued again for the partner).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from bench.faultlab._drive import Driver
from bench.faultlab._run import Run, count, wait_quiet
from bench.faultlab._stack import StackOptions, running_fault_stack
from bench.faultlab._tally import Tally
from gateway.sandbox import Fault

FAULT_AT = 1 / 3
"""Share of the returns submitted when a fault is injected."""


Inject = Callable[[Run], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    inject: Inject
    in_suite: bool = True
    """Whether the test suite runs it (the others only the benchmark)."""
    redis_appendonly: bool = True


async def _lifecycle_kill(run: Run) -> None:
    await run.at_share(FAULT_AT)
    run.stack.connectors["lifecycle"].kill()
    run.note("lifecycle killed (SIGKILL)")
    await asyncio.sleep(2.0)  # the fault: down for two seconds while returns keep coming
    await run.stack.restart_connector("lifecycle")
    run.note("lifecycle consuming again")


REDIS_DOWN_SECONDS = 10.0


async def _redis_stop(run: Run) -> None:
    await run.at_share(FAULT_AT)
    await asyncio.to_thread(run.stack.redis.stop)
    run.note("Redis stopped (SIGTERM, append-only file written)")
    await asyncio.sleep(REDIS_DOWN_SECONDS)  # the fault: ten seconds without Redis
    await asyncio.to_thread(run.stack.redis.start)
    run.note("Redis started again with its data")


TRANSIENT_SHARE = 0.30


def transient_faults(share: float) -> list[Fault]:
    """Half the share answers 503, half 429, both with ``Retry-After: 1``, on every call (the
    token endpoint's too); rate faults share one draw per request, so the two add up."""
    return [
        Fault(status=503, retry_after="1", rate=share / 2),
        Fault(status=429, retry_after="1", rate=share / 2),
    ]


async def _transient_30(run: Run) -> None:
    await run.at_share(FAULT_AT)
    for role in ("erp", "crm"):
        state = run.stack.sandboxes[role].state
        with state.lock:
            state.faults.extend(transient_faults(TRANSIENT_SHARE))
    run.note("30 % of ERP and CRM calls answer 503/429 (Retry-After: 1) from now on")


async def _connector_kill(run: Run) -> None:
    names = list(run.stack.connectors)
    for index, name in enumerate(names):
        await run.at_share(0.15 + 0.7 * index / len(names))
        run.stack.connectors[name].kill()
        run.stack.connectors[name].start()
        run.note(f"{name} killed (SIGKILL) and started again")
    await run.stack.consuming()
    run.note("every connector consuming again")


async def _redis_flush(run: Run) -> None:
    await run.at_share(FAULT_AT)
    redis = run.stack.redis
    await asyncio.to_thread(redis.kill)
    redis.wipe()
    await asyncio.to_thread(redis.start)
    await run.stack.issue_key()
    run.note("Redis killed and started empty; the partner's key issued again")


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("lifecycle-kill", "kill -9 the lifecycle mid-run, start it again", _lifecycle_kill),
        Scenario("redis-stop", "Redis stopped for 10 s mid-run, back with its data", _redis_stop),
        Scenario("transient-30", "30 % transient 503/429 on every ERP and CRM call", _transient_30),
        Scenario("connector-kill", "kill -9 each connector process in turn", _connector_kill),
        Scenario(
            "redis-flush", "Redis killed mid-run and started empty", _redis_flush, in_suite=False,
            redis_appendonly=False,
        ),
    )
}  # fmt: skip


async def run_scenario(
    scenario: Scenario,
    *,
    returns: int,
    rate: float,
    options: StackOptions | None = None,
    drain_within: float = 120.0,
) -> Tally:
    """Run ``scenario`` on a stack of its own: ``returns`` returns submitted ``rate`` a second,
    then up to ``drain_within`` seconds for the queues to fall quiet. Its tally."""
    options = dataclasses.replace(options or StackOptions(), redis_appendonly=scenario.redis_appendonly)
    async with running_fault_stack(options) as stack:
        run = Run(stack, Driver(stack, rate=rate), returns)
        fault = asyncio.create_task(scenario.inject(run))
        try:
            await run.driver.run(returns)
            run.note(f"{run.driver.accepted} of {returns} returns accepted")
            await fault
        finally:
            fault.cancel()
        drained, quiet_at = await wait_quiet(stack, within=drain_within)
        run.note("queues quiet" if drained else "queues still busy at the deadline")
        tally = await count(run, drained=drained, quiet_at=quiet_at)
        return dataclasses.replace(tally, scenario=scenario.name)
