"""The lifecycle's notices about dead letters: ``delivery-failed`` and ``dead-letter-action``.

Given to every connector runtime of the platform, so that a message about a return that ends
in a dead-letter queue shows on the return (an open exception, ``posting_failed`` for a posting)
instead of leaving it waiting in silence, and that the replayed copy's delivery closes it; and
used by the dead-letter desk, which tells what an operator did to such a dead letter.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Literal

from gateway.runtime import DeadLettered, ReplayDelivered
from gateway.sdk import Emitted

DELIVERY_FAILED = "delivery-failed.v1"
DEAD_LETTER_ACTION = "dead-letter-action.v1"
#: The lifecycle's own announcements: never announced in turn, so a notice cannot loop.
ANNOUNCEMENTS = frozenset({DELIVERY_FAILED, DEAD_LETTER_ACTION})
RETURN_ID = re.compile(r"^ret_[0-9a-f]{32}$")

Action = Literal["replayed", "discarded", "delivered"]


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _about_a_return(message_type: str | None, correlation_id: str | None) -> bool:
    return message_type not in ANNOUNCEMENTS and bool(correlation_id and RETURN_ID.match(correlation_id))


def delivery_failed_notice(dead: DeadLettered) -> Emitted | None:
    """``delivery-failed.v1`` about the return the dead letter belongs to.

    ``None`` for a message that names no return, and for an announcement itself.
    """
    delivery, failure = dead.delivery, dead.failure
    if not _about_a_return(delivery.message_type, delivery.correlation_id):
        return None
    payload: dict[str, Any] = {
        "return_id": delivery.correlation_id,
        "connector": dead.connector,
        "message_id": delivery.message_id,
        "message_type": delivery.message_type,
        "error": type(failure).__name__,
        "detail": failure.detail[:2000],
        "attempts": dead.attempts,
        "dead_lettered_at": _stamp(dead.at),
    }
    if failure.status_code is not None:
        payload["status_code"] = failure.status_code
    return Emitted(
        contract="delivery-failed",
        version="v1",
        payload=payload,
        message_id=f"{delivery.message_id}.{dead.connector}.dead.{uuid.uuid4().hex[:8]}",
    )


def replay_delivered_notice(replayed: ReplayDelivered) -> Emitted | None:
    """``dead-letter-action.v1`` *delivered*: the replayed copy of a dead letter about a return
    went through (``None`` for a message that names no return, and for an announcement)."""
    delivery = replayed.delivery
    return dead_letter_action(
        return_id=delivery.correlation_id,
        connector=replayed.connector,
        message_id=replayed.replay_of,
        message_type=delivery.message_type,
        action="delivered",
        actor={"type": "system", "id": replayed.connector},
        at=replayed.at,
        replayed_as=delivery.message_id,
    )


def dead_letter_action(
    *,
    return_id: str | None,
    connector: str,
    message_id: str,
    message_type: str | None,
    action: Action,
    actor: dict[str, str],
    at: dt.datetime,
    replayed_as: str | None = None,
    payload_corrected: bool | None = None,
    reason: str | None = None,
    note: str | None = None,
) -> Emitted | None:
    """``dead-letter-action.v1``: what became of the dead letter ``message_id`` of ``connector``
    (``None`` when it is not about a return, or is an announcement, which has no exception)."""
    if not _about_a_return(message_type, return_id):
        return None
    assert return_id is not None
    payload: dict[str, Any] = {
        "return_id": return_id,
        "connector": connector,
        "message_id": message_id,
        "action": action,
        "actor": actor,
        "at": _stamp(at),
    }
    optional = {
        "message_type": message_type,
        "replayed_as": replayed_as,
        "payload_corrected": payload_corrected,
        "reason": reason[:2000] if reason else None,
        "note": note[:2000] if note else None,
    }
    payload.update({name: value for name, value in optional.items() if value is not None})
    # One discard per dead letter, one delivery per copy; each replay is an act of its own.
    if action == "delivered":
        event_id = f"{replayed_as or message_id}.{connector}.delivered"
    elif action == "discarded":
        event_id = f"{message_id}.{connector}.discarded"
    else:
        event_id = f"{message_id}.{connector}.replayed.{uuid.uuid4().hex[:8]}"
    return Emitted(
        contract="dead-letter-action", version="v1", payload=payload, message_id=event_id, return_id=return_id
    )
