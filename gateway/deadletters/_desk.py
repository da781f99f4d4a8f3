"""The dead-letter desk: look at a connector's dead letters, replay or discard them, on the record.

Shared by the admin API and the ``returns-gateway dlq`` commands. Every action follows one
order, so a failure at any step loses nothing: find the dead letter by browsing (held, not
taken), check what is asked, publish the replay copy to ``<ns>.redeliver`` (which routes only
to this connector's queue) and wait for the broker's confirm, tell the lifecycle what was done
to a dead letter about a return (``dead-letter-action``, confirmed too), then acknowledge the
dead letter, then record the action in the audit log. A crash between the confirms and the
acknowledgement leaves the dead letter in place next to its replayed copy: a duplicate with the
same message id, which the runtime's effect ledger applies once.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Literal

from aio_pika.abc import AbstractIncomingMessage
from psycopg_pool import AsyncConnectionPool

from gateway.broker import EventPublisher
from gateway.deadletters._audit import AuditEntry, AuditLog
from gateway.deadletters._broker import Browse, DeskBroker
from gateway.deadletters._models import (
    BulkReplayResult,
    DeadLetter,
    DeadLetterSummary,
    DiscardResult,
    QueueListing,
    ReplayResult,
)
from gateway.deadletters._reading import dead_letter_id, envelope_of, read_dead_letter
from gateway.deadletters._replay import Correction, ReplayCopy, correct, replay_message
from gateway.errors import DatabaseUnavailable, DeadLetterNotFound, MalformedRequest, UnknownConnector
from gateway.lifecycle import dead_letter_action
from gateway.registry import ContractRegistry
from gateway.routing import (
    ConnectorSpec,
    RoutingTable,
    connector_queue,
    dead_letter_queue,
    redeliver_exchange,
)
from gateway.settings import Settings

log = logging.getLogger(__name__)

#: What an operator did to a dead letter, as the lifecycle is told.
Action = Literal["replayed", "discarded"]

#: Called as ``progress(done, total)`` while a whole queue is replayed.
Progress = Callable[[int, int], object]

#: How far past the depth seen at its start a search goes (dead letters arriving meanwhile).
_SEARCH_SLACK = 10_000


def _person(actor: str) -> dict[str, str]:
    """The operator as the contracts' ``Actor``: ``key:<key id>`` or ``cli:<OS user>``."""
    return {"type": "user", "id": "_".join(actor.split())[:128] or "unknown"}


def _replay_entry(
    at: dt.datetime,
    actor: str,
    connector: str,
    message_id: str,
    replayed_as: str,
    corrected: bool,
    note: str | None,
) -> AuditEntry:
    return AuditEntry(
        at=at,
        actor=actor,
        action="replay",
        connector=connector,
        message_id=message_id,
        replayed_as=replayed_as,
        payload_corrected=corrected,
        note=note or None,
    )


class DeadLetterDesk:
    """Operators' access to the dead-letter queues of the connectors in the routing table."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: ContractRegistry,
        database: AsyncConnectionPool,
        routing: RoutingTable | None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._routing = routing
        self._broker = DeskBroker(settings)
        self.audit = AuditLog(database, settings)
        """Who replayed or discarded what, newest first."""
        # One operation at a time per connector in this process: a browse holds the messages it
        # passed, and another operation must not find the queue apparently short of them.
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    @property
    def connectors(self) -> list[str]:
        """Every connector in the routing table (none without one)."""
        return sorted(self._routing.connectors) if self._routing is not None else []

    def _spec(self, connector: str) -> ConnectorSpec:
        if self._routing is None:
            raise UnknownConnector(f"no connector '{connector}': no routing table is configured")
        spec = self._routing.connectors.get(connector)
        if spec is None:
            raise UnknownConnector(f"no connector '{connector}' in the routing table")
        return spec

    def _read(self, connector: str, message: AbstractIncomingMessage, position: int) -> DeadLetter:
        return read_dead_letter(
            message,
            connector=connector,
            queue=connector_queue(self._settings, connector),
            position=position,
            delivery_limit=self._spec(connector).delivery_limit,
        )

    async def depth(self, connector: str) -> int:
        """Dead letters waiting for ``connector``."""
        self._spec(connector)
        async with self._locks[connector], self._broker.browsing(self._queue(connector)) as browse:
            return browse.depth

    def _queue(self, connector: str) -> str:
        return dead_letter_queue(self._settings, connector)

    async def list(self, connector: str, limit: int = 50) -> QueueListing:
        """The first ``limit`` dead letters of ``connector``, oldest first; the queue is left as it was."""
        self._spec(connector)
        async with self._locks[connector], self._broker.browsing(self._queue(connector)) as browse:
            found: builtins.list[DeadLetterSummary] = []
            while len(found) < limit and (message := await browse.next()) is not None:
                found.append(self._read(connector, message, len(found)).summary())
            return QueueListing(
                connector=connector, queue=self._queue(connector), depth=browse.depth, dead_letters=found
            )

    async def list_all(self, limit: int = 50) -> builtins.list[QueueListing]:
        """:meth:`list` for every connector in the routing table."""
        return [await self.list(connector, limit) for connector in self.connectors]

    async def show(self, connector: str, message_id: str) -> DeadLetter:
        """One dead letter in full; the queue is left as it was."""
        self._spec(connector)
        async with self._locks[connector], self._broker.browsing(self._queue(connector)) as browse:
            message, position = await self._find(browse, connector, message_id)
            return self._read(connector, message, position)

    async def _find(
        self, browse: Browse, connector: str, message_id: str
    ) -> tuple[AbstractIncomingMessage, int]:
        position = 0
        while position < browse.depth + _SEARCH_SLACK and (message := await browse.next()) is not None:
            if dead_letter_id(message) == message_id:
                return message, position
            position += 1
        raise DeadLetterNotFound(f"no message '{message_id}' in the dead-letter queue of '{connector}'")

    async def replay(
        self,
        connector: str,
        message_id: str,
        *,
        payload: Any = None,
        actor: str,
        note: str | None = None,
    ) -> ReplayResult:
        """Send one dead letter back to ``connector`` alone, optionally with a corrected payload.

        A correction is checked against the envelope's contract first: a non-conforming one
        raises :class:`~gateway.errors.ContractViolation` and changes nothing.
        """
        self._spec(connector)
        await self.audit.check()
        async with self._locks[connector], self._broker.browsing(self._queue(connector)) as browse:
            message, _ = await self._find(browse, connector, message_id)
            correction = (
                correct(message, message_id, payload, self._registry) if payload is not None else None
            )
            now = dt.datetime.now(dt.UTC)
            replayed_as = correction.message_id if correction is not None else message_id
            async with self._broker.confirming() as publisher:
                await self._send_back(publisher, connector, message, message_id, now, correction, actor, note)
            await browse.remove(message)
        await self._record(
            _replay_entry(now, actor, connector, message_id, replayed_as, correction is not None, note)
        )
        return ReplayResult(
            connector=connector,
            message_id=message_id,
            replayed_as=replayed_as,
            payload_corrected=correction is not None,
            replayed_at=now,
        )

    async def replay_all(
        self, connector: str, *, actor: str, note: str | None = None, progress: Progress | None = None
    ) -> BulkReplayResult:
        """Replay, as they are, exactly the dead letters present when this starts.

        One that dies again meanwhile lands behind them and waits for the next replay.
        """
        self._spec(connector)
        await self.audit.check()
        replayed: builtins.list[str] = []
        async with (
            self._locks[connector],
            self._broker.browsing(self._queue(connector)) as browse,
            self._broker.confirming() as publisher,
        ):
            total = browse.depth
            if progress is not None:
                progress(0, total)
            while len(replayed) < total and (message := await browse.next()) is not None:
                message_id = dead_letter_id(message)
                now = dt.datetime.now(dt.UTC)
                await self._send_back(publisher, connector, message, message_id, now, None, actor, note)
                await browse.remove(message)
                replayed.append(message_id)
                await self._record(_replay_entry(now, actor, connector, message_id, message_id, False, note))
                if progress is not None:
                    progress(len(replayed), total)
        return BulkReplayResult(
            connector=connector, depth_at_start=total, replayed=len(replayed), message_ids=replayed
        )

    async def _send_back(
        self,
        publisher: EventPublisher,
        connector: str,
        dead: AbstractIncomingMessage,
        message_id: str,
        now: dt.datetime,
        correction: Correction | None,
        actor: str,
        note: str | None,
    ) -> None:
        """The replayed copy to ``connector`` and the return's ``replayed`` line, both confirmed
        before the dead letter may go."""
        copy = replay_message(dead, message_id=message_id, replayed_at=now, correction=correction)
        await self._send(publisher, connector, dead, copy)
        await self._tell(
            publisher,
            connector,
            dead,
            "replayed",
            at=now,
            actor=actor,
            replayed_as=correction.message_id if correction is not None else message_id,
            payload_corrected=correction is not None,
            note=note,
        )

    async def _send(
        self, publisher: EventPublisher, connector: str, dead: AbstractIncomingMessage, copy: ReplayCopy
    ) -> None:
        """Publish a replay copy to ``<ns>.redeliver``, which routes it to ``connector`` alone."""
        exchange = redeliver_exchange(self._settings)
        await publisher.publish_copy(
            dead,
            exchange=exchange,
            routing_key=connector,
            headers=copy.headers,
            body=copy.body,
            message_id=copy.message_id,
            content_type=copy.content_type,
            doing=f"replaying to {exchange} '{connector}'",
        )

    async def _tell(
        self,
        publisher: EventPublisher,
        connector: str,
        dead: AbstractIncomingMessage,
        action: Action,
        *,
        at: dt.datetime,
        actor: str,
        replayed_as: str | None = None,
        payload_corrected: bool | None = None,
        reason: str | None = None,
        note: str | None = None,
    ) -> None:
        """Tell the lifecycle what was done to a dead letter about a return (nothing otherwise)."""
        return_id, partner, message_type = envelope_of(dead)
        message_id = dead_letter_id(dead)
        event = dead_letter_action(
            return_id=return_id,
            connector=connector,
            message_id=message_id,
            message_type=message_type,
            action=action,
            actor=_person(actor),
            at=at,
            replayed_as=replayed_as,
            payload_corrected=payload_corrected,
            reason=reason,
            note=note,
        )
        if event is None or partner is None or event.return_id is None:
            return
        await publisher.publish(
            event.envelope(partner=partner, correlation_id=event.return_id, causation_id=message_id),
            event.payload,
            doing=f"telling the lifecycle: {action} {message_id}",
        )

    async def discard(self, connector: str, message_id: str, *, actor: str, reason: str) -> DiscardResult:
        """Remove one dead letter for good; the reason is required and goes into the audit log
        (and, for a dead letter about a return, onto the return's timeline)."""
        self._spec(connector)
        if not reason or not reason.strip():
            raise MalformedRequest("say why the dead letter is discarded: a non-empty reason is required")
        await self.audit.check()
        async with self._locks[connector], self._broker.browsing(self._queue(connector)) as browse:
            message, _ = await self._find(browse, connector, message_id)
            now = dt.datetime.now(dt.UTC)
            async with self._broker.confirming() as publisher:
                await self._tell(
                    publisher, connector, message, "discarded", at=now, actor=actor, reason=reason.strip()
                )
            await browse.remove(message)
        await self._record(
            AuditEntry(
                at=now,
                actor=actor,
                action="discard",
                connector=connector,
                message_id=message_id,
                reason=reason.strip(),
            )
        )
        return DiscardResult(
            connector=connector, message_id=message_id, reason=reason.strip(), discarded_at=now
        )

    async def _record(self, entry: AuditEntry) -> None:
        # The action is done by now: refusing to answer would invite a second one. The entry
        # is already in the log (record() logs first); say loudly that the database did not take it.
        try:
            await self.audit.record(entry)
        except DatabaseUnavailable:
            log.error("audit entry not stored in PostgreSQL (it is in this log): %r", entry)

    async def aclose(self) -> None:
        """Close the desk's broker connection; safe to call twice."""
        await self._broker.aclose()
