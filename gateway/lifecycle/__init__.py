"""Return lifecycle: the status model, policy rules, the orchestrator and the audit trail."""

from gateway.lifecycle._orchestrator import Orchestrator
from gateway.lifecycle._policy import Policy, PolicyBook, PolicyError
from gateway.lifecycle._status import ROAD, TRANSITIONS, IllegalTransition, check_move, contract_statuses
from gateway.lifecycle._store import LifecycleStore, ReturnState, TimelineEntry

__all__ = [
    "ROAD",
    "TRANSITIONS",
    "IllegalTransition",
    "LifecycleStore",
    "Orchestrator",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "ReturnState",
    "TimelineEntry",
    "check_move",
    "contract_statuses",
]
