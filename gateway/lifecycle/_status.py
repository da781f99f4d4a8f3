"""The canonical status model: which status may follow which, and nothing else.

The vocabulary is ``ReturnStatus`` in the contracts' definitions; this module adds the moves.
The main road runs requested → validated → (pending approval) → authorized → label issued →
in transit → received → inspected → dispositioned → credited → closed. Three exception states
sit beside it: *validation failed* (a person must decide), *posting failed* (a system refused a
posting; its dead letter is linked) and *on hold*. The last two remember the status they left
and may go back to it, or on from it, once the cause is gone.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Final

from gateway.errors import GatewayError


class ReturnStatus(StrEnum):
    """The contracts' ``ReturnStatus``, as one type: a test keeps it equal to the contracts'
    vocabulary, and the migration's ``CHECK`` on ``returns.status`` to it."""

    REQUESTED = "requested"
    VALIDATED = "validated"
    PENDING_APPROVAL = "pending_approval"
    AUTHORIZED = "authorized"
    REJECTED = "rejected"
    LABEL_ISSUED = "label_issued"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    INSPECTED = "inspected"
    DISPOSITIONED = "dispositioned"
    CREDITED = "credited"
    CLOSED = "closed"
    VALIDATION_FAILED = "validation_failed"
    POSTING_FAILED = "posting_failed"
    ON_HOLD = "on_hold"


ROAD: Final = (
    "requested",
    "validated",
    "pending_approval",
    "authorized",
    "label_issued",
    "in_transit",
    "received",
    "inspected",
    "dispositioned",
    "credited",
    "closed",
)
#: Statuses that wait on something outside the road and remember where they left it.
PARKED: Final = frozenset({"posting_failed", "on_hold"})

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "requested": frozenset({"validated", "validation_failed", "rejected", "on_hold"}),
    "validated": frozenset({"pending_approval", "authorized", "rejected", "on_hold"}),
    "validation_failed": frozenset({"authorized", "rejected", "on_hold"}),
    "pending_approval": frozenset({"authorized", "rejected", "on_hold"}),
    # Carrier scans and receipts may overtake each other: the road may be skipped forward.
    "authorized": frozenset({"label_issued", "in_transit", "received", "posting_failed", "on_hold"}),
    "label_issued": frozenset({"in_transit", "received", "on_hold"}),
    "in_transit": frozenset({"received", "on_hold"}),
    "received": frozenset({"inspected", "on_hold"}),
    "inspected": frozenset({"dispositioned", "on_hold"}),
    "dispositioned": frozenset({"credited", "closed", "posting_failed", "on_hold"}),
    "credited": frozenset({"closed"}),
    "rejected": frozenset({"closed"}),
    "closed": frozenset(),
    "posting_failed": frozenset(),  # back to, or on from, the status it left
    "on_hold": frozenset(),
}

_RANK: Final = {status: rank for rank, status in enumerate(ROAD)}


class IllegalTransition(GatewayError):
    """A move the status model does not allow; it is refused, never applied."""

    def __init__(self, current: str, wanted: str, why: str = "") -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none"
        super().__init__(
            f"a return in status '{current}' cannot move to '{wanted}'"
            + (f" ({why})" if why else "")
            + f"; allowed from '{current}': {allowed}"
        )
        self.current = current
        self.wanted = wanted


def allowed_from(status: str, resume: str | None = None) -> frozenset[str]:
    """Where a return may go from ``status``; a parked one also back to ``resume`` and on from it."""
    if status in PARKED and resume is not None:
        return frozenset({resume}) | TRANSITIONS[resume]
    return TRANSITIONS[status]


def may_hold(status: str) -> bool:
    """Whether a person may put a return in ``status`` on hold (not one already parked or ended)."""
    return "on_hold" in TRANSITIONS[status]


def check_move(status: str, to: str, resume: str | None = None) -> None:
    """Raise :class:`IllegalTransition` unless ``status`` → ``to`` is allowed."""
    if to not in allowed_from(status, resume):
        raise IllegalTransition(status, to)


def rank(status: str) -> int | None:
    """Position on the main road (``None`` for rejected and the exception states)."""
    return _RANK.get(status)


def is_behind(status: str, milestone: str) -> bool:
    """True when ``milestone`` is at or before ``status`` on the road: a late event, not a move."""
    here, there = rank(status), rank(milestone)
    return here is not None and there is not None and there <= here


def contract_statuses(contracts_dir: Path) -> list[str]:
    """The ``ReturnStatus`` vocabulary as the contracts define it (the model must cover it exactly)."""
    definitions = json.loads((contracts_dir / "definitions" / "v1" / "schema.json").read_text())
    return list(definitions["$defs"]["ReturnStatus"]["enum"])
