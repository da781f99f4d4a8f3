"""Where the gateway keeps what it holds between requests: Redis, its connection and error
translation (:func:`redis_errors`), the key names (:mod:`gateway.storage.keys`), and the
accepted returns (:mod:`gateway.records`)."""

from gateway.storage._redis import REDIS_TIMEOUT_SECONDS, connect_redis, redis_errors

__all__ = ["REDIS_TIMEOUT_SECONDS", "connect_redis", "redis_errors"]
