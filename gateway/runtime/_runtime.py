"""The connector runtime: consume a connector's queue, apply each message once, and decide.

For every message the decision is named (:class:`Outcome`) and carried out in one place:

* ``ACK``     — applied now, or applied before (the effect ledger says done); a replayed
                dead letter's copy (``x-rgw-replay-of``) is then announced as delivered by
                the runtime's replay notice (if it was given one), before it is acknowledged;
* ``RETRY``   — a retryable failure: a copy goes to the retry tier its backoff needs, with
                the attempt count, then the original is acknowledged;
* ``DEAD``    — a permanent failure, retries exhausted, or an undecodable message: a copy
                goes to the connector's dead-letter queue with the reason, then what the
                runtime's dead-letter notice (if it was given one) makes of it, then the
                original is acknowledged.

Copies are published with confirms before the original is acknowledged, so a crash in
between yields a duplicate, never a loss; the ledger makes the duplicate harmless. A copy the
broker does not confirm sends the original back to the queue instead of acknowledging it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aio_pika
import msgspec
import redis.asyncio as aioredis
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from psycopg_pool import AsyncConnectionPool

from gateway.broker import EventPublisher, broker_errors
from gateway.broker.headers import (
    ATTEMPT,
    DEAD_REASON,
    DEFERRALS,
    FIRST_FAILURE,
    LAST_ERROR,
    REPLAY_OF,
    DeadReason,
)
from gateway.errors import (
    BrokerUnavailable,
    CircuitOpen,
    DeliveryFailed,
    NotReadyYet,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    StoreUnavailable,
)
from gateway.routing import ConnectorSpec, connector_queue, dead_exchange, retry_exchange
from gateway.runtime._circuit import State, TargetCircuit
from gateway.runtime._effects import EffectLedger
from gateway.runtime._retry import RetryPlan
from gateway.sdk import Connector, Delivery, Emitted, RuntimeContext
from gateway.settings import Settings

log = logging.getLogger(__name__)


MAX_DEFERRALS = 30
"""Waits an early message gets, backing off to the longest retry tier (10 minutes by default:
hours in all) before it is dead-lettered as never ready."""


class Outcome(enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    DEAD = "dead"


class Decision(msgspec.Struct, frozen=True):
    """What to do with one message, decided before anything is done to it."""

    outcome: Outcome
    failure: DeliveryFailed | None = None
    delay_ms: int = 0
    counts_as_attempt: bool = True
    """False when the target was never called (ledger busy or unreachable)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeadLettered:
    """A message the runtime has just dead-lettered: its dead copy is with the broker."""

    connector: str
    delivery: Delivery
    failure: DeliveryFailed
    attempts: int
    """Tries of the target, the last one included."""
    at: dt.datetime
    """When it was dead-lettered (UTC), as its dead reason says."""


#: What to announce about a dead letter: an event published (confirmed) after the dead copy,
#: or ``None`` for nothing. The platform's tells the lifecycle (``delivery-failed``).
DeadLetterNotice = Callable[[DeadLettered], Emitted | None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplayDelivered:
    """The replayed copy of a dead letter, just applied (or found applied before)."""

    connector: str
    delivery: Delivery
    replay_of: str
    """The dead letter's message id (the delivery's own, unless its payload was corrected)."""
    at: dt.datetime


#: What to announce when a replayed dead letter goes through: an event published (confirmed)
#: with the connector's own, or ``None``. The platform's tells the lifecycle (``dead-letter-action``).
ReplayNotice = Callable[[ReplayDelivered], Emitted | None]

_delivery_decoder = msgspec.json.Decoder(Delivery)


def _deferrals(message: AbstractIncomingMessage) -> int:
    """How often the message already waited for what it depends on."""
    try:
        return int((message.headers or {}).get(DEFERRALS, 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _replay_of(message: AbstractIncomingMessage) -> str | None:
    """The dead letter a replayed copy stands for (the desk's ``x-rgw-replay-of``)."""
    value = (message.headers or {}).get(REPLAY_OF)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _decode(message: AbstractIncomingMessage) -> Delivery:
    try:
        delivery = _delivery_decoder.decode(message.body)
        attempt = int((message.headers or {}).get(ATTEMPT, 1))  # type: ignore[call-overload]
        return delivery if attempt == 1 else msgspec.structs.replace(delivery, attempt=attempt)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError) as exc:
        raise PermanentDeliveryFailure(f"undecodable envelope: {exc}") from exc


class ConnectorRuntime:
    """Runs one connector against its queue until stopped."""

    def __init__(
        self,
        connector: Connector,
        *,
        settings: Settings,
        spec: ConnectorSpec,
        redis: aioredis.Redis,
        database: AsyncConnectionPool | None = None,
        prefetch: int | None = None,
        graceful_timeout: float = 30.0,
        dead_letter_notice: DeadLetterNotice | None = None,
        replay_notice: ReplayNotice | None = None,
        max_deferrals: int = MAX_DEFERRALS,
    ) -> None:
        self.connector = connector
        connector.attach(RuntimeContext(settings=settings, redis=redis, database=database))
        self._settings = settings
        self._plan = RetryPlan(spec)
        self._ledger = EffectLedger(redis, settings, lease_seconds=settings.effect_lease_seconds)
        self._prefetch = prefetch or spec.prefetch
        self.circuit = TargetCircuit(connector.name, spec.circuit, on_change=self._circuit_changed)
        if connector.has_target:  # the breaker counts each of the target's calls, once tried
            connector.target.guard = self.circuit
        self._circuit_lock = asyncio.Lock()
        self._circuit_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._graceful_timeout = graceful_timeout
        self._dead_letter_notice = dead_letter_notice
        self._replay_notice = replay_notice
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._events: EventPublisher | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.outcomes: collections.Counter[Outcome] = collections.Counter()
        self.max_deferrals = max_deferrals
        """How often an early message (:class:`NotReadyYet`) may wait before it is dead-lettered."""
        self.returned = 0
        """How many messages went back to their queue undecided (see :meth:`_give_back`)."""
        """How many messages ended each way since start (for health, metrics and tests)."""

    @property
    def name(self) -> str:
        return self.connector.name

    async def start(self) -> None:
        """Connect (aio-pika's robust connection restores the consumer after a broker restart)."""
        connection = await aio_pika.connect_robust(
            self._settings.amqp_url,
            client_properties={
                "connection_name": f"returns-gateway:{self._settings.namespace}:connector:{self.name}"
            },
        )
        try:
            self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._events = EventPublisher(self._channel, self._settings)
            self._queue = await self._channel.get_queue(connector_queue(self._settings, self.name))
            self._connection = connection
            await self._consume(self._prefetch)
        except BaseException:
            self._channel = self._events = self._queue = self._connection = None
            await connection.close()  # a failed start leaves nothing open; it may be tried again
            raise

    async def _consume(self, prefetch: int) -> None:
        assert self._channel is not None and self._queue is not None
        await self._channel.set_qos(prefetch_count=prefetch)  # applies to consumers started after it
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def _stop_consuming(self) -> None:
        tag, self._consumer_tag = self._consumer_tag, None
        if tag is not None and self._queue is not None and self._channel and not self._channel.is_closed:
            await self._queue.cancel(tag)

    def _circuit_changed(self, state: State) -> None:
        task = asyncio.get_running_loop().create_task(self._follow_circuit(state))
        self._circuit_tasks.add(task)
        task.add_done_callback(self._circuit_tasks.discard)

    async def _follow_circuit(self, state: State) -> None:
        """Open: stop taking messages, then take one (the trial) after the open period.
        Closed again: back to the full prefetch. Messages wait in the queue meanwhile."""
        async with self._circuit_lock:
            if self._stopping:
                return
            if state == "opened":
                log.warning(
                    "%s: circuit open (%s), pausing for %.1f s",
                    self.name,
                    self.circuit.reason,
                    self.circuit.open_seconds,
                )
                await self._stop_consuming()
                await asyncio.sleep(self.circuit.open_seconds)
                if not self._stopping and self.circuit.state != "closed":
                    await self._consume(1)
            elif state == "closed":
                log.info("%s: circuit closed, resuming", self.name)
                await self._stop_consuming()
                await self._consume(self._prefetch)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._settle(message, await self.decide(message))
        except Exception:  # no decision covers it (a bug, a dependency failing mid-settle)
            log.exception("%s: could not settle %s, returning it to its queue", self.name, message.message_id)
            await self._give_back(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _give_back(self, message: AbstractIncomingMessage) -> None:
        """Return ``message`` to its queue so it is delivered again, never left holding a
        prefetch slot; if the channel is gone, the broker requeues it when the channel closes."""
        self.returned += 1
        try:
            await message.nack(requeue=True)
        except Exception as exc:  # the channel is closed: the broker has the message back already
            log.warning(
                "%s: could not return %s (%s); the broker requeues it", self.name, message.message_id, exc
            )

    async def decide(self, message: AbstractIncomingMessage) -> Decision:
        """Apply the message at most once and name what should happen to it."""
        try:
            delivery = _decode(message)
        except PermanentDeliveryFailure as failure:
            return Decision(Outcome.DEAD, failure)
        if not self.connector.takes(delivery.message_type):
            return Decision(
                Outcome.DEAD, PermanentDeliveryFailure(f"{self.name} does not handle {delivery.message_type}")
            )
        try:
            claim = await self._ledger.begin(self.name, delivery.message_id)
        except StoreUnavailable as exc:
            # Without the ledger we cannot promise once: do not call the target, come back later.
            return Decision(
                Outcome.RETRY,
                RetryableDeliveryFailure(str(exc)),
                self._plan.tiers_ms[0],
                counts_as_attempt=False,
            )
        replay_of = _replay_of(message)
        if claim == "done":
            log.info("%s: %s already applied, acknowledging", self.name, delivery.message_id)
            try:  # a replayed dead letter that had in fact been applied is delivered all the same
                await self._emit(delivery, self._replay_delivered(delivery, replay_of))
            except RetryableDeliveryFailure as exc:
                return Decision(Outcome.RETRY, exc, self._plan.tiers_ms[0], counts_as_attempt=False)
            return Decision(Outcome.ACK)
        if claim == "busy":
            return Decision(
                Outcome.RETRY,
                RetryableDeliveryFailure("another worker holds it"),
                self._plan.tiers_ms[0],
                counts_as_attempt=False,
            )
        return await self._apply(delivery, deferrals=_deferrals(message), replay_of=replay_of)

    async def _apply(self, delivery: Delivery, *, deferrals: int, replay_of: str | None) -> Decision:
        try:
            async with self._ledger.holding(self.name, delivery.message_id):
                if self.connector.has_target:  # the target's calls are counted as they are made
                    self.circuit.admit()
                # without one, its failures are its own domain's (a return not opened yet), not a system down
                emitted = await self.connector.handle(delivery)
                emitted = [*(emitted or ()), *self._replay_delivered(delivery, replay_of)]
                if emitted:
                    await self._emit(delivery, emitted)
        except Exception as exc:
            try:
                await self._ledger.abandon(self.name, delivery.message_id)
            except StoreUnavailable as lost:  # the lease then lapses by itself; the failure still counts
                log.warning("%s: lease on %s not given back: %s", self.name, delivery.message_id, lost)
            return self._after_failure(delivery, exc, deferrals)
        try:
            await self._ledger.finish(self.name, delivery.message_id)
        except StoreUnavailable as lost:
            # Applied, and its events published: acknowledge. A redelivery would find no done
            # record, but the target gets the message id as its idempotency key and says so.
            log.warning("%s: %s applied but not recorded as done: %s", self.name, delivery.message_id, lost)
        return Decision(Outcome.ACK)

    def _replay_delivered(self, delivery: Delivery, replay_of: str | None) -> list[Emitted]:
        """What the replay notice makes of a replayed copy that went through (nothing for a
        message that is no replay)."""
        if self._replay_notice is None or replay_of is None:
            return []
        try:
            event = self._replay_notice(
                ReplayDelivered(
                    connector=self.name, delivery=delivery, replay_of=replay_of, at=dt.datetime.now(dt.UTC)
                )
            )
        except Exception:  # a bug in the notice must not hold the delivery back
            log.exception("%s: no notice of replayed %s", self.name, delivery.message_id)
            return []
        return [] if event is None else [event]

    async def _emit(self, delivery: Delivery, emitted: Sequence[Emitted]) -> None:
        """Publish what the system answered, confirmed, before the effect is recorded: if this
        fails the message is retried, and the system's duplicate answer yields the same events."""
        assert self._events is not None
        try:
            for event in emitted:
                envelope = event.envelope(
                    partner=delivery.partner,
                    correlation_id=event.return_id or delivery.correlation_id,
                    causation_id=delivery.message_id,
                )
                await self._events.publish(
                    envelope,
                    event.payload,
                    doing=f"{self.name}: publishing {event.message_type} {event.message_id}",
                )
        except BrokerUnavailable as exc:
            raise RetryableDeliveryFailure(
                f"applied, but could not publish the system's answer: {exc}"
            ) from exc

    def _after_failure(self, delivery: Delivery, exc: Exception, deferrals: int) -> Decision:
        if isinstance(exc, NotReadyYet):
            # Early: it waits, backing off through the tiers without spending an attempt; still
            # early after max_deferrals waits, it is dead-lettered.
            if deferrals >= self.max_deferrals:
                return Decision(Outcome.DEAD, exc)
            delay = self._plan.tier_for(deferrals + 1, exc.retry_after)
            return Decision(Outcome.RETRY, exc, delay, counts_as_attempt=False)
        if isinstance(exc, CircuitOpen):  # the target was not called: not an attempt
            return Decision(
                Outcome.RETRY, exc, self._plan.tier_for(1, exc.retry_after), counts_as_attempt=False
            )
        failure = exc if isinstance(exc, DeliveryFailed) else None
        if failure is None:  # a connector bug: treat as retryable, it ends in the DLQ if it persists
            log.error("%s: unexpected error on %s", self.name, delivery.message_id, exc_info=exc)
            failure = RetryableDeliveryFailure(f"{type(exc).__name__}: {exc}")
        if isinstance(failure, PermanentDeliveryFailure) or self._plan.exhausted(delivery.attempt):
            return Decision(Outcome.DEAD, failure)
        retry_after = failure.retry_after if isinstance(failure, RetryableDeliveryFailure) else None
        return Decision(Outcome.RETRY, failure, self._plan.tier_for(delivery.attempt, retry_after))

    async def _settle(self, message: AbstractIncomingMessage, decision: Decision) -> None:
        if decision.outcome is not Outcome.ACK:
            try:
                await self._publish_copy(message, decision)
            except BrokerUnavailable as exc:
                # The copy is not safely with the broker: give the original back, never ack it.
                log.warning("%s: could not place %s, returning it: %s", self.name, message.message_id, exc)
                with contextlib.suppress(BrokerUnavailable), broker_errors("returning the message"):
                    await message.nack(requeue=True)
                return
        await message.ack()
        self.outcomes[decision.outcome] += 1

    async def _publish_copy(self, message: AbstractIncomingMessage, decision: Decision) -> None:
        assert self._events is not None and decision.failure is not None
        retry = decision.outcome is Outcome.RETRY
        headers: dict[str, Any] = dict(message.headers or {})
        headers.pop("x-death", None)  # the broker's own bookkeeping; our headers say what happened
        at = dt.datetime.now(dt.UTC)
        now = at.isoformat()
        attempt = int(headers.get(ATTEMPT, 1))  # type: ignore[call-overload]
        headers.setdefault(FIRST_FAILURE, now)
        headers[LAST_ERROR] = decision.failure.detail[:1000]
        if retry:
            exchange_name, routing_key = retry_exchange(self._settings), f"{self.name}.{decision.delay_ms}"
            if decision.counts_as_attempt:
                headers[ATTEMPT] = attempt + 1
            elif isinstance(decision.failure, NotReadyYet):
                headers[DEFERRALS] = _deferrals(message) + 1
        else:
            exchange_name, routing_key = dead_exchange(self._settings), self.name
            headers[DEAD_REASON] = msgspec.json.encode(
                DeadReason(
                    connector=self.name,
                    error=type(decision.failure).__name__,
                    detail=decision.failure.detail[:2000],
                    status_code=decision.failure.status_code,
                    attempts=attempt,
                    first_failure_at=str(headers[FIRST_FAILURE]),
                    last_failure_at=now,
                )
            ).decode()
        await self._events.publish_copy(
            message,
            exchange=exchange_name,
            routing_key=routing_key,
            headers=headers,
            doing=f"{self.name}: {decision.outcome.value} copy of {message.message_id}",
        )
        if not retry:
            await self._notify_dead(message, decision.failure, attempt, at)

    async def _notify_dead(
        self, message: AbstractIncomingMessage, failure: DeliveryFailed, attempts: int, at: dt.datetime
    ) -> None:
        """Publish what the dead-letter notice makes of a message just dead-lettered, confirmed
        like the dead copy itself (e.g. the lifecycle's ``delivery-failed``)."""
        assert self._events is not None
        if self._dead_letter_notice is None:
            return
        try:
            delivery = _decode(message)
        except PermanentDeliveryFailure:
            return  # an undecodable message tells nothing to announce
        try:
            event = self._dead_letter_notice(
                DeadLettered(
                    connector=self.name, delivery=delivery, failure=failure, attempts=attempts, at=at
                )
            )
        except Exception:  # a bug in the notice must not hold the dead letter back
            log.exception("%s: no notice of dead letter %s", self.name, delivery.message_id)
            return
        if event is None:
            return
        envelope = event.envelope(
            partner=delivery.partner,
            correlation_id=event.return_id or delivery.correlation_id,
            causation_id=delivery.message_id,
        )
        await self._events.publish(
            envelope, event.payload, doing=f"{self.name}: announcing dead letter {delivery.message_id}"
        )

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones finish (up to the graceful timeout), close."""
        self._stopping = True
        for task in list(self._circuit_tasks):
            task.cancel()
        async with self._circuit_lock:
            await self._stop_consuming()
        channel, connection = self._channel, self._connection
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._graceful_timeout)
        if channel is not None and not channel.is_closed:
            await channel.close()
        if connection is not None:
            await connection.close()
        self._channel = self._events = self._connection = self._queue = None
