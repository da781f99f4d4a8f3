"""Headers the delivery path writes on a message, and the dead-letter reason it carries.

Shared by the connector runtime (which writes them) and the dead-letter desk (which reads
them, and resets them on replay), so both agree on one spelling.
"""

from __future__ import annotations

import msgspec

ATTEMPT = "x-rgw-attempt"
"""1 on the first try; the runtime raises it when it schedules a retry."""
DEFERRALS = "x-rgw-deferrals"
"""How often the message waited for what it depends on (:class:`~gateway.errors.NotReadyYet`)."""
FIRST_FAILURE = "x-rgw-first-failure-at"
LAST_ERROR = "x-rgw-last-error"
DEAD_REASON = "x-rgw-dead-reason"
"""JSON :class:`DeadReason`, on every message the runtime dead-letters."""
REPLAYED_AT = "x-rgw-replayed-at"
REPLAY_OF = "x-rgw-replay-of"

#: What a retry or dead letter accumulates; a replay starts over without them.
FAILURE_HEADERS = (ATTEMPT, DEFERRALS, FIRST_FAILURE, LAST_ERROR, DEAD_REASON, "x-death", "x-delivery-count")


class DeadReason(msgspec.Struct, frozen=True, kw_only=True):
    """Why a message was dead-lettered: what an operator reads before replaying or discarding."""

    connector: str
    error: str
    detail: str
    status_code: int | None
    attempts: int
    first_failure_at: str
    last_failure_at: str
