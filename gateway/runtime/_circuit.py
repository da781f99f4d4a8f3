"""The per-target circuit breaker: stop calling a system that is down, try again later.

Down means the system, not some calls: the breaker counts every call to the target once,
after the call's in-process tries (:class:`gateway.sdk.Target` reports each one), and opens
when either holds:

* ``failure_rate`` of the calls in the last ``window_seconds`` failed, with at least
  ``minimum_calls`` of them in the window (a few failures in a quiet hour open nothing);
* ``consecutive_failures`` calls in a row got no answer at all (:class:`TargetUnreachable`:
  refused, reset, timed out), whatever the volume: a system that is gone is down at once.

A failure is a retryable one (5xx, 429, timeout, refused connection); any answer the target
gave otherwise, a 4xx included, is a success (the system is up and refused one message, which
says nothing about the next). Open, it refuses calls with :class:`CircuitOpen` for
``open_seconds``; then the next call is let through as the trial (half-opened): answered, it
closes the circuit, failed, it opens it again. A call made before the circuit opened that ends
after is not counted (its ticket is from another period).

The runtime listens for the changes: while the circuit is open it stops consuming (the
messages wait in their queue, not in retry loops), and it reopens with a single message in
flight, the trial, until the circuit closes.

No library we looked at counts a failure rate over a sliding window with a minimum volume:
purgatory, pybreaker, aiobreaker and circuitbreaker count consecutive failures, and aiomisc's
breaker keeps a ratio but recovers by letting a random share through, with no single trial.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from gateway.errors import CircuitOpen, DeliveryFailed, RetryableDeliveryFailure, TargetUnreachable
from gateway.routing import CircuitSpec

T = TypeVar("T")

State = Literal["closed", "opened", "half-opened"]

__all__ = ["CircuitOpen", "State", "TargetCircuit"]


class _Window:
    """Calls and failures over the last ``seconds``, in one-second buckets reused in a ring."""

    def __init__(self, seconds: float) -> None:
        self._size = max(1, math.ceil(seconds))
        self._second = [-1] * self._size
        """Which second each bucket counts (-1: none yet)."""
        self._calls = [0] * self._size
        self._failures = [0] * self._size

    def add(self, now: float, failed: bool) -> None:
        second = int(now)
        at = second % self._size
        if self._second[at] != second:  # a bucket left over from a second out of the window
            self._second[at], self._calls[at], self._failures[at] = second, 0, 0
        self._calls[at] += 1
        self._failures[at] += failed

    def totals(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the window ending at ``now``."""
        oldest = int(now) - self._size
        calls = failures = 0
        for second, in_it, failed in zip(self._second, self._calls, self._failures, strict=True):
            if second > oldest:
                calls += in_it
                failures += failed
        return calls, failures

    def clear(self) -> None:
        self._second = [-1] * self._size


def _failed(outcome: BaseException | None) -> bool | None:
    """Whether a call's outcome counts as a failure; ``None`` when it does not count at all (the
    breaker refused it, or it ended without a word from the target: a bug, a cancellation)."""
    if outcome is None:
        return False
    if isinstance(outcome, CircuitOpen):
        return None
    if isinstance(outcome, RetryableDeliveryFailure):
        return True
    if isinstance(outcome, DeliveryFailed):
        return False  # the target answered: it is up
    return None


class TargetCircuit:
    """The breaker guarding one target; ``on_change`` hears every state it enters.

    The target's calls go through :meth:`admit` and :meth:`record` (it is the target's
    :class:`gateway.sdk.CallGuard`); :meth:`call` guards an action as one call.
    """

    def __init__(
        self,
        name: str,
        spec: CircuitSpec,
        *,
        on_change: Callable[[State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.spec = spec
        self.open_seconds = spec.open_seconds
        self.state: State = "closed"
        self.opened = 0
        """How often it opened since start (for health, metrics and tests)."""
        self.reason = ""
        """Why it last opened, in words for the log."""
        self._on_change = on_change
        self._clock = clock
        self._window = _Window(spec.window_seconds)
        self._unanswered = 0
        """Calls in a row that got no answer at all."""
        self._opened_at = 0.0
        self._period = 0
        """Counts the states entered: a call's ticket is the period it was admitted in."""

    def admit(self) -> int:
        """Raise :class:`CircuitOpen` while open; once ``open_seconds`` have passed, let the
        trial through (half-opened). Answers the call's ticket for :meth:`record`."""
        if self.state == "opened":
            wait = self._opened_at + self.open_seconds - self._clock()
            if wait > 0:
                raise CircuitOpen(f"circuit for {self.name} is open ({self.reason})", retry_after=wait)
            self._enter("half-opened")
        return self._period

    def record(self, ticket: int, outcome: BaseException | None) -> None:
        """Count one call that ended with ``outcome`` (its exception, or ``None`` for a success)."""
        failed = _failed(outcome)
        if failed is None or ticket != self._period or self.state == "opened":
            return
        if self.state == "half-opened":  # the trial decides
            if failed:
                self.reason = f"the trial failed: {outcome}"
                self._enter("opened")
            else:
                self._enter("closed")
            return
        now = self._clock()
        self._window.add(now, failed)
        if not failed:
            self._unanswered = 0
            return
        self._unanswered = self._unanswered + 1 if isinstance(outcome, TargetUnreachable) else 0
        if self._unanswered >= self.spec.consecutive_failures:
            self.reason = f"{self._unanswered} calls in a row got no answer"
            self._enter("opened")
            return
        calls, failures = self._window.totals(now)
        if calls >= self.spec.minimum_calls and failures >= self.spec.failure_rate * calls:
            self.reason = f"{failures} of {calls} calls in the last {self.spec.window_seconds:g} s failed"
            self._enter("opened")

    async def call(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` as one call through the breaker (answering what it answers); raise
        :class:`CircuitOpen` instead while it is open."""
        ticket = self.admit()
        try:
            result = await action()
        except BaseException as exc:
            self.record(ticket, exc)
            raise
        self.record(ticket, None)
        return result

    def _enter(self, state: State) -> None:
        self.state = state
        self._period += 1
        self._window.clear()
        self._unanswered = 0
        if state == "opened":
            self._opened_at = self._clock()
            self.opened += 1
        if self._on_change is not None:
            self._on_change(state)
