"""Every payload the lifecycle publishes, each built here and nowhere else, from a return's
state: the status change announced on every move, the decision sent to the ERP (or the
rejection sent back), the inspection task when the goods arrive, the draft credit memo for
what inspection found creditable, and the claim to a vendor who pays."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gateway.lifecycle._policy import InspectionRule
from gateway.lifecycle._rules import Claim, credit_totals
from gateway.lifecycle._store import ReturnState

#: The actor of what the lifecycle decides by rule.
LIFECYCLE: dict[str, str] = {"type": "system", "id": "lifecycle"}


def stamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as the contracts' ``DateTime`` wants it."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def status_changed(
    state: ReturnState,
    message_id: str,
    came_from: str | None,
    to: str,
    at: dt.datetime,
    actor: dict[str, str],
    *,
    rule: dict[str, str] | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """``return-status-changed``: one per move, its id stable for the event that made it."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{message_id}/{to}")),
        "return_id": state.return_id,
        "external_id": state.external_id,
        "partner": state.partner,
        "from_status": came_from,
        "to_status": to,
        "changed_at": stamp(at),
        "actor": actor,
    }
    if state.rma_number:
        event["rma_number"] = state.rma_number
    if rule:
        event["rule"] = rule
    if detail:
        event["reason"] = detail[:500]
    return event


def return_decision(
    state: ReturnState,
    decision: str,
    lines: list[dict[str, Any]],
    at: dt.datetime,
    actor: dict[str, str],
    rule: dict[str, str],
) -> dict[str, Any]:
    """``return-decision`` to the ERP: authorize these lines (it answers with the RMA)."""
    payload: dict[str, Any] = {
        "return_id": state.return_id,
        "external_id": state.external_id,
        "decision": decision,
        "decided_at": stamp(at),
        "decided_by": actor,
        "rule": rule,
        "lines": lines,
        "request": state.request,
    }
    if state.approvals:
        payload["approvals"] = msgspec.to_builtins(state.approvals)
    return payload


def rejection(
    state: ReturnState,
    lines: list[dict[str, Any]],
    reason: str,
    at: dt.datetime,
    actor: dict[str, str],
    rule: dict[str, str],
    comment: str | None = None,
) -> dict[str, Any]:
    """``return-authorization`` rejected: every line refused, with its reason."""
    refused = [
        {
            "line_number": ln["line_number"],
            "sku": ln["sku"],
            "requested_quantity": ln["requested_quantity"],
            "authorized_quantity": 0,
            "unit_of_measure": ln["unit_of_measure"],
            "rejection_reason": ln.get("rejection_reason") or reason,
        }
        for ln in lines
    ]
    request = state.request
    payload: dict[str, Any] = {
        "return_id": state.return_id,
        "external_id": state.external_id,
        "decision": "rejected",
        "decided_at": stamp(at),
        "decided_by": actor,
        "rule": rule,
        "rejection_reason": reason,
        "customer": request["customer"],
        "references": request["references"],
        "lines": refused,
    }
    if comment:
        payload["notes"] = comment
    return payload


def supplier_claim(state: ReturnState, claim: Claim, now: dt.datetime) -> dict[str, Any]:
    """A ``supplier-claim`` to the vendor, against its frame purchase order, due within its window."""
    deadline = (now + dt.timedelta(days=claim.claim_window_days)).date().isoformat()
    payload: dict[str, Any] = {
        "return_id": state.return_id,
        "claim_number": f"CLM-{state.return_id[4:16].upper()}-{claim.rule['id']}"[:64],
        "vendor": {"account_number": claim.vendor},
        "claim_status": "submitted",
        "references": {"purchase_order": {"number": claim.purchase_order}},
        "claim_deadline": deadline,
        "submitted_at": stamp(now),
        "submitted_by": LIFECYCLE,
        "lines": claim.lines,
        "totals": credit_totals(claim.lines, "amount_claimed"),
    }
    del payload["totals"]["tax"]
    return payload


def credit_memo(state: ReturnState, lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A draft ``credit-memo`` of ``lines`` against the return's invoice (``None`` without one)."""
    request = state.request
    invoice = request["references"].get("invoice")
    if invoice is None and state.basis and state.basis["kind"] == "invoice":
        invoice = {"number": state.basis["number"]}
    if invoice is None and state.credit_invoice is not None:
        invoice = msgspec.to_builtins(state.credit_invoice)
    if invoice is None:
        return None
    credit: dict[str, Any] = {
        "return_id": state.return_id,
        "external_id": f"{state.return_id}.credit",
        "document_status": "draft",
        "customer": request["customer"],
        "invoice_reference": invoice,
        "reason_code": request["reason_code"],
        "currency": lines[0]["line_amount"]["currency"],
        "lines": lines,
        "totals": credit_totals(lines),
    }
    if state.rma_number:
        credit["rma_number"] = state.rma_number
    return credit


#: Where goods wait when neither the receipt nor the authorization named a site.
UNKNOWN_SITE = "UNASSIGNED"
_NOTES_LIMIT = 2000


def task_number(return_id: str) -> str:
    """The inspection task's number: one task per return, the same on every copy of the command."""
    return f"INS-{return_id[4:16].upper()}"


def inspection_task(
    state: ReturnState,
    rule: tuple[InspectionRule, dict[str, str]],
    trigger: dict[str, Any],
    lines: Sequence[Mapping[str, Any]],
    site: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """An ``inspection-task`` for goods that arrived: the received ``lines`` (or, on a carrier
    delivery, the authorized ones), each with what to check under the policy's inspection ``rule``."""
    inspection, reference = rule
    request = state.request
    task_lines = [_task_line(line, inspection) for line in lines]
    payload: dict[str, Any] = {
        "return_id": state.return_id,
        "task_number": task_number(state.return_id),
        "requested_at": stamp(now),
        "requested_by": LIFECYCLE,
        "due_by": stamp(now + dt.timedelta(hours=inspection.due_within_hours)),
        "priority": inspection.priority,
        "site": site or state.return_site or UNKNOWN_SITE,
        "trigger": trigger,
        "customer": request["customer"],
        "reason_code": request["reason_code"],
        "rule": reference,
        "instructions": _instructions(inspection, task_lines),
        "lines": task_lines,
    }
    if state.rma_number:
        payload["rma_number"] = state.rma_number
    return payload


def _task_line(line: Mapping[str, Any], rule: InspectionRule) -> dict[str, Any]:
    checks = ["condition"]
    for evidence in ("serial_numbers", "lot_numbers"):
        if line.get(evidence):
            checks.append(evidence)
    checks += [c for c in rule.checks if c not in checks]
    task_line = {
        key: line[key]
        for key in (
            "line_number",
            "rma_line_number",
            "sku",
            "quantity",
            "unit_of_measure",
            "serial_numbers",
            "lot_numbers",
            "location",
        )
        if line.get(key)
    }
    return {**task_line, "checks": checks}


def _instructions(rule: InspectionRule, lines: Sequence[Mapping[str, Any]]) -> str:
    """The task in words, for systems that show a text and no lines (a CRM task, a ticket)."""
    parts = [rule.instructions] if rule.instructions else []
    for line in lines:
        where = f" in {line['location']}" if line.get("location") else ""
        serials = f", serials {', '.join(line['serial_numbers'])}" if line.get("serial_numbers") else ""
        lots = f", lots {', '.join(line['lot_numbers'])}" if line.get("lot_numbers") else ""
        parts.append(
            f"Line {line['line_number']}: {line['quantity']:g} {line['unit_of_measure']} {line['sku']}"
            f"{where}{serials}{lots}; check {', '.join(line['checks'])}."
        )
    text = " ".join(parts)
    return text if len(text) <= _NOTES_LIMIT else text[: _NOTES_LIMIT - 1] + "…"
