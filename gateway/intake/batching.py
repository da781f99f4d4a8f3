"""Lua-script calls of concurrent requests coalesced into shared Redis round trips.

Under load, many requests call the same scripts (claim an idempotency key, complete it)
at nearly the same time. Sent one by one, each call costs a pooled connection, a write, a
read and a wake-up of Redis; sent together, a batch of calls costs one of each. redis-py
pipelines only what one caller queues, so this collects the calls of all callers, writes
them as one packet of ``EVALSHA`` commands on one pooled connection and reads the replies
in order. Every script still runs atomically on its own, and each caller gets its own
result or error; a script Redis no longer knows (restart, ``SCRIPT FLUSH``) is loaded and
run again for that caller alone.

A round trip's fixed cost (a write, a wake-up of Redis, a read, a few loop turns: about
80 µs of gateway CPU on a 2-core VM, against some 6 µs per extra call in it) is what a
batch shares, so under load a batch may *linger*, as Kafka's producer does: when the
previous batch carried more than one call, the next waits ``linger_seconds`` before it is
sent, and the calls made meanwhile join it. A lone request never waits.

The batcher keeps one connection of its own, made like the client's pooled ones (same
address, credentials, database, TLS) but with the socket timeout applied once per round
trip instead of once per write and per reply: at a few microseconds each, the per-reply
timers, the task redis-py starts for a timed write and the pool's checks on every
checkout were a measurable share of an accepted return's CPU. The commands are packed by
hiredis, which redis-py already uses to parse replies.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

ScriptArg = str | int | float | bytes

MAX_BATCH = 128
"""Calls per round trip; a longer queue is sent as several batches."""


class _Call:
    __slots__ = ("args", "keys", "result", "script")

    def __init__(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[ScriptArg],
        result: asyncio.Future[Any],
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.result = result

    def command(self) -> bytes:
        return pack_command(("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args))


class ScriptBatcher:
    """Runs registered scripts for many concurrent callers, a batch per round trip.

    One batch is in flight at a time (group commit): calls made while it is out wait for
    the next one, so batches grow with the load, while an idle gateway still sends its one
    call at the end of the current loop turn. (Two batches in flight measured no better.)
    ``linger_seconds`` holds a batch back while the load lasts (see the module's notes).
    """

    def __init__(self, redis: aioredis.Redis, *, linger_seconds: float = 0.0) -> None:
        pool = redis.connection_pool
        self._timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        # Opens on first use and again after any failure; the round trip enforces the timeout.
        self._connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._linger = linger_seconds
        self._loaded = False  # the last batch carried more than one call

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """The script's result for these keys and args, sent with whatever else is waiting.

        Raises what a direct call would: connection and timeout errors, or the script's error.
        """
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Call(script, keys, args, result))
        if self._sender is None:
            self._sender = loop.create_task(self._send_waiting())  # runs after this turn
        return await result

    async def _send_waiting(self) -> None:
        """Send batches of the waiting calls until none is left; callers already gone are skipped."""
        try:
            while self._queue:
                if self._loaded and self._linger > 0 and len(self._queue) < MAX_BATCH:
                    await asyncio.sleep(self._linger)  # let the calls on their way join this batch
                batch = [call for call in self._queue[:MAX_BATCH] if not call.result.done()]
                del self._queue[:MAX_BATCH]
                self._loaded = len(batch) > 1
                if batch:
                    await self._send(batch)
        except BaseException as exc:  # stopped (the loop is closing): nobody is left to send the rest
            waiting, self._queue = self._queue, []
            for call in waiting:
                _settle(call, exc)
            raise
        finally:  # no await between the empty queue and this: a new call always finds a sender
            self._sender = None

    async def _send(self, batch: list[_Call]) -> None:
        try:
            replies = await self._round_trip(batch)
        except BaseException as exc:  # the connection failed: every caller of this batch sees it
            for call in batch:
                _settle(call, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for call, reply in zip(batch, replies, strict=True):
            if isinstance(reply, NoScriptError):
                await self._load_and_run(call)
            else:
                _settle(call, reply)

    async def aclose(self) -> None:
        """Close the batcher's connection (it reopens if called again)."""
        await self._connection.disconnect()

    async def _round_trip(self, calls: list[_Call]) -> list[Any]:
        """All the calls written at once, then every reply read, so the connection stays in step;
        connecting, writing and reading together must finish within the client's socket timeout."""
        connection = self._connection
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_packed_command([call.command() for call in calls])
                replies: list[Any] = []
                for _ in calls:
                    try:  # math.inf: no timer per reply, the one around the round trip holds
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as exc:  # this script's error, not the connection's
                        replies.append(exc)
                return replies
        except TimeoutError:
            await connection.disconnect(nowait=True)  # a reply may be left unread: never reuse it
            raise RedisTimeoutError(f"no reply from Redis within {self._timeout} s") from None
        except BaseException:
            await connection.disconnect(nowait=True)
            raise

    @staticmethod
    async def _load_and_run(call: _Call) -> None:
        try:
            _settle(call, await call.script(keys=call.keys, args=call.args))
        except Exception as exc:
            _settle(call, exc)


def _settle(call: _Call, reply: Any) -> None:
    """Give the caller its reply, or raise to it the error Redis answered for its script."""
    if call.result.done():  # the caller gave up meanwhile
        return
    if isinstance(reply, asyncio.CancelledError):
        call.result.cancel()
    elif isinstance(reply, BaseException):
        call.result.set_exception(reply)
    else:
        call.result.set_result(reply)
