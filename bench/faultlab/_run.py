"""One run of a scenario: the stack, the partner submitting, what the fault notes; then the
wait for the queues to fall quiet, and the count of what the run left behind."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time

import httpx

from bench.faultlab._broker import browse_dead_letters, ready_counts, work_queues
from bench.faultlab._drive import Driver
from bench.faultlab._stack import FaultStack
from bench.faultlab._tally import (
    EXPECTED_STATUS,
    SYSTEMS,
    Tally,
    count_postings,
    dead_letter_counts,
    dead_letter_reasons,
    injected_faults,
    read_returns,
)

QUIET_SECONDS = 2.0
"""Work queues empty and no sandbox called for this long: drained. A message a connector still
held would show once the connectors are stopped (see :func:`count`)."""
POLL_SECONDS = 0.25


@dataclasses.dataclass
class Run:
    """A scenario's run: what its fault acts on, and the log of what happened."""

    stack: FaultStack
    driver: Driver
    returns: int
    events: list[str] = dataclasses.field(default_factory=list)

    def note(self, what: str) -> None:
        at = time.monotonic() - self.driver.started if self.driver.started else 0.0
        self.events.append(f"{at:7.2f}s  {what}")

    async def at_share(self, share: float, *, within: float = 3600.0) -> None:
        """Wait until ``share`` of the returns have been sent (at least one)."""
        wanted = max(1, int(self.returns * share))
        deadline = time.monotonic() + within
        while self.driver.sent < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wanted} returns not sent within {within:.0f} s")
            await asyncio.sleep(0.05)


def _sandbox_requests(stack: FaultStack) -> int:
    total = 0
    for sandbox in stack.sandboxes.values():
        with sandbox.state.lock:
            total += len(sandbox.state.requests)
    return total


async def wait_quiet(stack: FaultStack, *, within: float) -> tuple[bool, float]:
    """Wait until every work queue is empty and no sandbox was called for ``QUIET_SECONDS``.
    Whether it got there, and when the last activity was seen."""
    queues = work_queues(stack.settings, stack.table)
    deadline = time.monotonic() + within
    last_activity, last_requests = time.monotonic(), _sandbox_requests(stack)
    while time.monotonic() < deadline:
        counts = await ready_counts(stack.settings, queues)
        requests = _sandbox_requests(stack)
        busy = any(c.ready for c in counts.values()) or requests != last_requests
        last_requests = requests
        if busy:
            last_activity = time.monotonic()
        elif time.monotonic() - last_activity >= QUIET_SECONDS:
            return True, last_activity
        await asyncio.sleep(POLL_SECONDS)
    return False, time.monotonic()


async def count(run: Run, *, drained: bool, quiet_at: float) -> Tally:
    """Stop every connector (what one held unacknowledged goes back to its queue), then count
    the queues, the returns as the API shows them, the dead letters and the postings."""
    stack = run.stack
    await asyncio.gather(*(process.stop() for process in stack.connectors.values()))
    run.note("connectors stopped")
    queues = work_queues(stack.settings, stack.table)
    left = {q: c.ready for q, c in (await ready_counts(stack.settings, queues)).items()}

    async def get(path: str) -> httpx.Response:
        return await stack.http.get(f"{stack.gateway_url}{path}", headers=stack.headers())

    return_ids = run.driver.return_ids
    seen = await read_returns(get, return_ids)
    exceptional = {r for r, s in seen.items() if s.exception}
    run.note("returns read")
    letters = await browse_dead_letters(stack.settings, list(stack.table.connectors))
    postings = count_postings(stack.sandboxes, return_ids)
    delivered = postings.delivered
    statuses = collections.Counter(s.status for s in seen.values())
    return Tally(
        scenario="",
        asked=run.returns,
        accepted=run.driver.accepted,
        refusals=dict(run.driver.refusals()),
        statuses=dict(statuses.most_common()),
        delivered={s: len(delivered[s]) for s in SYSTEMS},
        duplicates=postings.duplicates,
        replays=postings.replays,
        strays=postings.strays,
        missing={s: sum(1 for r in return_ids if r not in delivered[s] | exceptional) for s in SYSTEMS},
        faulted=injected_faults(stack.sandboxes),
        dead_letters=dead_letter_counts(letters, stack.table.connectors),
        dead_letter_reasons=dead_letter_reasons(letters),
        silent_dead_letters=sum(1 for d in letters if d.correlation_id not in exceptional),
        unexpected={r: s.status for r, s in seen.items() if s.status != EXPECTED_STATUS and not s.exception},
        drained=drained,
        drain_seconds=max(0.0, quiet_at - run.driver.finished),
        left=left,
        events=run.events,
    )
