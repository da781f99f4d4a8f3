"""In-process retries of target calls: which calls may be sent again, and how long to wait.

A call that is safe to repeat (an idempotent method, or a POST or PATCH carrying an
idempotency key, so a repeat is refused or has the first one's effect) is tried again for a
retryable failure, a few times, within the connector process: a jittered exponential backoff,
never sooner than the target's ``Retry-After``. That keeps one throttled or failed call of six
from sending the whole message back through the retry tiers (which would repeat the five that
worked). A target asking for a longer wait than the limit, or a breaker that opened meanwhile,
ends the tries at once: the runtime's retry tiers and circuit take it from there.

A call that is not safe to repeat is only tried again when its connection failed to open
(:data:`short_retry`): then nothing was sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    before_sleep_log,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from gateway.errors import CircuitOpen, RetryableDeliveryFailure

log = logging.getLogger("gateway.sdk.target")

#: Methods whose repeat has the effect of one request (RFC 9110, 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

#: Connection failures (refused, reset while idle in the pool, no free connection in time):
#: the request did not leave, so any call may be sent again at once.
CONNECTION_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: The brief in-process retry of a call that is not safe to repeat, when its connection
#: failed to open: two more tries within about half a second.
short_retry = AsyncRetrying(
    retry=retry_if_exception_type(CONNECTION_FAILURES),
    stop=stop_after_attempt(2),
    wait=wait_exponential_jitter(multiplier=0.05, max=0.3, jitter=0.05),
    before_sleep=before_sleep_log(log, logging.WARNING),
    reraise=True,
)

#: Backoff between tries of a call safe to repeat, when the target names no wait: 0.1 s,
#: 0.2 s, 0.4 s... up to 2 s, each plus up to 0.1 s of jitter.
BACKOFF = wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)

#: Up to this share of a ``Retry-After`` is added at random, so the calls a target throttled
#: together do not all come back in the same instant.
RETRY_AFTER_JITTER = 0.1


def repeatable(method: str, idempotency_key: str | None) -> bool:
    """Whether a call may be sent again after a failure that may have reached the target."""
    return idempotency_key is not None or method.upper() in IDEMPOTENT_METHODS


class wait_retry_after(wait_base):  # named like tenacity's waits, which it composes with
    """tenacity wait: what the target asked for (``Retry-After``, as the failure carries it)
    with a little jitter, or ``backoff`` when it is longer or the target asked nothing."""

    def __init__(self, backoff: wait_base = BACKOFF, jitter: float = RETRY_AFTER_JITTER) -> None:
        self.backoff = backoff
        self.jitter = jitter

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = float(self.backoff(retry_state))
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None and outcome.failed else None
        asked = getattr(failure, "retry_after", None)
        if asked is None:
            return backoff
        return max(backoff, asked * (1 + random.uniform(0, self.jitter)))


def worth_another_try(max_retry_after: float) -> Callable[[BaseException], bool]:
    """Retryable failures, except an open circuit and a target asking to wait longer than
    ``max_retry_after`` seconds: those go to the runtime at once."""

    def worth(exc: BaseException) -> bool:
        if not isinstance(exc, RetryableDeliveryFailure) or isinstance(exc, CircuitOpen):
            return False
        return exc.retry_after is None or exc.retry_after <= max_retry_after

    return worth


def within(tries: int, seconds: float) -> stop_base:
    """Stop after ``tries``, or before a try that would start ``seconds`` or more after the
    first: with ``seconds`` the target's timeout, a call takes at most about twice that, so it
    stays within the effect lease its message holds."""
    return stop_after_attempt(tries) | stop_before_delay(seconds)


def call_retrying(tries: int, max_retry_after: float, seconds: float = 3600.0) -> AsyncRetrying:
    """The retry policy of one target's calls that are safe to repeat; ``copy()`` it per call
    (with ``stop=within(...)`` for the time a call has left)."""
    return AsyncRetrying(
        retry=retry_if_exception(worth_another_try(max_retry_after)),
        stop=within(tries, seconds),
        wait=wait_retry_after(),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
