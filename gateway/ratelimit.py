"""Per-partner request rate limits, counted in Redis so every gateway replica shares them.

A one-second fixed window from the ``limits`` library: its Redis storage increments the
window's counter and sets its expiry in one script, and hands back the new count, so
admitting a request and filling every ``RateLimit-*`` header costs one round trip (its
sliding-window strategy needs two). The window begins with its first request and lasts a
second, so a partner can at most double its limit across one window edge.
"""

from __future__ import annotations

import msgspec
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.errors import StorageError

from gateway.errors import RateLimited, StoreUnavailable

WINDOW_SECONDS = 1


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


class PartnerRateLimiter:
    """Admits a request if its partner is under its requests-per-second limit."""

    def __init__(self, redis_url: str, *, key_prefix: str) -> None:
        self._storage = RedisStorage(
            "async+" + redis_url, implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True
        )
        self._items: dict[int, RateLimitItemPerSecond] = {}

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
        # The window is one second long and began at or before now, so it ends within a second.
        state = RateLimitState(limit=limit, remaining=max(0, limit - count), reset_seconds=WINDOW_SECONDS)
        if count > limit:
            raise RateLimited(
                f"partner '{partner}' is limited to {limit} requests per second",
                headers={**state.headers(), "Retry-After": str(WINDOW_SECONDS)},
            )
        return state
