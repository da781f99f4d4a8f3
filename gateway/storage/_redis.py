"""Redis connection and error translation shared by every Redis-backed store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import StoreUnavailable

REDIS_TIMEOUT_SECONDS = 2.0
"""How long a Redis call may take before the request gives up on it (503, never a hang)."""


def connect_redis(url: str, *, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    """A pooled client; connections open lazily, so this never blocks start-up."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        max_connections=256,
    )


@contextmanager
def redis_errors() -> Iterator[None]:
    """Translate an unreachable or slow Redis into :class:`StoreUnavailable`."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis unavailable: {exc}") from exc
