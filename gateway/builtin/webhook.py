"""A connector that posts each canonical message, as it is, to an HTTP endpoint.

For targets that already speak the canonical contracts (a partner portal, an iPaaS, a
customer's own middleware) and as the simplest connector to start from. Options:

``path``
    where to post, relative to the target's ``base_url`` (default ``/``).

The body is the canonical envelope; the ``Idempotency-Key`` header is the message id, so
the receiver can ignore a repeat.
"""

from __future__ import annotations

import msgspec

from gateway.sdk import Connector, Delivery


class WebhookConnector(Connector):
    """POST the envelope to ``options.path`` on the target.

    It declares no message types (no ``@handler``): it takes whatever its routes send, so it
    writes ``handle`` itself."""

    async def handle(self, delivery: Delivery) -> None:
        await self.target.post(
            str(self.options.get("path", "/")),
            content=msgspec.json.encode(delivery),
            headers={"Content-Type": "application/json", "X-Message-Type": delivery.message_type},
            idempotency_key=delivery.idempotency_key,
        )
