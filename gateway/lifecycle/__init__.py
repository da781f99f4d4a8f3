"""Return lifecycle: the status model, policy rules, the orchestrator and the audit trail."""

from gateway.lifecycle._dead_letters import DeadLetterRecord
from gateway.lifecycle._import import import_from_redis
from gateway.lifecycle._notice import dead_letter_action, delivery_failed_notice, replay_delivered_notice
from gateway.lifecycle._orchestrator import Orchestrator
from gateway.lifecycle._outbox import OutboxRelay
from gateway.lifecycle._policy import Policy, PolicyBook, PolicyError
from gateway.lifecycle._rules import Verdict, authorized_credit
from gateway.lifecycle._status import (
    ROAD,
    TRANSITIONS,
    IllegalTransition,
    ReturnStatus,
    check_move,
    contract_statuses,
    may_hold,
)
from gateway.lifecycle._step import WAITING
from gateway.lifecycle._store import (
    APPROVALS,
    HOLDS,
    Hold,
    InspectionTask,
    LifecycleStore,
    ReturnState,
    TimelineEntry,
    inspections_of,
)

__all__ = [
    "APPROVALS",
    "HOLDS",
    "ROAD",
    "TRANSITIONS",
    "WAITING",
    "DeadLetterRecord",
    "Hold",
    "IllegalTransition",
    "InspectionTask",
    "LifecycleStore",
    "Orchestrator",
    "OutboxRelay",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "ReturnState",
    "ReturnStatus",
    "TimelineEntry",
    "Verdict",
    "authorized_credit",
    "check_move",
    "contract_statuses",
    "dead_letter_action",
    "delivery_failed_notice",
    "import_from_redis",
    "inspections_of",
    "may_hold",
    "replay_delivered_notice",
]
