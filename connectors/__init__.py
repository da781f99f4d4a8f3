"""Connector SDK and runtime: a connector names the messages it takes and applies each to its
system; the runtime consumes, deduplicates, retries and dead-letters around it."""

from connectors._effects import EffectLedger
from connectors._http import RETRYABLE_STATUSES, raise_for_target, retry_after_seconds, target_errors
from connectors._retry import RetryPlan
from connectors._runtime import ConnectorRuntime, Decision, Outcome
from connectors._sdk import Connector, Delivery

__all__ = [
    "RETRYABLE_STATUSES",
    "Connector",
    "ConnectorRuntime",
    "Decision",
    "Delivery",
    "EffectLedger",
    "Outcome",
    "RetryPlan",
    "raise_for_target",
    "retry_after_seconds",
    "target_errors",
]
