"""The connector SDK: what a system profile (``connectors/``) imports, and nothing else.

A profile subclasses :class:`Connector`, names the message types it applies, and talks to its
system through :class:`Target` (one shared HTTP client with the system's auth, timeouts and
error format). It raises the delivery failures below; the platform's runtime decides what
follows (retry with backoff, dead letter, circuit breaker) and records the effect once.

    from gateway.sdk import Connector, Delivery, PermanentDeliveryFailure

Everything here is public and kept stable; the modules behind it are not.
"""

from gateway.errors import (
    DeliveryFailed,
    GatewayError,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    StoreUnavailable,
)
from gateway.mapping import MappingCatalog, MappingFailure
from gateway.sdk._connector import (
    Connector,
    Delivery,
    Emitted,
    Inbound,
    Receiver,
    RuntimeContext,
    WebhookRejected,
    handler,
)
from gateway.sdk._http import (
    RETRYABLE_STATUSES,
    ErrorReader,
    TargetError,
    plain_error,
    raise_for_target,
    reply_json,
    retry_after_seconds,
    target_errors,
)
from gateway.sdk._signatures import hmac_hex, timestamped_signature, verify_signature, webhook_secret
from gateway.sdk._target import Target, TargetConfigError

__all__ = [
    "RETRYABLE_STATUSES",
    "Connector",
    "Delivery",
    "DeliveryFailed",
    "Emitted",
    "ErrorReader",
    "GatewayError",
    "Inbound",
    "MappingCatalog",
    "MappingFailure",
    "PermanentDeliveryFailure",
    "Receiver",
    "RetryableDeliveryFailure",
    "RuntimeContext",
    "StoreUnavailable",
    "Target",
    "TargetConfigError",
    "TargetError",
    "WebhookRejected",
    "handler",
    "hmac_hex",
    "plain_error",
    "raise_for_target",
    "reply_json",
    "retry_after_seconds",
    "target_errors",
    "timestamped_signature",
    "verify_signature",
    "webhook_secret",
]
