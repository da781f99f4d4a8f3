"""The canonical envelope every message travels in, whatever its contract."""

from __future__ import annotations

import datetime as dt
import re
import secrets

import msgspec

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class TraceContext(msgspec.Struct, frozen=True, omit_defaults=True):
    """W3C trace context, carried so a return can be followed across every system."""

    traceparent: str
    tracestate: str | None = None


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Metadata around a canonical payload; the payload is kept byte for byte as accepted."""

    message_id: str
    """Unique per message; consumers deduplicate on it."""
    correlation_id: str
    """Shared by every message about the same return (the return id)."""
    contract: str
    version: str
    partner: str
    occurred_at: dt.datetime
    trace: TraceContext
    payload: msgspec.Raw
    causation_id: str | None = None

    @property
    def message_type(self) -> str:
        """``return-request.v1``: the routing key and the AMQP ``type``."""
        return f"{self.contract}.{self.version}"


def trace_context(traceparent: str | None, tracestate: str | None) -> TraceContext:
    """Continue the caller's trace when it sent a valid ``traceparent``, else start one."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
            child = f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"
            return TraceContext(child, tracestate)
    return TraceContext(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")
