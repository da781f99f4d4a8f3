"""The edge's connection to RabbitMQ, publishing envelopes with confirms.

A return is accepted only once the broker has confirmed it, so every failure here
(broker down, connection cut mid-publish, nack, unroutable return, no confirm in time)
becomes :class:`~gateway.errors.BrokerUnavailable` and the client is told to retry.
Reconnection is aio-pika's robust connection; only the very first connect, which aio-pika
does not retry, is retried here in the background. Publishing is the
:class:`~gateway.broker.EventPublisher`'s, on the connection's one confirming channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from tenacity import AsyncRetrying, before_sleep_log, retry_if_exception_type, wait_exponential_jitter

from gateway.broker._events import EventPublisher
from gateway.broker._topology import declare_edge_topology
from gateway.envelope import Envelope
from gateway.errors import BrokerUnavailable
from gateway.settings import Settings

log = logging.getLogger(__name__)

#: First connection: keep trying, backing off to 10 s between attempts, until stopped.
initial_connect_wait = wait_exponential_jitter(multiplier=0.2, max=10)


def until_connected() -> AsyncRetrying:
    """A first connection to the broker: retried until it works (aio-pika's robust connection
    only takes over once connected), backing off to 10 s, each failure logged."""
    return AsyncRetrying(
        wait=initial_connect_wait,
        retry=retry_if_exception_type((*CONNECTION_EXCEPTIONS, TimeoutError)),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )


#: Declares more topology on the publishing channel once the events exchange exists.
TopologyStep = Callable[[AbstractChannel, AbstractExchange], Awaitable[object]]


class BrokerPublisher:
    """Owns the gateway's connection to RabbitMQ and publishes envelopes with confirms."""

    def __init__(self, settings: Settings, *, topology: TopologyStep | None = None) -> None:
        self._settings = settings
        self._topology = topology
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._events: EventPublisher | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect now if the broker is there; otherwise keep trying in the background."""
        try:
            await self._connect()
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            log.warning("broker not reachable at start-up, retrying in background: %s", exc)
            self._connecting = asyncio.create_task(self._connect_until_up(), name="broker-connect")

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._settings.amqp_url,
            timeout=self._settings.publish_timeout_seconds,
            client_properties={"connection_name": f"returns-gateway:{self._settings.namespace}"},
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await declare_edge_topology(channel, self._settings)
            if self._topology is not None:
                await self._topology(channel, exchange)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._channel = connection, channel
        self._events = EventPublisher(channel, self._settings)

    async def _connect_until_up(self) -> None:
        async for attempt in until_connected():
            with attempt:
                await self._connect()

    @property
    def ready(self) -> bool:
        """True while a connection and channel are open and able to publish."""
        connection, channel = self._connection, self._channel
        return (
            connection is not None
            and channel is not None
            and connection.connected.is_set()
            and not channel.is_closed
        )

    async def publish(self, envelope: Envelope, payload: Mapping[str, object] | None = None) -> None:
        """Publish and wait for the broker's confirm; :class:`BrokerUnavailable` on any failure.

        ``payload``'s top level gives the headers routes may test, besides the partner
        (see :meth:`EventPublisher.publish`).
        """
        events = self._events
        if not self.ready or events is None:
            raise BrokerUnavailable("not connected to the broker")
        await events.publish(envelope, payload)

    async def close(self) -> None:
        """Stop connecting and close the connection; safe to call twice."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        connection, self._connection, self._channel, self._events = self._connection, None, None, None
        if connection is not None:
            await connection.close()
