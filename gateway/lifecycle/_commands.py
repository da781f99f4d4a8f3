"""The documents the lifecycle asks systems to post, built from a return's state: the draft
credit memo for what inspection found creditable, and the claim to a vendor who pays."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.lifecycle._rules import Claim, credit_totals
from gateway.lifecycle._step import LIFECYCLE, stamp
from gateway.lifecycle._store import ReturnState


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
