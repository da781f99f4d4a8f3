"""The connector SDK: what a system profile (``connectors/``) imports, and nothing else.

A profile subclasses :class:`Connector` and declares one method per message type it applies
(:func:`handler`); a profile its system calls back (webhooks) is also a :class:`Receiver`. It
talks to its system through :class:`Target` (one shared HTTP client with the system's auth,
timeouts and error format) and raises the delivery failures below; the platform's runtime
decides what follows (retry with backoff, dead letter, circuit breaker) and records the effect
once.

    from gateway.sdk import Connector, Delivery, PermanentDeliveryFailure, handler

Everything here is public and kept stable; the modules behind it are not.
"""

from gateway.errors import DeliveryFailed, NotReadyYet, PermanentDeliveryFailure, RetryableDeliveryFailure
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
    "Inbound",
    "MappingCatalog",
    "MappingFailure",
    "NotReadyYet",
    "PermanentDeliveryFailure",
    "Receiver",
    "RetryableDeliveryFailure",
    "RuntimeContext",
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
