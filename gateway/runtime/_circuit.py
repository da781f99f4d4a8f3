"""The per-target circuit breaker: stop calling a system that keeps failing, try again later.

The state machine is purgatory's (closed → open after ``failure_threshold`` consecutive
retryable failures → half-open once ``open_seconds`` have passed → closed on a success, open
again on a failure). Only retryable failures count: a 4xx means the target is up and
refused one message, which says nothing about the next.

The runtime listens for the changes: while the circuit is open it stops consuming (the
messages wait in their queue, not in retry loops), and it reopens with a single message in
flight, the trial, until the circuit closes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from gateway.errors import RetryableDeliveryFailure
from gateway.routing import CircuitSpec

T = TypeVar("T")

State = Literal["closed", "opened", "half-opened"]


class CircuitOpen(RetryableDeliveryFailure):
    """The target's circuit is open: it was not called; try after ``retry_after`` seconds."""


def _not_a_target_failure(exc: BaseException) -> bool:
    return not isinstance(exc, RetryableDeliveryFailure)


class TargetCircuit:
    """The breaker guarding one target; ``on_change`` hears every state it enters."""

    def __init__(
        self, name: str, spec: CircuitSpec, *, on_change: Callable[[State], None] | None = None
    ) -> None:
        self.name = name
        self.open_seconds = spec.open_seconds
        self.state: State = "closed"
        self._on_change = on_change
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=spec.failure_threshold,
            default_ttl=spec.open_seconds,
            exclude=[(BaseException, _not_a_target_failure)],
        )
        self._breakers.add_listener(self._heard)

    def _heard(self, name: str, event_type: str, event: Any) -> None:
        if event_type == "state_changed":
            self.state = event.state
            if self._on_change is not None:
                self._on_change(event.state)

    async def call(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` through the breaker (answering what it answers); raise
        :class:`CircuitOpen` instead while it is open."""
        breaker = await self._breakers.get_breaker(self.name)
        try:
            async with breaker:
                return await action()
        except OpenedState as opened:
            wait = max(0.0, opened.opened_at + self.open_seconds - time.time())
            raise CircuitOpen(f"circuit for {self.name} is open", retry_after=wait) from None
