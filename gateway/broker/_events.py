"""The one way the gateway publishes: envelopes, and copies of messages it received.

Every publisher of the project goes through :class:`EventPublisher`: the edge (return
requests, return events, webhooks, EDI), the connector runtime (a connector's events, its
retry and dead-letter copies, the notice of a dead letter) and the dead-letter desk (replays).
A publish is persistent and mandatory, waits for the broker's confirm up to the settings'
``publish_timeout_seconds``, and any way it can fail (connection lost, no confirm in time, a
nack, the message returned as unroutable) becomes :class:`~gateway.errors.BrokerUnavailable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractMessage
from pamqp.commands import Basic

from gateway.broker._confirm import broker_errors
from gateway.broker.names import condition_headers, events_exchange_name
from gateway.envelope import Envelope
from gateway.errors import BrokerUnavailable
from gateway.settings import Settings

CONTENT_TYPE = "application/json"
APP_ID = "returns-gateway"

_json = msgspec.json.Encoder()


def _envelope_message(envelope: Envelope, headers: Mapping[str, str]) -> aio_pika.Message:
    """The AMQP form of an envelope: persistent, with the envelope's ids in the properties."""
    return aio_pika.Message(
        _json.encode(envelope),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        timestamp=envelope.occurred_at,
        type=envelope.message_type,
        app_id=APP_ID,
        headers={
            "x-contract": envelope.contract,
            "x-contract-version": envelope.version,
            "x-partner": envelope.partner,
            "traceparent": envelope.trace.traceparent,
            **headers,
        },
    )


def _copy_message(
    message: AbstractMessage,
    headers: Mapping[str, Any],
    body: bytes | None,
    message_id: str | None,
    content_type: str | None,
) -> aio_pika.Message:
    """A persistent copy of ``message`` with ``headers``; ``body``, ``message_id`` and
    ``content_type`` replace its own when given."""
    return aio_pika.Message(
        message.body if body is None else body,
        headers=dict(headers),
        content_type=content_type or message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id or message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


class EventPublisher:
    """Publishes on one channel, which must be opened with ``publisher_confirms=True`` and
    ``on_return_raises=True``; it returns only once the broker has confirmed."""

    def __init__(self, channel: AbstractChannel, settings: Settings) -> None:
        self._channel = channel
        self._settings = settings
        self._exchanges: dict[str, AbstractExchange] = {}

    async def publish(
        self,
        envelope: Envelope,
        payload: Mapping[str, object] | None = None,
        *,
        doing: str | None = None,
    ) -> None:
        """Publish ``envelope`` to the events exchange, routed by its message type.

        The message carries the headers routes may test: the envelope's partner, and the
        ``channel`` and ``reason_code`` of ``payload`` (the payload's top level) when given.
        """
        await self._confirmed(
            events_exchange_name(self._settings),
            _envelope_message(envelope, condition_headers(envelope.partner, payload or {})),
            routing_key=envelope.message_type,
            doing=doing or f"publishing {envelope.message_id}",
        )

    async def publish_copy(
        self,
        message: AbstractMessage,
        *,
        exchange: str,
        routing_key: str,
        headers: Mapping[str, Any],
        body: bytes | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
        doing: str | None = None,
    ) -> None:
        """Publish a persistent copy of a received ``message`` (a retry, a dead letter, a replay).

        The copy keeps the message's body and identity and carries ``headers`` instead of its
        own; ``body``, ``message_id`` and ``content_type`` replace the message's when given.
        """
        await self._confirmed(
            exchange,
            _copy_message(message, headers, body, message_id, content_type),
            routing_key=routing_key,
            doing=doing or f"copying {message.message_id} to {exchange} '{routing_key}'",
        )

    async def _exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:  # no round trip: the exchange is declared by the topology
            exchange = self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return exchange

    async def _confirmed(
        self, exchange: str, message: aio_pika.Message, *, routing_key: str, doing: str
    ) -> None:
        """Publish mandatory; return only once the broker acknowledged it."""
        with broker_errors(doing):
            confirmation = await (await self._exchange(exchange)).publish(
                message,
                routing_key=routing_key,
                mandatory=True,
                timeout=self._settings.publish_timeout_seconds,
            )
        if not isinstance(confirmation, Basic.Ack):
            raise BrokerUnavailable(f"{doing}: the broker did not acknowledge the message: {confirmation!r}")
