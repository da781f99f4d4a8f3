"""Per-partner request rate limits, counted in Redis so every gateway replica shares them.

A one-second fixed window from the ``limits`` library: its Redis storage increments the
window's counter and sets its expiry in one script, and hands back the new count, so
admitting a request and filling every ``RateLimit-*`` header costs one round trip (its
sliding-window strategy needs two). The window begins with its first request and lasts a
second, so a partner can at most double its limit across one window edge.

``POST /v1/returns`` saves that round trip: its :class:`Admission` is counted inside the
idempotency claim's script (:meth:`Admission.counter` gives the script the same key,
limit and window ``limits`` uses), which claims nothing when the count is over the limit.
A request that fails before reaching the claim is counted on its own by
:meth:`Admission.settle`, so every request still counts once and a throttled one still
gets 429 first, whatever else is wrong with it.
"""

from __future__ import annotations

import time

import msgspec
import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.errors import StorageError

from gateway.errors import RateLimited, StoreUnavailable

WINDOW_SECONDS = 1
_THROTTLED_LIMIT = 10_000


class RateLimitState(msgspec.Struct, frozen=True):
    """Where a partner stands in its current window, for the ``RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
            "RateLimit-Policy": f"{self.limit};w={WINDOW_SECONDS}",
        }


class RateLimitCounter(msgspec.Struct, frozen=True):
    """What a Redis script needs to count a request as ``limits``' fixed window does."""

    key: str
    """The window's counter, the very key ``limits`` increments for this partner and limit."""
    limit: int
    window_seconds: int


class PartnerRateLimiter:
    """Admits a request if its partner is under its requests-per-second limit."""

    def __init__(self, redis: aioredis.Redis, *, key_prefix: str, subject: str = "partner") -> None:
        # On the gateway's own pool: its timeouts bound a stalled Redis, and closing the
        # gateway's client closes every connection the limiter used (the URI only names the
        # scheme; the pool decides where to connect).
        self._storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            connection_pool=redis.connection_pool,
        )
        self._key_prefix = key_prefix
        self._subject = subject
        """What is counted, for the 429's detail: a partner, or a webhook source."""
        self._items: dict[int, RateLimitItemPerSecond] = {}
        self._throttled_until: dict[str, float] = {}

    def _item(self, limit: int) -> RateLimitItemPerSecond:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit, WINDOW_SECONDS)
        return item

    async def admit(self, partner: str, limit: int) -> RateLimitState:
        """Count one request; raise :class:`RateLimited` (429) when over the limit."""
        item = self._item(limit)
        try:
            count = await self._storage.incr(item.key_for(partner), item.get_expiry())
        except StorageError as exc:
            raise StoreUnavailable(f"rate limit store unavailable: {exc}") from exc
        return self.judge(partner, limit, count)

    def judge(self, partner: str, limit: int, count: int) -> RateLimitState:
        """The state after the window's ``count``-th request; raise :class:`RateLimited` if over."""
        # The window is one second long and began at or before now, so it ends within a second.
        state = RateLimitState(limit=limit, remaining=max(0, limit - count), reset_seconds=WINDOW_SECONDS)
        if count > limit:
            if len(self._throttled_until) >= _THROTTLED_LIMIT:  # many sources: forget, never grow
                self._throttled_until.clear()
            self._throttled_until[partner] = time.monotonic() + WINDOW_SECONDS
            raise RateLimited(
                f"{self._subject} '{partner}' is limited to {limit} requests per second",
                headers={**state.headers(), "Retry-After": str(WINDOW_SECONDS)},
            )
        return state

    def counter(self, partner: str, limit: int) -> RateLimitCounter:
        """The key, limit and window a script uses to count ``partner`` in ``limits``' own counter."""
        item = self._item(limit)
        return RateLimitCounter(f"{self._key_prefix}:{item.key_for(partner)}", limit, item.get_expiry())

    def recently_throttled(self, partner: str) -> bool:
        """This replica refused ``partner`` within the last window: count its next requests first."""
        until = self._throttled_until.get(partner)
        if until is None:
            return False
        if until <= time.monotonic():
            del self._throttled_until[partner]
            return False
        return True

    def admission(self, partner: str, limit: int) -> Admission:
        """One request's count, to be taken once, by a script or by :meth:`Admission.settle`."""
        return Admission(self, partner, limit)


class Admission:
    """One request's count against its partner's limit, taken exactly once.

    Either a Redis script counts it (with :attr:`counter`) and reports the count to
    :meth:`counted`, or :meth:`settle` counts it on its own round trip.
    """

    def __init__(self, limiter: PartnerRateLimiter, partner: str, limit: int) -> None:
        self._limiter = limiter
        self._partner = partner
        self._limit = limit
        self._state: RateLimitState | None = None

    @property
    def pending(self) -> bool:
        """Not counted yet: a script may take the count (once)."""
        return self._state is None

    @property
    def counter(self) -> RateLimitCounter:
        return self._limiter.counter(self._partner, self._limit)

    @property
    def deferrable(self) -> bool:
        """False while the partner is known to be over its limit: then count before any other work,
        so a throttled flood is refused before its bodies are read and validated."""
        return not self._limiter.recently_throttled(self._partner)

    def counted(self, count: int) -> RateLimitState:
        """Record the count a script took; raise :class:`RateLimited` (429) when over the limit."""
        try:
            self._state = self._limiter.judge(self._partner, self._limit, count)
        except RateLimited:
            self._state = RateLimitState(limit=self._limit, remaining=0, reset_seconds=WINDOW_SECONDS)
            raise
        return self._state

    async def settle(self) -> RateLimitState:
        """The request's state, counting it now if no script did; raises 429 when over the limit."""
        if self._state is None:
            try:
                self._state = await self._limiter.admit(self._partner, self._limit)
            except RateLimited:
                self._state = RateLimitState(limit=self._limit, remaining=0, reset_seconds=WINDOW_SECONDS)
                raise
        return self._state
