"""What the ERP profile tests share: the request and decisions they send, the events they check."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

from gateway.registry import ContractRegistry
from gateway.sdk import Delivery, Emitted
from gateway.settings import PROJECT_ROOT
from tests.support.profiles import delivery

CONTRACTS = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")


def request(**changes: object) -> dict[str, Any]:
    """The contract's first valid return request: order 4500118832, shipment 80071234,
    invoice 90031877; lines 1 (2 SSDs) and 2 (1 SSD)."""
    payload = copy.deepcopy(CONTRACTS.require("return-request", "v1").valid_examples[0].payload)
    payload.update(changes)
    return payload  # type: ignore[no-any-return]


def decision(
    on: dict[str, Any] | None = None, authorized: dict[int, float] | None = None, **changes: Any
) -> dict[str, Any]:
    """A valid ``return-decision`` on ``on`` (the default request): every line in full, but for
    the line numbers ``authorized`` gives a quantity (0 rejects the line). The decision follows:
    authorized, partially authorized, or rejected when nothing is."""
    on = on if on is not None else request()
    cut = authorized or {}
    lines = []
    for line in on["lines"]:
        quantity = cut.get(line["line_number"], line["quantity"])
        decided = {
            "line_number": line["line_number"],
            "sku": line["sku"],
            "requested_quantity": line["quantity"],
            "authorized_quantity": quantity,
            "unit_of_measure": line["unit_of_measure"],
        }
        if quantity < line["quantity"]:
            decided["rejection_reason"] = "exceeds_returnable_quantity"
            decided["rule"] = {"id": "returnable-quantity", "version": "3"}
        lines.append(decided)
    if all(line["authorized_quantity"] == 0 for line in lines):
        outcome = "rejected"
    elif any(line["authorized_quantity"] < line["requested_quantity"] for line in lines):
        outcome = "partially_authorized"
    else:
        outcome = "authorized"
    payload: dict[str, Any] = {
        "return_id": f"ret_{uuid.uuid4().hex}",
        "external_id": on["external_id"],
        "decision": outcome,
        "decided_at": "2024-03-11T09:42:18Z",
        "decided_by": {"type": "system", "id": "lifecycle"},
        "rule": {"id": "auto-authorize", "version": "2026-12-01"},
        "lines": lines,
        "request": on,
    }
    if outcome == "rejected":
        payload["rejection_reason"] = "exceeds_returnable_quantity"
    payload.update(changes)
    assert CONTRACTS.require("return-decision", "v1").violations(payload) == []
    return payload


def decided(payload: dict[str, Any] | None = None) -> Delivery:
    """A ``return-decision`` delivery about its own return (correlation id = return id)."""
    payload = payload if payload is not None else decision()
    return delivery("return-decision.v1", payload, correlation_id=payload["return_id"])


def only(emitted: Sequence[Emitted] | None, message_type: str) -> Emitted:
    """The one event emitted, of ``message_type`` and valid against its contract."""
    assert emitted is not None
    [event] = emitted
    assert event.message_type == message_type
    assert CONTRACTS.require(event.contract, event.version).violations(event.payload) == []
    return event
