"""Per-partner request rate limits, counted in Redis so every gateway replica shares them.

Uses the ``limits`` library's sliding-window counter: smoother than a fixed window
(no double burst at a window edge) at the cost of two small keys per partner.
"""

from __future__ import annotations

import math
import time

import msgspec
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from gateway.errors import RateLimited, StoreUnavailable


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
            "RateLimit-Policy": f"{self.limit};w=1",
        }


class PartnerRateLimiter:
    """Admits a request if its partner is under its requests-per-second limit."""

    def __init__(self, redis_url: str, *, key_prefix: str) -> None:
        self._storage = RedisStorage(
            "async+" + redis_url, implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._items: dict[int, RateLimitItemPerSecond] = {}

    def _item(self, limit: int) -> RateLimitItemPerSecond:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit)
        return item

    async def admit(self, partner: str, limit: int) -> RateLimitState:
        """Count one request; raise :class:`RateLimited` (429) when over the limit."""
        item = self._item(limit)
        try:
            allowed = await self._limiter.hit(item, partner)
            stats = await self._limiter.get_window_stats(item, partner)
        except StorageError as exc:
            raise StoreUnavailable(f"rate limit store unavailable: {exc}") from exc
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        state = RateLimitState(limit=limit, remaining=max(0, stats.remaining), reset_seconds=reset)
        if not allowed:
            raise RateLimited(
                f"partner '{partner}' is limited to {limit} requests per second",
                headers={**state.headers(), "Retry-After": str(reset)},
            )
        return state
