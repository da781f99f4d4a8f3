"""The copy a replay puts back on a connector's queue.

Same body and properties; the failure headers go, so the runtime starts over (attempt 1,
a fresh backoff), and two headers say when and what it replays. A plain replay keeps the
message id: if the message was in fact applied before, the runtime's effect ledger (keyed
on the message id) applies it no second time. A corrected payload is checked against the
envelope's contract first, and the copy gets a new id derived from the dead letter's and a
digest of the payload, so replaying the same correction twice is still applied once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import msgspec
from aio_pika.abc import AbstractMessage

from gateway.broker.headers import FAILURE_HEADERS, REPLAY_OF, REPLAYED_AT
from gateway.errors import ContractViolation, Violation
from gateway.intake.payloads import violation_of
from gateway.registry import ContractRegistry
from gateway.routing import condition_headers

#: The broker's own dead-letter bookkeeping; a replay starts over without it too.
BROKER_DEATH_HEADERS = (
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)

_FIX = re.compile(r"\.fix-[0-9a-f]{20}$")
_canonical = msgspec.json.Encoder(order="sorted")


def corrected_message_id(message_id: str, payload: Any) -> str:
    """``<original>.fix-<digest of the payload>``; an earlier correction's suffix is replaced,
    not stacked, so ids stay short enough to serve as a target's idempotency key."""
    digest = hashlib.sha256(_canonical.encode(payload)).hexdigest()[:20]
    return f"{_FIX.sub('', message_id)}.fix-{digest}"


class Correction(msgspec.Struct, frozen=True, kw_only=True):
    """A checked, corrected envelope, ready to be sent under its new message id."""

    message_id: str
    body: bytes
    headers: dict[str, str]


def correct(
    dead: AbstractMessage, message_id: str, payload: Any, registry: ContractRegistry
) -> Correction | None:
    """Check ``payload`` against the dead letter's contract and build the corrected envelope.

    ``None`` when ``payload`` is the payload already there (then it is a plain replay).
    Raises :class:`ContractViolation` (nothing is changed) when it does not conform.
    """
    try:
        envelope = msgspec.json.decode(dead.body)
    except msgspec.DecodeError:
        envelope = None
    if not isinstance(envelope, dict) or not all(
        isinstance(envelope.get(k), str) for k in ("contract", "version", "partner")
    ):
        raise ContractViolation(
            "the dead letter is not an envelope; it can only be replayed as it is",
            [Violation("", "no contract to check a corrected payload against")],
        )
    name, version = envelope["contract"], envelope["version"]
    contract = registry.get(name, version)
    if contract is None:
        raise ContractViolation(
            f"contract {name} {version} is not installed here; a corrected payload cannot be checked",
            [Violation("", f"unknown contract {name} {version}")],
        )
    refusal = contract.check(payload)
    if refusal:
        raise violation_of(refusal, f"{name} {version}")
    if _canonical.encode(payload) == _canonical.encode(envelope.get("payload")):
        return None
    new_id = corrected_message_id(message_id, payload)
    envelope["message_id"] = new_id
    envelope["payload"] = payload
    return Correction(
        message_id=new_id,
        body=msgspec.json.encode(envelope),
        headers=condition_headers(envelope["partner"], payload) if isinstance(payload, dict) else {},
    )


class ReplayCopy(msgspec.Struct, frozen=True, kw_only=True):
    """How the copy a replay publishes differs from the dead letter (the rest it keeps)."""

    headers: dict[str, Any]
    body: bytes | None
    """``None``: the dead letter's own."""
    message_id: str
    content_type: str


def replay_message(
    dead: AbstractMessage, *, message_id: str, replayed_at: dt.datetime, correction: Correction | None
) -> ReplayCopy:
    """The copy to publish: failure headers reset, replay headers set."""
    headers: dict[str, Any] = {
        k: v for k, v in (dead.headers or {}).items() if k not in FAILURE_HEADERS + BROKER_DEATH_HEADERS
    }
    if correction is not None:
        headers.update(correction.headers)
    headers[REPLAYED_AT] = replayed_at.isoformat()
    headers[REPLAY_OF] = message_id
    return ReplayCopy(
        headers=headers,
        body=correction.body if correction is not None else None,
        message_id=correction.message_id if correction is not None else (dead.message_id or message_id),
        content_type=dead.content_type or "application/json",
    )
