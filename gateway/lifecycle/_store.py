"""Lifecycle state per return, kept in Redis and changed only in transactions.

Applying an event is one optimistic transaction (``WATCH`` / ``MULTI``): the return's state,
its timeline entries, the work queues it enters or leaves (approvals, inspections), the
quantities already returned against its documents, the event's id in the applied set and the
commands it produced (its outbox) are written together or not at all. A redelivered event
finds its id applied and gets its outbox back, so it changes nothing and the same commands
(same message ids) are published again, which every consumer deduplicates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from gateway.errors import RetryableDeliveryFailure
from gateway.lifecycle._dead_letters import DeadLetterRecord
from gateway.lifecycle._policy import Policy, PolicyBook
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import (
    approvals_queue,
    holds_queue,
    inspections_queue,
    lifecycle_applied,
    lifecycle_outbox,
    lifecycle_state,
    lifecycle_timeline,
    returned_quantities,
)

#: The queue of returns waiting for a person's decision.
APPROVALS = ("approvals",)
#: The queue of returns on hold, waiting for a person to release them.
HOLDS = ("holds",)
#: The Redis key of each kind of work queue (the first part of its name).
_QUEUE_KEYS: dict[str, Callable[..., str]] = {
    "approvals": approvals_queue,
    "holds": holds_queue,
    "inspections": inspections_queue,
}
_TRANSACTION_TRIES = 20
_OUTBOX_SECONDS = 7 * 24 * 3600


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of a return's audit trail; written once, never changed."""

    at: dt.datetime
    action: str
    """requested, validated, status_changed, approval, document_posted, late_event, parked..."""
    actor: dict[str, str]
    message_id: str
    from_status: str | None = None
    to_status: str | None = None
    rule: dict[str, str] | None = None
    documents: list[dict[str, str]] = []
    detail: str | None = None
    dead_letter: dict[str, str] | None = None


class ReturnState(msgspec.Struct, kw_only=True):
    """Where one return stands, and what the lifecycle needs to take it further."""

    return_id: str
    partner: str
    external_id: str
    channel: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    policy: str
    policy_version: str
    request: dict[str, Any]
    resume: str | None = None
    """The status a parked return (posting failed, on hold) left, and goes back to."""
    approvers_needed: int = 0
    approvals: list[dict[str, Any]] = []
    verdict: dict[str, Any] | None = None
    rma_number: str | None = None
    documents: list[dict[str, str]] = []
    basis: dict[str, str] | None = None
    """The ERP document quantities were counted on ({kind, number}), for the returned tally."""
    authorized: list[dict[str, Any]] = []
    """The authorization lines (requested and authorized quantity) the return was authorized with."""
    return_site: str | None = None
    """Where the goods are to be sent, as the authorization named it."""
    inspection: dict[str, Any] | None = None
    """The inspection task issued when the goods arrived: number, site, due by, priority, rule."""
    hold: dict[str, Any] | None = None
    """Why the return is on hold, who held it and when (while it is)."""
    holds: int = 0
    """How many times it was put on hold (numbers each hold, so a retried release is one event)."""
    pending_credit: list[dict[str, Any]] = []
    """Credit lines held back for want of an invoice to credit against (released with one)."""
    credit_invoice: dict[str, Any] | None = None
    """The invoice the person who released the return named, for the credit memo."""
    dead_letters: list[DeadLetterRecord] = []
    """Dead letters announced about the return: open ones until delivered or discarded, and
    the last closed ones."""
    opened: bool = True
    """False while the lifecycle holds the return only because its request (or an event about
    it) died here before it could open it: no request applied yet; a replay of it opens it."""
    parked: list[dict[str, Any]] = []
    """Events that arrived before the return was ready for them (as deliveries), applied later."""

    @property
    def approvals_needed(self) -> int:
        """Approvals that decide it now: one overrides a failed validation, else what the rule asks."""
        return 1 if self.status == "validation_failed" else max(1, self.approvers_needed)

    @property
    def open_dead_letters(self) -> list[DeadLetterRecord]:
        """The return's open exceptions: dead letters neither delivered again nor discarded."""
        return [record for record in self.dead_letters if record.is_open]

    def governed_by(self, book: PolicyBook) -> Policy:
        """The policy the return was opened under (its partner's current one if that was removed)."""
        return book.policies.get(self.policy) or book.for_partner(self.partner)


class Change(msgspec.Struct, kw_only=True):
    """What applying one event does, written in one transaction."""

    state: ReturnState | None
    timeline: list[TimelineEntry] = []
    emitted: list[dict[str, Any]] = []
    """Commands and events to publish, as ``Emitted`` fields (contract, version, payload, message_id)."""
    queues: dict[tuple[str, ...], float | None] = {}
    """Work queues (key parts, e.g. ``("approvals",)``) the return enters, with its rank there (a
    timestamp: oldest or soonest due first), or leaves (``None``)."""
    returned: dict[str, float] = {}
    """Quantities (per SKU) now taken back against the state's basis document."""


#: Decides the change one event makes, given the current state and the quantities already returned.
Decide = Callable[[ReturnState | None, dict[str, float]], Change]

_state = msgspec.json.Decoder(ReturnState)
_entry = msgspec.json.Decoder(TimelineEntry)
_emitted = msgspec.json.Decoder(list[dict[str, Any]])
_json = msgspec.json.Encoder()


def inspections_of(partner: str) -> tuple[str, ...]:
    """The queue of a partner's returns received and not yet inspected, soonest due first."""
    return ("inspections", partner)


class LifecycleStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    # -- keys ---------------------------------------------------------------------------
    def _state_key(self, return_id: str) -> str:
        return lifecycle_state(self._settings, return_id)

    def _timeline_key(self, return_id: str) -> str:
        return lifecycle_timeline(self._settings, return_id)

    def _applied_key(self, return_id: str) -> str:
        return lifecycle_applied(self._settings, return_id)

    def _outbox_key(self, message_id: str) -> str:
        return lifecycle_outbox(self._settings, message_id)

    def returned_key(self, partner: str, basis: dict[str, str]) -> str:
        """Quantities per SKU this gateway authorized against one ERP document of a partner."""
        return returned_quantities(self._settings, partner, basis["kind"], basis["number"])

    def _queue_key(self, queue: tuple[str, ...]) -> str:
        kind, *args = queue
        return _QUEUE_KEYS[kind](self._settings, *args)

    # -- reading ------------------------------------------------------------------------
    async def get(self, return_id: str) -> ReturnState | None:
        with redis_errors():
            raw = await self._redis.get(self._state_key(return_id))
        return None if raw is None else _state.decode(raw)

    async def timeline(self, return_id: str) -> list[TimelineEntry]:
        with redis_errors():
            raw = await self._redis.lrange(self._timeline_key(return_id), 0, -1)
        return [_entry.decode(r) for r in raw]

    async def queued(
        self, queue: tuple[str, ...], limit: int = 500, *, offset: int = 0
    ) -> list[tuple[str, float]]:
        """The returns in one work queue, lowest rank first, with their rank (a timestamp)."""
        with redis_errors():
            raw = await self._redis.zrange(
                self._queue_key(queue), offset, offset + limit - 1, withscores=True
            )
        return [(member.decode() if isinstance(member, bytes) else member, score) for member, score in raw]

    # -- applying -----------------------------------------------------------------------
    async def apply(
        self, return_id: str, message_id: str, decide: Decide, *, basis_of: Callable[[ReturnState], Any]
    ) -> list[dict[str, Any]]:
        """Apply one event to one return exactly once; answer the commands to publish."""
        state_key, applied_key = self._state_key(return_id), self._applied_key(return_id)
        for _ in range(_TRANSACTION_TRIES):
            try:
                with redis_errors():
                    return await self._try(state_key, applied_key, message_id, decide, basis_of)
            except WatchError:
                continue  # another event of the same return got in first: read again
        raise RetryableDeliveryFailure(f"return {return_id} kept changing under event {message_id}")

    async def _try(
        self,
        state_key: str,
        applied_key: str,
        message_id: str,
        decide: Decide,
        basis_of: Callable[[ReturnState], Any],
    ) -> list[dict[str, Any]]:
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(state_key, applied_key)
            if await pipe.sismember(applied_key, message_id):
                outbox = await pipe.get(self._outbox_key(message_id))
                await pipe.unwatch()
                return _emitted.decode(outbox) if outbox else []
            raw = await pipe.get(state_key)
            state = None if raw is None else _state.decode(raw)
            returned_key: str | None = None
            returned: dict[str, float] = {}
            if state is not None and basis_of(state) is not None:
                returned_key = self.returned_key(state.partner, basis_of(state))
                await pipe.watch(returned_key)
                held = await pipe.hgetall(returned_key)
                returned = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in held.items()}
            change = decide(state, returned)
            pipe.multi()
            if change.state is not None:
                pipe.set(state_key, _json.encode(change.state))
                for entry in change.timeline:
                    pipe.rpush(self._timeline_key(change.state.return_id), _json.encode(entry))
                for queue, rank in change.queues.items():
                    if rank is None:
                        pipe.zrem(self._queue_key(queue), change.state.return_id)
                    else:
                        pipe.zadd(self._queue_key(queue), {change.state.return_id: rank})
                if change.returned and change.state.basis is not None:
                    key = self.returned_key(change.state.partner, change.state.basis)
                    for sku, quantity in change.returned.items():
                        pipe.hincrbyfloat(key, sku, quantity)
            pipe.sadd(applied_key, message_id)
            pipe.set(self._outbox_key(message_id), _json.encode(change.emitted), ex=_OUTBOX_SECONDS)
            await pipe.execute()
            return change.emitted
