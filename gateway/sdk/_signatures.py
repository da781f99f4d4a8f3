"""Verifying a signed webhook: the shared secret from the environment, and an HMAC-SHA256
over the raw body, compared in constant time. Each system only differs in its header and in
how it writes the digest (``sha256=<hex>``, ``hmac-sha256-hex=<hex>``).

Signing our own webhooks to partners: the same HMAC, over ``<unix seconds>.<body>`` so a
receiver can refuse a replayed request (:func:`timestamped_signature`)."""

from __future__ import annotations

import hashlib
import hmac
import os
import unicodedata
from collections.abc import Mapping
from typing import Any

from gateway.sdk._connector import Inbound, WebhookRejected


def webhook_secret(options: Mapping[str, Any], connector: str) -> str:
    """The secret named by ``options.webhook_secret_env``. Missing, we cannot judge any webhook:
    503, so the system keeps it and sends it again once we are configured."""
    variable = options.get("webhook_secret_env")
    secret = os.environ.get(str(variable)) if variable else None
    if not secret:
        raise WebhookRejected(503, f"connector {connector}: no webhook secret (options.webhook_secret_env)")
    return secret


def hmac_hex(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``body``; the secret NFKD-normalised, as the systems' own libraries do."""
    return hmac.new(unicodedata.normalize("NFKD", secret).encode(), body, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``, the ``RGW-Signature`` header."""
    return f"t={timestamp},v1={hmac_hex(secret, str(timestamp).encode() + b'.' + body)}"


def verify_signature(inbound: Inbound, *, secret: str, header: str, prefix: str) -> None:
    """Raise ``WebhookRejected(401)`` unless ``header`` holds ``prefix`` + the body's HMAC."""
    given = next((value for name, value in inbound.headers.items() if name.lower() == header.lower()), None)
    if not given:
        raise WebhookRejected(401, f"{header} header missing")
    expected = prefix + hmac_hex(secret, inbound.body)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise WebhookRejected(401, f"{header} does not match the body")
