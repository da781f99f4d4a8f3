"""Connector SDK and runtime: a connector names the messages it takes and applies each to its
system; the runtime consumes, deduplicates, retries, breaks circuits and dead-letters around it."""

from connectors._circuit import CircuitOpen, TargetCircuit
from connectors._effects import EffectLedger
from connectors._http import RETRYABLE_STATUSES, raise_for_target, retry_after_seconds, target_errors
from connectors._loading import build_connector, connector_class
from connectors._retry import RetryPlan
from connectors._runtime import ConnectorRuntime, Decision, Outcome
from connectors._sdk import Connector, Delivery, Emitted, RuntimeContext
from connectors._target import Target, TargetConfigError

__all__ = [
    "RETRYABLE_STATUSES",
    "CircuitOpen",
    "Connector",
    "ConnectorRuntime",
    "Decision",
    "Delivery",
    "EffectLedger",
    "Emitted",
    "Outcome",
    "RetryPlan",
    "RuntimeContext",
    "Target",
    "TargetCircuit",
    "TargetConfigError",
    "build_connector",
    "connector_class",
    "raise_for_target",
    "retry_after_seconds",
    "target_errors",
]
