"""A persistent copy of a message the broker delivered, to publish somewhere else.

The runtime sends copies to a retry tier or a dead-letter queue, the dead-letter desk sends
them back to a connector: each keeps the body and the message's identity, and says what
happened to it in its own headers.
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractMessage


def persistent_copy(
    message: AbstractMessage,
    *,
    headers: dict[str, Any],
    body: bytes | None = None,
    message_id: str | None = None,
    content_type: str | None = None,
) -> aio_pika.Message:
    """``message`` with ``headers``; ``body``, ``message_id`` and ``content_type`` replace its own."""
    return aio_pika.Message(
        message.body if body is None else body,
        headers=headers,
        content_type=content_type or message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id or message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )
