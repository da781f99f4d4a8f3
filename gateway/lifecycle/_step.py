"""One event's worth of change to one return: the moves it makes (each checked against the
status model, written to the timeline and published as ``return-status-changed``), the notes
it leaves and the commands it emits, gathered for the store to write in one transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec

from gateway.lifecycle._commands import status_changed
from gateway.lifecycle._status import PARKED, check_move
from gateway.lifecycle._store import APPROVALS, HOLDS, Change, ReturnState, TimelineEntry
from gateway.sdk import Delivery, Emitted

#: Statuses in which a return waits for a person (the approvals queue).
WAITING = frozenset({"pending_approval", "validation_failed"})


class Step:
    """Everything one event (and the parked events it releases) does to one return."""

    def __init__(self, state: ReturnState, delivery: Delivery, now: dt.datetime) -> None:
        self.state = state
        self.delivery = delivery
        self.now = now
        self.change = Change(state=state, timeline=[], emitted=[], queues={})

    def note(self, action: str, actor: dict[str, str], **fields: Any) -> None:
        self.change.timeline.append(
            TimelineEntry(
                at=self.now, action=action, actor=actor, message_id=self.delivery.message_id, **fields
            )
        )

    def emit(self, message_type: str, payload: dict[str, Any], what: str) -> None:
        contract, _, version = message_type.rpartition(".")
        self.change.emitted.append(
            msgspec.to_builtins(
                Emitted(
                    contract=contract,
                    version=version,
                    payload=payload,
                    message_id=f"{self.delivery.message_id}.lifecycle.{what}",
                    return_id=self.state.return_id,
                )
            )
        )

    def move(
        self,
        to: str,
        actor: dict[str, str],
        *,
        rule: dict[str, str] | None = None,
        detail: str | None = None,
        documents: Sequence[dict[str, str]] = (),
        dead_letter: dict[str, str] | None = None,
    ) -> None:
        state = self.state
        came_from = state.status
        check_move(came_from, to, state.resume)
        if to in PARKED:
            state.resume = came_from
        elif came_from in PARKED:
            state.resume = None
        state.status, state.updated_at = to, self.now
        if to in WAITING:
            self.change.queues[APPROVALS] = self.now.timestamp()
        elif came_from in WAITING:
            self.change.queues[APPROVALS] = None
        if to == "on_hold":
            self.change.queues[HOLDS] = self.now.timestamp()
            state.holds += 1
        elif came_from == "on_hold":
            self.change.queues[HOLDS] = None
            state.hold = None
        self._announce(came_from, to, actor, rule, detail, documents, dead_letter)

    def enter(
        self, to: str, actor: dict[str, str], *, detail: str, dead_letter: dict[str, str] | None = None
    ) -> None:
        """The first status of a return the lifecycle holds without having opened it (nothing it
        moves from): written and published like a move, with no previous status."""
        state = self.state
        state.status, state.updated_at = to, self.now
        if to == "on_hold":
            self.change.queues[HOLDS] = self.now.timestamp()
            state.holds += 1
        self._announce(None, to, actor, None, detail, (), dead_letter)

    def _announce(
        self,
        came_from: str | None,
        to: str,
        actor: dict[str, str],
        rule: dict[str, str] | None,
        detail: str | None,
        documents: Sequence[dict[str, str]],
        dead_letter: dict[str, str] | None,
    ) -> None:
        """Write the status change on the timeline and publish it (``return-status-changed``)."""
        state = self.state
        self.note(
            "status_changed",
            actor,
            from_status=came_from,
            to_status=to,
            rule=rule,
            detail=detail,
            documents=list(documents),
            dead_letter=dead_letter,
        )
        event = status_changed(
            state, self.delivery.message_id, came_from, to, self.now, actor, rule=rule, detail=detail
        )
        self.emit("return-status-changed.v1", event, f"status.{to}")
