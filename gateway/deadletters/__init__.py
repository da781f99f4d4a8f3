"""Dead letters operators can work with: browse, replay (optionally corrected), discard, audited."""

from gateway.deadletters._audit import AuditEntry, AuditLog, import_from_redis
from gateway.deadletters._desk import DeadLetterDesk, Progress
from gateway.deadletters._models import (
    BulkReplayResult,
    DeadLetter,
    DeadLetteredBy,
    DeadLetterSummary,
    DiscardResult,
    QueueListing,
    ReplayResult,
)
from gateway.deadletters._reading import dead_letter_id, dead_reason
from gateway.deadletters._replay import corrected_message_id

__all__ = [
    "AuditEntry",
    "AuditLog",
    "BulkReplayResult",
    "DeadLetter",
    "DeadLetterDesk",
    "DeadLetterSummary",
    "DeadLetteredBy",
    "DiscardResult",
    "Progress",
    "QueueListing",
    "ReplayResult",
    "corrected_message_id",
    "dead_letter_id",
    "dead_reason",
    "import_from_redis",
]
