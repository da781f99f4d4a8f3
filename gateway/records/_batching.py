"""Statements of concurrent requests coalesced into one, so a busy gateway pays one round trip
and one commit (one fsync) for many accepted returns.

Shaped like :class:`gateway.intake.batching.ScriptBatcher` (group commit): one batch in flight
at a time, the calls made meanwhile wait for the next, so batches grow with the load while a lone
request is sent at the end of the current loop turn. Each caller gets its own result, or the
batch's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

MAX_BATCH = 64
"""Items per statement; a longer queue is sent as several batches."""
LINGER_SECONDS = 0.002
"""Under load (the previous batch carried more than one item), how long the next batch waits for
the calls on their way, as the Redis batcher does; a lone request never waits."""


class StatementBatcher(Generic[In, Out]):
    """Runs ``run`` on the items of concurrent callers, up to ``in_flight`` batches at a time (a
    batch that waits for an fsync need not hold back the calls made meanwhile)."""

    def __init__(
        self, run: Callable[[Sequence[In]], Awaitable[Sequence[Out]]], *, in_flight: int = 1
    ) -> None:
        self._run = run
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._in_flight = in_flight
        self._senders = 0  # counted in the senders themselves: no gap between the last item and the count
        self._tasks: set[asyncio.Task[None]] = set()  # held, so a running sender is never collected
        self._loaded = False

    async def submit(self, item: In) -> Out:
        """``run``'s result for ``item``, computed with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Out] = loop.create_future()
        self._queue.append((item, result))
        if self._senders < self._in_flight:
            self._senders += 1
            sender = loop.create_task(self._send_waiting())
            self._tasks.add(sender)
            sender.add_done_callback(self._tasks.discard)
        return await result

    async def _send_waiting(self) -> None:
        try:
            while self._queue:
                if self._loaded and len(self._queue) < MAX_BATCH:
                    await asyncio.sleep(LINGER_SECONDS)
                batch = [(item, result) for item, result in self._queue[:MAX_BATCH] if not result.done()]
                del self._queue[:MAX_BATCH]
                self._loaded = len(batch) > 1
                if batch:
                    await self._send(batch)
        except BaseException as exc:  # the loop is closing: nobody is left to send the rest
            waiting, self._queue = self._queue, []
            for _, result in waiting:
                _settle(result, exc)
            raise
        finally:  # no await between the empty queue and this: a new call always finds a sender
            self._senders -= 1

    async def _send(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            outputs = await self._run([item for item, _ in batch])
        except BaseException as exc:
            for _, result in batch:
                _settle(result, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, result), output in zip(batch, outputs, strict=True):
            _settle(result, output)


def _settle(result: asyncio.Future[Out], value: Out | BaseException) -> None:
    if result.done():  # the caller gave up meanwhile
        return
    if isinstance(value, asyncio.CancelledError):
        result.cancel()
    elif isinstance(value, BaseException):
        result.set_exception(value)
    else:
        result.set_result(value)
