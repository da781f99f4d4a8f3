"""How the desk talks to RabbitMQ: browse a queue without taking from it, publish with confirms.

RabbitMQ has no random access into a queue. A browse takes messages one by one with
``basic.get`` and no ack, on a channel of its own; closing that channel returns every
message it did not acknowledge to the queue, in its place. So a browse that ends in any
way (done, refused, failed, the process killed) leaves the queue as it was; only what is
acknowledged on purpose leaves it, and only after its replay copy is confirmed.

The connection is plain, opened on first use and again on the next use after it was lost;
a robust one would restore a browse on a new channel mid-way, where it would meet the
messages it held a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from gateway.broker import EventPublisher, broker_errors
from gateway.errors import BrokerUnavailable
from gateway.routing import QUORUM
from gateway.settings import Settings


async def _declare(channel: AbstractChannel, queue_name: str) -> AbstractQueue:
    # Declared as the routing topology declares it: the declare-ok counts the ready messages
    # exactly, where a passive declare of a quorum queue may answer with a stale count.
    return await channel.declare_queue(queue_name, durable=True, arguments=QUORUM)


async def _close_quietly(channel: AbstractChannel) -> None:
    """Close after a failure; if that fails too the connection is gone, which returns held messages."""
    if not channel.is_closed:
        with contextlib.suppress(*CONNECTION_EXCEPTIONS, TimeoutError):
            await channel.close()


class Browse:
    """One pass over a queue; every message it takes stays the queue's until acknowledged."""

    def __init__(self, queue: AbstractQueue, depth: int, timeout: float) -> None:
        self._queue = queue
        self._timeout = timeout
        self.depth = depth
        """Messages ready in the queue when the browse began."""
        self.taken = 0
        self.removed = 0

    async def next(self) -> AbstractIncomingMessage | None:
        """The next message in the queue, held (not removed); ``None`` at its end."""
        with broker_errors("browsing the dead-letter queue"):
            message = await self._queue.get(no_ack=False, fail=False, timeout=self._timeout)
        if message is not None:
            self.taken += 1
        return message

    async def remove(self, message: AbstractIncomingMessage) -> None:
        """Take ``message`` out of the queue for good."""
        with broker_errors("acknowledging the dead letter"):
            await message.ack()
        self.removed += 1


class DeskBroker:
    """The desk's own connection, and the two kinds of channel it opens per operation."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.publish_timeout_seconds
        self._connection: AbstractConnection | None = None
        self._connecting = asyncio.Lock()
        self._closed = False

    async def _connected(self) -> AbstractConnection:
        async with self._connecting:
            if self._closed:
                raise BrokerUnavailable("the dead-letter desk is closed")
            if self._connection is None or self._connection.is_closed:
                with broker_errors("connecting to the broker"):
                    self._connection = await aio_pika.connect(
                        self._settings.amqp_url,
                        timeout=self._timeout,
                        client_properties={
                            "connection_name": f"returns-gateway:{self._settings.namespace}:dead-letters"
                        },
                    )
            return self._connection

    @contextlib.asynccontextmanager
    async def browsing(self, queue_name: str) -> AsyncIterator[Browse]:
        """Browse ``queue_name``; on leaving, whatever was not removed goes back in its place."""
        connection = await self._connected()
        with broker_errors(f"opening {queue_name}"):
            channel = await connection.channel(publisher_confirms=False)
        browse: Browse | None = None
        try:
            with broker_errors(f"opening {queue_name}"):
                queue = await _declare(channel, queue_name)
            browse = Browse(queue, queue.declaration_result.message_count or 0, self._timeout)
            yield browse
        except BaseException as exc:
            await _close_quietly(channel)
            if browse is not None and isinstance(exc, Exception):  # not when cancelled
                with contextlib.suppress(BrokerUnavailable):
                    await self._returned(connection, queue_name, browse)
            raise
        # Closing returns every held message; the close-ok also tells that acknowledgements sent
        # before it were processed, so a removal is only reported once it took effect.
        with broker_errors(f"closing {queue_name}"):
            await channel.close()
        await self._returned(connection, queue_name, browse)

    async def _returned(self, connection: AbstractConnection, queue_name: str, browse: Browse) -> None:
        """Wait, briefly, until what a closed browse held is back in the queue.

        A quorum queue takes the messages of a closed channel back a moment after the close-ok;
        the next operation must not find the queue short of them (a false "not found").
        Gives up quietly after the timeout: another browse elsewhere may be holding some.
        """
        if browse.taken <= browse.removed:
            return
        expected = browse.depth - browse.removed
        deadline = asyncio.get_running_loop().time() + self._timeout
        delay = 0.002
        with broker_errors(f"counting {queue_name}"):
            async with connection.channel(publisher_confirms=False) as channel:
                while (
                    (await _declare(channel, queue_name)).declaration_result.message_count or 0
                ) < expected:
                    if asyncio.get_running_loop().time() > deadline:
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)

    @contextlib.asynccontextmanager
    async def confirming(self) -> AsyncIterator[EventPublisher]:
        """A publisher on a channel of its own, with confirms, for the length of one operation."""
        connection = await self._connected()
        with broker_errors("opening a confirming channel"):
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            yield EventPublisher(channel, self._settings)
        finally:
            await _close_quietly(channel)

    async def aclose(self) -> None:
        """Close the connection; safe to call twice."""
        async with self._connecting:
            self._closed = True
            connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS, TimeoutError):
                await connection.close()
