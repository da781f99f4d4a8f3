"""Read a dead letter as browsed: its id, its envelope, and why it died.

The connector runtime says why in ``x-rgw-dead-reason``. The broker, which dead-letters a
poison message over the quorum queue's ``x-delivery-limit`` (a connector process that died
on it every time), leaves only its ``x-death`` bookkeeping, so the reason is synthesized
from that, in the same shape, for the operator to read the same way.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from aio_pika.abc import AbstractMessage

from gateway.broker.headers import ATTEMPT, DEAD_REASON, FIRST_FAILURE, LAST_ERROR, DeadReason
from gateway.deadletters._models import DeadLetter, DeadLetteredBy

#: ``x-death`` reasons as the error an operator reads.
_BROKER_ERRORS = {
    "delivery_limit": "DeliveryLimitExceeded",
    "rejected": "Rejected",
    "expired": "Expired",
    "maxlen": "QueueOverflow",
}


class _Head(msgspec.Struct, kw_only=True):
    """The envelope fields the desk needs, decoded without the payload."""

    message_id: str | None = None
    correlation_id: str | None = None
    contract: str | None = None
    version: str | None = None
    partner: str | None = None


_head_decoder = msgspec.json.Decoder(_Head)


def _head(body: bytes) -> _Head:
    try:
        return _head_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _Head()


def dead_letter_id(message: AbstractMessage) -> str:
    """The envelope's message id; else the AMQP one; else a digest of an id-less body."""
    return (
        _head(message.body).message_id
        or message.message_id
        or f"sha256-{hashlib.sha256(message.body).hexdigest()[:32]}"
    )


def envelope_of(message: AbstractMessage) -> tuple[str | None, str | None, str | None]:
    """The return id (correlation id), partner and message type its envelope names, if any."""
    head = _head(message.body)
    message_type = f"{head.contract}.{head.version}" if head.contract and head.version else None
    return head.correlation_id, head.partner, message_type


def jsonable(value: Any) -> Any:
    """AMQP field values (bytes, datetimes, decimals, nested tables) as JSON values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return _text(value) or ""


def _from_broker(
    deaths: list[Mapping[str, Any]], connector: str, queue: str, delivery_limit: int | None
) -> DeadReason:
    ours = [d for d in deaths if _text(d.get("queue")) == queue] or deaths
    reason = _text(ours[0].get("reason")) or "unknown"
    source = _text(ours[0].get("queue")) or queue
    times = sorted(_iso(d.get("time")) for d in ours if d.get("time") is not None)
    counted = sum(int(d.get("count") or 1) for d in ours)
    if reason == "delivery_limit":
        attempts = delivery_limit + 1 if delivery_limit is not None else counted
        detail = (
            f"the broker dead-lettered it from {source} after {attempts} deliveries (its delivery limit) "
            "with no reason from the runtime: a connector process most likely died or was stopped "
            "while handling it, each time (a poison message)"
        )
    else:
        attempts = counted
        detail = f"the broker dead-lettered it from {source} (x-death reason '{reason}')"
    return DeadReason(
        connector=connector,
        error=_BROKER_ERRORS.get(reason, "BrokerDeadLettered"),
        detail=detail,
        status_code=None,
        attempts=attempts,
        first_failure_at=times[0] if times else "",
        last_failure_at=times[-1] if times else "",
    )


def dead_reason(
    headers: Mapping[str, Any], *, connector: str, queue: str, delivery_limit: int | None
) -> tuple[DeadReason, DeadLetteredBy]:
    """Why the message died: the runtime's reason, else one synthesized from ``x-death``."""
    written = _text(headers.get(DEAD_REASON))
    if written is not None:
        try:
            return msgspec.json.decode(written, type=DeadReason), "runtime"
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # unreadable: fall back to what the broker recorded, then to what we know
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and all(isinstance(d, Mapping) for d in deaths):
        return _from_broker(deaths, connector, queue, delivery_limit), "broker"
    last_error = _text(headers.get(LAST_ERROR))
    first = _iso(headers.get(FIRST_FAILURE))
    return (
        DeadReason(
            connector=connector,
            error="Unknown",
            detail=last_error
            or "no x-rgw-dead-reason or x-death header: it was put here by hand or by another tool",
            status_code=None,
            attempts=int(headers.get(ATTEMPT) or 0),
            first_failure_at=first,
            last_failure_at=first,
        ),
        "unknown",
    )


def _properties(message: AbstractMessage) -> dict[str, Any]:
    found = {
        "content_type": message.content_type,
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "timestamp": message.timestamp,
        "app_id": message.app_id,
    }
    return {k: jsonable(v) for k, v in found.items() if v is not None}


def read_dead_letter(
    message: AbstractMessage, *, connector: str, queue: str, position: int, delivery_limit: int | None
) -> DeadLetter:
    """Everything an operator needs to judge one dead letter, without changing it."""
    headers = dict(message.headers or {})
    reason, by = dead_reason(headers, connector=connector, queue=queue, delivery_limit=delivery_limit)
    try:
        decoded = msgspec.json.decode(message.body)
    except msgspec.DecodeError:
        decoded = None
    envelope = decoded if isinstance(decoded, dict) else None
    head = _head(message.body) if envelope is not None else _Head()
    message_type = f"{head.contract}.{head.version}" if head.contract and head.version else message.type
    return DeadLetter(
        connector=connector,
        message_id=dead_letter_id(message),
        position=position,
        message_type=message_type,
        correlation_id=head.correlation_id or message.correlation_id,
        partner=head.partner,
        dead_lettered_by=by,
        reason=reason,
        properties=_properties(message),
        # Not x-delivery-count: on a dead-letter queue it counts browses, not delivery attempts.
        headers=jsonable({k: v for k, v in headers.items() if k != "x-delivery-count"}),
        envelope=envelope,
        body=None if envelope is not None else message.body.decode("utf-8", "replace"),
    )
