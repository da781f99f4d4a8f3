"""What the dead-letter desk shows and answers: summaries, full detail, and outcomes of actions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from gateway.broker.headers import DeadReason

#: Who put the message in the dead-letter queue: the connector runtime (with its reason header),
#: the broker itself (``x-death`` only, e.g. over the delivery limit), or nobody we know of.
DeadLetteredBy = Literal["runtime", "broker", "unknown"]


class DeadLetterSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter as listed: enough to decide whether to look closer."""

    message_id: str
    position: int
    """0-based place in the dead-letter queue when it was browsed."""
    message_type: str | None
    """``return-request.v1``; ``None`` when the body is not an envelope."""
    correlation_id: str | None
    partner: str | None
    dead_lettered_by: DeadLetteredBy
    reason: DeadReason


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter in full: the envelope, every header, and why it is here."""

    connector: str
    message_id: str
    position: int
    message_type: str | None
    correlation_id: str | None
    partner: str | None
    dead_lettered_by: DeadLetteredBy
    reason: DeadReason
    properties: dict[str, Any]
    """AMQP properties (content type, ids, type, timestamp, app id)."""
    headers: dict[str, Any]
    """AMQP headers as stored, made JSON-safe (``x-delivery-count`` left out: on a dead-letter
    queue it counts browses, not delivery attempts)."""
    envelope: dict[str, Any] | None
    """The decoded envelope; ``None`` when the body is not a JSON object."""
    body: str | None = None
    """The raw body as text, only when it is not a JSON object (an undecodable message)."""

    def summary(self) -> DeadLetterSummary:
        return DeadLetterSummary(
            message_id=self.message_id,
            position=self.position,
            message_type=self.message_type,
            correlation_id=self.correlation_id,
            partner=self.partner,
            dead_lettered_by=self.dead_lettered_by,
            reason=self.reason,
        )


class QueueListing(msgspec.Struct, frozen=True, kw_only=True):
    """A connector's dead-letter queue: how deep it is and the first dead letters in it."""

    connector: str
    queue: str
    depth: int
    """Messages waiting in the queue when it was browsed."""
    dead_letters: list[DeadLetterSummary]


class ReplayResult(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter sent back to its connector."""

    connector: str
    message_id: str
    """The dead letter's message id."""
    replayed_as: str
    """The message id of the copy on the connector queue: the same, unless the payload was corrected."""
    payload_corrected: bool
    replayed_at: dt.datetime


class BulkReplayResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay of a whole dead-letter queue did."""

    connector: str
    depth_at_start: int
    """Only this many are replayed, so a message that dies again is not replayed in a loop."""
    replayed: int
    message_ids: list[str]


class DiscardResult(msgspec.Struct, frozen=True, kw_only=True):
    """One dead letter removed for good."""

    connector: str
    message_id: str
    reason: str
    discarded_at: dt.datetime
