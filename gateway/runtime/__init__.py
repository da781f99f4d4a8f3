"""The connector runtime: one process per connector consumes its queue, applies each message
once (effect ledger), retries with backoff, breaks the circuit to a failing target, and
dead-letters what cannot be delivered. Connectors themselves are written against
:mod:`gateway.sdk`; the runtime loads them by the routing table's ``use: module:Class``.
It knows nothing of returns: what to announce about a dead letter, and about a replayed one
that went through, are notices it is given (:mod:`gateway.worker` gives it the lifecycle's).
"""

from gateway.errors import CircuitOpen
from gateway.runtime._circuit import TargetCircuit
from gateway.runtime._effects import EffectLedger
from gateway.runtime._loading import build_connector, connector_class
from gateway.runtime._retry import RetryPlan
from gateway.runtime._runtime import (
    ConnectorRuntime,
    DeadLettered,
    DeadLetterNotice,
    Decision,
    Outcome,
    ReplayDelivered,
    ReplayNotice,
)
from gateway.runtime._topology import declare_topology

__all__ = [
    "CircuitOpen",
    "ConnectorRuntime",
    "DeadLetterNotice",
    "DeadLettered",
    "Decision",
    "EffectLedger",
    "Outcome",
    "ReplayDelivered",
    "ReplayNotice",
    "RetryPlan",
    "TargetCircuit",
    "build_connector",
    "connector_class",
    "declare_topology",
]
