"""The lifecycle's notice of a dead letter: ``delivery-failed``.

Given to every connector runtime of the platform, so that a message about a return that ends
in a dead-letter queue parks the return visibly (``posting_failed`` and the like) instead of
leaving it waiting in silence.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from gateway.runtime import DeadLettered
from gateway.sdk import Emitted

DELIVERY_FAILED = "delivery-failed.v1"
RETURN_ID = re.compile(r"^ret_[0-9a-f]{32}$")


def delivery_failed_notice(dead: DeadLettered) -> Emitted | None:
    """``delivery-failed.v1`` about the return the dead letter belongs to.

    ``None`` for a message that names no return, and for a ``delivery-failed`` itself: an
    announcement is never announced, so a notice cannot loop.
    """
    delivery, failure = dead.delivery, dead.failure
    if delivery.message_type == DELIVERY_FAILED or not RETURN_ID.match(delivery.correlation_id):
        return None
    payload: dict[str, Any] = {
        "return_id": delivery.correlation_id,
        "connector": dead.connector,
        "message_id": delivery.message_id,
        "message_type": delivery.message_type,
        "error": type(failure).__name__,
        "detail": failure.detail[:2000],
        "attempts": dead.attempts,
        "dead_lettered_at": dead.at.isoformat().replace("+00:00", "Z"),
    }
    if failure.status_code is not None:
        payload["status_code"] = failure.status_code
    return Emitted(
        contract="delivery-failed",
        version="v1",
        payload=payload,
        message_id=f"{delivery.message_id}.{dead.connector}.dead.{uuid.uuid4().hex[:8]}",
    )
