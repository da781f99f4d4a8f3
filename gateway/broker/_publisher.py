"""Confirmed, persistent, mandatory publishing of envelopes to RabbitMQ.

A return is accepted only once the broker has confirmed it, so every failure here
(broker down, connection cut mid-publish, nack, unroutable return, no confirm in time)
becomes :class:`~gateway.errors.BrokerUnavailable` and the client is told to retry.
Reconnection is aio-pika's robust connection; only the very first connect, which aio-pika
does not retry, is retried here in the background.
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

from gateway.broker._confirm import publish_confirmed
from gateway.broker._topology import declare_edge_topology
from gateway.envelope import Envelope
from gateway.errors import BrokerUnavailable
from gateway.settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"

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


def to_amqp_message(
    envelope: Envelope, body: bytes, extra_headers: Mapping[str, str] | None = None
) -> aio_pika.Message:
    """The AMQP form of an envelope: persistent, with the envelope's ids in the properties."""
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        timestamp=envelope.occurred_at,
        type=envelope.message_type,
        app_id="returns-gateway",
        headers={
            "x-contract": envelope.contract,
            "x-contract-version": envelope.version,
            "x-partner": envelope.partner,
            "traceparent": envelope.trace.traceparent,
            **(extra_headers or {}),
        },
    )


class BrokerPublisher:
    """Owns the gateway's connection to RabbitMQ and publishes envelopes with confirms."""

    def __init__(self, settings: Settings, *, topology: TopologyStep | None = None) -> None:
        self._settings = settings
        self._topology = topology
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
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
        self._connection, self._channel, self._exchange = connection, channel, exchange

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

    async def publish(
        self, envelope: Envelope, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish and wait for the broker's confirm; :class:`BrokerUnavailable` on any failure.

        ``headers`` are added to the message, e.g. the routing table's content conditions.
        """
        if not self.ready or self._exchange is None:
            raise BrokerUnavailable("not connected to the broker")
        await publish_confirmed(
            self._exchange,
            to_amqp_message(envelope, body, headers),
            routing_key=envelope.message_type,
            confirm_within=self._settings.publish_timeout_seconds,
            doing=f"publishing {envelope.message_id}",
        )

    async def close(self) -> None:
        """Stop connecting and close the connection; safe to call twice."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None:
            await connection.close()
