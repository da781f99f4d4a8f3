"""Each rule type decides as the policy says, and names itself (id and version) when it does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.lifecycle import PolicyBook
from gateway.lifecycle._rules import credit_totals, dispose, validate
from gateway.settings import PROJECT_ROOT
from tests.support.payloads import return_request

POLICY = PolicyBook.load(PROJECT_ROOT / "policies", PROJECT_ROOT / "contracts").for_partner("acme")
VERSION = POLICY.version


def request(**changes: Any) -> dict[str, Any]:
    """Three SSDs (2 defective with serials, 1 no longer needed) at 289.50 EUR, asked within 30 days."""
    return return_request(**{"requested_date": "2024-02-20", **changes})


def documents(quantity: float = 3, returned: float = 0, date: str = "2024-02-05") -> dict[str, Any]:
    line: dict[str, Any] = {"line_number": 1, "sku": "SSD-SAM-PM893-1T92", "quantity": quantity}
    if returned:
        line["returned_quantity"] = returned
    return {
        "return_id": "ret_" + "0" * 32,
        "system": "netsuite",
        "checked_at": "2024-02-20T09:00:00Z",
        "documents": [
            {
                "kind": "invoice",
                "number": "90031877",
                "system_id": "9003",
                "date": "2024-02-06",
                "lines": [dict(line, quantity=10)],
            },
            {"kind": "shipment", "number": "80071234", "system_id": "9002", "date": date, "lines": [line]},
        ],
        "missing": [],
    }


def test_a_request_inside_every_rule_is_authorized_automatically() -> None:
    verdict = validate(request(), documents(), {}, POLICY)
    assert verdict.outcome == "authorize" and verdict.decision == "authorized"
    assert verdict.rule == {"id": "auto-authorize", "version": VERSION}
    assert [ln["authorized_quantity"] for ln in verdict.lines] == [2, 1]


def test_the_window_counts_from_the_shipment_per_reason() -> None:
    late = request(requested_date="2024-03-11")  # 35 days after shipping: remorse too late, defects fine
    verdict = validate(late, documents(), {}, POLICY)
    assert verdict.decision == "partially_authorized"
    defective, remorse = verdict.lines
    assert defective["authorized_quantity"] == 2
    assert remorse["authorized_quantity"] == 0
    assert remorse["rejection_reason"] == "outside_return_window"
    assert remorse["rule"] == {"id": "window-standard", "version": VERSION}
    assert any("35 days after shipment 80071234" in f.detail for f in verdict.findings)


def test_every_line_outside_its_window_rejects_the_return() -> None:
    verdict = validate(request(requested_date="2027-01-01"), documents(), {}, POLICY)
    assert verdict.outcome == "reject"
    assert verdict.rejection_reason == "outside_return_window"
    assert verdict.rule["id"] == "window-warranty"


def test_shipped_less_already_returned_caps_the_quantity() -> None:
    by_erp = validate(request(), documents(quantity=3, returned=1), {}, POLICY)
    assert [ln["authorized_quantity"] for ln in by_erp.lines] == [2, 0]
    assert by_erp.lines[1]["rejection_reason"] == "exceeds_returnable_quantity"
    assert by_erp.decision == "partially_authorized"
    by_gateway = validate(request(), documents(quantity=3), {"SSD-SAM-PM893-1T92": 2}, POLICY)
    assert [ln["authorized_quantity"] for ln in by_gateway.lines] == [1, 0]
    nothing_left = validate(request(), documents(quantity=3), {"SSD-SAM-PM893-1T92": 3}, POLICY)
    assert nothing_left.outcome == "reject"
    assert nothing_left.rejection_reason == "exceeds_returnable_quantity"
    assert nothing_left.rule == {"id": "returnable-quantity", "version": VERSION}


def test_an_unknown_document_stops_for_a_person() -> None:
    facts = documents()
    facts["missing"] = [{"kind": "order", "number": "4500118832"}]
    verdict = validate(request(), facts, {}, POLICY)
    assert verdict.outcome == "validation_failed"
    assert verdict.rule["id"] == "erp-documents-known"
    assert "the ERP has no order 4500118832" in verdict.findings[0].detail


def test_missing_evidence_stops_for_a_person() -> None:
    payload = request()
    del payload["lines"][0]["serial_numbers"]
    verdict = validate(payload, documents(), {}, POLICY)
    assert verdict.outcome == "validation_failed"
    assert verdict.rule == {"id": "serials-for-defects", "version": VERSION}
    assert verdict.findings[0].line_number == 1
    transit = request(reason_code="damaged_in_transit", requested_date="2024-02-09")  # 7-day window
    for line in transit["lines"]:
        line.pop("reason_code", None)
    assert validate(transit, documents(), {}, POLICY).rule["id"] == "photos-for-transit-damage"
    for line in transit["lines"]:
        line["photos"] = ["https://photos.example/1.jpg"]
    assert validate(transit, documents(), {}, POLICY).outcome == "authorize"


@pytest.mark.parametrize(
    ("price", "rule", "approvers"),
    [("2000.00", "credit-over-5000", 1), ("9000.00", "credit-over-20000", 2), ("100.00", None, 0)],
)
def test_credit_value_thresholds_send_to_one_or_two_approvers(
    price: str, rule: str | None, approvers: int
) -> None:
    payload = request()
    for line in payload["lines"]:
        line["unit_price"]["amount"] = price
    verdict = validate(payload, documents(), {}, POLICY)
    if rule is None:
        assert verdict.outcome == "authorize"
        return
    assert verdict.outcome == "approval"
    assert verdict.rule == {"id": rule, "version": VERSION}
    assert verdict.approvers_needed == approvers


def test_a_threshold_in_another_currency_does_not_apply() -> None:
    payload = request()
    for line in payload["lines"]:
        line["unit_price"] = {"amount": "9000.00", "currency": "USD"}
    assert validate(payload, documents(), {}, POLICY).outcome == "authorize"


def test_documents_of_another_customer_stop_the_return_for_a_person() -> None:
    theirs = documents()
    theirs["documents"][0]["customer"] = "C999999"  # the invoice is someone else's
    theirs["documents"][1]["customer"] = "c100234 Nordwind Automation GmbH"  # ours, as NetSuite names it
    verdict = validate(request(), theirs, {}, POLICY)
    assert verdict.outcome == "validation_failed"
    assert verdict.rule == {"id": "erp-documents-customer", "version": VERSION}
    assert [f.detail for f in verdict.findings if f.rule["id"] == "erp-documents-customer"] == [
        "invoice 90031877 is customer C999999's, not C100234's"
    ]


def test_watched_customers_and_unauthorized_returns_need_a_person() -> None:
    watched = request(customer={"account_number": "C-6660"})
    assert validate(watched, documents(), {}, POLICY).rule["id"] == "watched-customers"
    unauthorized = request(reason_code="unauthorized_return")
    for line in unauthorized["lines"]:
        line.pop("reason_code", None)
    assert validate(unauthorized, documents(), {}, POLICY).rule["id"] == "unauthorized-returns"


def test_dispositions_follow_the_condition_and_credit_their_percentage() -> None:
    inspection = {
        "lines": [
            {
                "line_number": 1,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": 1,
                "unit_of_measure": "EA",
                "condition_code": "new_unopened",
            },
            {
                "line_number": 2,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": 1,
                "unit_of_measure": "EA",
                "condition_code": "opened_like_new",
            },
            {
                "line_number": 3,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": 1,
                "unit_of_measure": "EA",
                "condition_code": "wrong_item",
            },
        ]
    }
    disposed = dispose(request(), inspection, POLICY)
    assert [d["disposition_code"] for d in disposed.dispositions] == ["restock"] * 3
    assert [d["target_location"] for d in disposed.dispositions] == ["STOCK-A"] * 3
    assert [c["line_amount"]["amount"] for c in disposed.credit_lines] == ["289.50", "246.08"]
    assert [f.rule["id"] for f in disposed.findings] == [
        "restock-as-new",
        "restock-with-fee",
        "wrong-item-back-to-stock",
    ]
    assert credit_totals(disposed.credit_lines)["total"] == {"amount": "535.58", "currency": "EUR"}
    assert disposed.claims == []  # nothing goes back to the vendor


def test_defects_go_back_to_the_vendor_who_pays_a_share() -> None:
    inspection = {
        "lines": [
            {
                "line_number": 1,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": 2,
                "unit_of_measure": "EA",
                "condition_code": "defective",
                "serial_numbers": ["S1", "S2"],
            },
        ]
    }
    disposed = dispose(request(), inspection, POLICY)
    assert disposed.dispositions[0]["disposition_code"] == "return_to_vendor"
    assert disposed.dispositions[0]["vendor"] == {"account_number": "V-20417"}  # the supplier rule's
    [claim] = disposed.claims
    assert claim.rule == {"id": "samsung-warranty", "version": VERSION}
    assert claim.vendor == "V-20417" and claim.purchase_order == "PO-FRAME-2024-SAM"
    assert claim.lines[0]["amount_claimed"] == {"amount": "463.20", "currency": "EUR"}  # 80 % of 2 x 289.50
    assert claim.lines[0]["serial_numbers"] == ["S1", "S2"]
    assert disposed.credit_lines[0]["line_amount"]["amount"] == "579.00"  # the customer gets it all


def test_validation_never_changes_the_request() -> None:
    payload = request()
    before = copy.deepcopy(payload)
    validate(payload, documents(quantity=1), {}, POLICY)
    assert payload == before


def test_defects_no_supplier_rule_names_go_to_the_rules_vendor_unclaimed() -> None:
    payload = request()
    payload["lines"][0]["sku"] = "PSU-MW-RSP-500-24"
    inspection = {
        "lines": [
            {
                "line_number": 1,
                "sku": "PSU-MW-RSP-500-24",
                "quantity": 1,
                "unit_of_measure": "EA",
                "condition_code": "defective",
            },
        ]
    }
    disposed = dispose(payload, inspection, POLICY)
    assert disposed.dispositions[0]["vendor"] == {"account_number": "V-10000"}
    assert disposed.claims == []  # nobody agreed to pay: no claim
