"""When to try a failed message again: exponential backoff with jitter, at least Retry-After,
rounded up to one of the connector's retry tiers (queues with a fixed TTL)."""

from __future__ import annotations

import bisect

from tenacity import RetryCallState, wait_exponential_jitter

from gateway.routing import ConnectorSpec


class RetryPlan:
    """Backoff for one connector, from its routing-table spec."""

    def __init__(self, spec: ConnectorSpec) -> None:
        self.tiers_ms = sorted(spec.retry_delays_ms)
        self.max_attempts = spec.max_attempts
        self._wait = wait_exponential_jitter(
            multiplier=self.tiers_ms[0] / 1000, max=self.tiers_ms[-1] / 1000, jitter=self.tiers_ms[0] / 1000
        )

    def backoff_seconds(self, attempt: int) -> float:
        """tenacity's exponential-with-jitter wait after the ``attempt``-th try."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(self._wait(state))

    def tier_for(self, attempt: int, retry_after: float | None = None) -> int:
        """The retry tier (ms) to wait in: the smallest at least the backoff and Retry-After."""
        wanted_ms = 1000 * max(self.backoff_seconds(attempt), retry_after or 0.0)
        index = bisect.bisect_left(self.tiers_ms, wanted_ms)
        return self.tiers_ms[min(index, len(self.tiers_ms) - 1)]

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts
