"""The effect ledger: has this connector already applied this message?

RabbitMQ delivers at least once (a crash before the ack, a broker restart, a replay), so
the runtime asks here before calling the target:

* ``go`` — nobody has: this worker holds a lease and calls the target;
* ``done`` — applied before: acknowledge without calling again;
* ``busy`` — another worker holds a live lease.

The lease is short and renewed while its worker is alive (:meth:`EffectLedger.holding`), so a
worker killed mid-call holds the message back for one lease at most, not for the longest
call it might have been making. A lost done-record or lease cannot double-post either: the
target gets the message id as its idempotency key or external id, and the real systems
reject or replay a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Literal

import redis.asyncio as aioredis

from gateway.errors import StoreUnavailable
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import effect

log = logging.getLogger(__name__)

_DONE = b"done"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

Claim = Literal["go", "done", "busy"]


class EffectLedger:
    """Per connector and message id: in progress under a lease, or done."""

    def __init__(self, redis: aioredis.Redis, settings: Settings, *, lease_seconds: float) -> None:
        self._redis = redis
        self._settings = settings
        self._lease_ms = int(lease_seconds * 1000)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._token = f"pending:{secrets.token_hex(8)}".encode()

    def _key(self, connector: str, message_id: str) -> str:
        return effect(self._settings, connector, message_id)

    async def begin(self, connector: str, message_id: str) -> Claim:
        """Take the lease if the message is neither done nor held."""
        with redis_errors():
            previous = await self._redis.set(
                self._key(connector, message_id), self._token, nx=True, px=self._lease_ms, get=True
            )
        if previous is None:
            return "go"
        return "done" if previous == _DONE else "busy"

    @contextlib.asynccontextmanager
    async def holding(self, connector: str, message_id: str) -> AsyncIterator[None]:
        """Renew the lease taken by :meth:`begin` every third of its length while the block runs.

        A renewal that fails (Redis away) is tried again at the next beat; one that finds the
        lease gone is logged, since another worker may then apply the message too (the
        target's idempotency key is what stops a second posting then).
        """
        beat = asyncio.create_task(self._keep_renewing(connector, message_id))
        try:
            yield
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _keep_renewing(self, connector: str, message_id: str) -> None:
        key = self._key(connector, message_id)
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                with redis_errors():
                    renewed = await self._renew(keys=[key], args=[self._token, self._lease_ms])
            except StoreUnavailable as exc:
                log.warning("lease on %s/%s not renewed: %s", connector, message_id, exc)
                continue
            if not renewed:
                log.warning("lease on %s/%s was lost while applying it", connector, message_id)
                return

    async def finish(self, connector: str, message_id: str) -> None:
        """Record the effect as applied; kept ``effect_retention_seconds``."""
        with redis_errors():
            await self._redis.set(
                self._key(connector, message_id), _DONE, ex=self._settings.effect_retention_seconds
            )

    async def abandon(self, connector: str, message_id: str) -> None:
        """Give the lease back after a failure, so the retry need not wait for it to expire."""
        with redis_errors():
            await self._release(keys=[self._key(connector, message_id)], args=[self._token])
