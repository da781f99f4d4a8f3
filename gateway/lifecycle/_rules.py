"""What the policy decides about one return: pure functions, no I/O, every decision explained.

``validate`` takes a request and what the ERP holds about its documents and answers a
:class:`Verdict`: authorize (fully or in part), reject, send to approval, or stop for a person
because the request cannot be checked (a document the ERP does not know, missing evidence).
``dispose`` turns an inspection into dispositions and the credit they earn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import msgspec

from gateway.lifecycle._policy import Policy, credit_value

#: Built-in checks, versioned with the policy that applies them.
DOCUMENTS_KNOWN = "erp-documents-known"
DOCUMENTS_CUSTOMER = "erp-documents-customer"
RETURNABLE_QUANTITY = "returnable-quantity"
AUTO_AUTHORIZE = "auto-authorize"
_BASIS_ORDER = ("shipment", "invoice", "order")


class Finding(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing a rule found, for the timeline."""

    rule: dict[str, str]
    detail: str
    line_number: int | None = None


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Literal["authorize", "approval", "reject", "validation_failed"]
    decision: Literal["authorized", "partially_authorized", "rejected"]
    lines: list[dict[str, Any]]
    """Authorization lines: requested and authorized quantity, and why a line was cut."""
    rule: dict[str, str]
    """The rule that decided the outcome."""
    findings: list[Finding]
    approvers_needed: int = 0
    rejection_reason: str | None = None


def _reason(request: Mapping[str, Any], line: Mapping[str, Any]) -> str:
    return str(line.get("reason_code") or request["reason_code"])


def _basis(documents: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The document quantities and dates count from: the shipment, else invoice, else order."""
    by_kind = {d["kind"]: d for d in documents}
    return next((by_kind[k] for k in _BASIS_ORDER if k in by_kind), None)


def returnable(document: Mapping[str, Any], already_returned: Mapping[str, float]) -> dict[str, float]:
    """Per SKU: what the document holds, less what the ERP and this gateway already took back."""
    left: dict[str, float] = {}
    for line in document["lines"]:
        sku = line["sku"]
        left[sku] = left.get(sku, 0.0) + float(line["quantity"]) - float(line.get("returned_quantity", 0))
    for sku, quantity in already_returned.items():
        left[sku] = left.get(sku, 0.0) - quantity
    return left


def validate(
    request: Mapping[str, Any],
    documents: Mapping[str, Any],
    already_returned: Mapping[str, float],
    policy: Policy,
) -> Verdict:
    """Check a request against its ERP documents and the policy; decide what happens next."""
    findings: list[Finding] = []
    lines = [
        {
            "line_number": line["line_number"],
            "sku": line["sku"],
            "requested_quantity": line["quantity"],
            "authorized_quantity": line["quantity"],
            "unit_of_measure": line["unit_of_measure"],
        }
        for line in request["lines"]
    ]
    stop = _cannot_check(request, documents, policy, findings)
    if stop is not None:
        return Verdict(
            outcome="validation_failed", decision="rejected", lines=lines, rule=stop, findings=findings
        )
    basis = _basis(documents["documents"])
    assert basis is not None  # _cannot_check stops when the ERP knew none
    _apply_windows(request, basis, policy, lines, findings)
    _apply_quantities(basis, already_returned, policy, lines, findings)
    authorized = [ln for ln in lines if ln["authorized_quantity"] > 0]
    if not authorized:
        first_cut = lines[0]
        return Verdict(
            outcome="reject",
            decision="rejected",
            lines=lines,
            rule=first_cut["rule"],
            findings=findings,
            rejection_reason=first_cut["rejection_reason"],
        )
    decision: Literal["authorized", "partially_authorized"] = (
        "authorized"
        if all(ln["authorized_quantity"] == ln["requested_quantity"] for ln in lines)
        else "partially_authorized"
    )
    approval = _approval_needed(request, lines, policy, findings)
    if approval is not None:
        rule, needed = approval
        return Verdict(
            outcome="approval",
            decision=decision,
            lines=lines,
            rule=rule,
            findings=findings,
            approvers_needed=needed,
        )
    return Verdict(
        outcome="authorize",
        decision=decision,
        lines=lines,
        rule=policy.rule(AUTO_AUTHORIZE),
        findings=findings,
    )


def _cannot_check(
    request: Mapping[str, Any], documents: Mapping[str, Any], policy: Policy, findings: list[Finding]
) -> dict[str, str] | None:
    """The rule that stops validation (a person must look), or ``None``."""
    stop: dict[str, str] | None = None
    for missing in documents["missing"]:
        stop = policy.rule(DOCUMENTS_KNOWN)
        findings.append(Finding(stop, f"the ERP has no {missing['kind']} {missing['number']}"))
    if not documents["documents"] and stop is None:
        stop = policy.rule(DOCUMENTS_KNOWN)
        findings.append(Finding(stop, "the ERP holds none of the referenced documents"))
    customer = str(request["customer"]["account_number"])
    for document in documents["documents"]:
        owner = document.get("customer")
        if owner and not _same_customer(str(owner), customer):
            stop = stop or policy.rule(DOCUMENTS_CUSTOMER)
            findings.append(
                Finding(
                    policy.rule(DOCUMENTS_CUSTOMER),
                    f"{document['kind']} {document['number']} is customer {owner}'s, not {customer}'s",
                )
            )
    for rule in policy.evidence:
        for line in request["lines"]:
            if _reason(request, line) not in rule.reasons:
                continue
            absent = [field for field in rule.require if not line.get(field)]
            if absent:
                stop = stop or policy.rule(rule.id)
                findings.append(
                    Finding(
                        policy.rule(rule.id),
                        f"reason {_reason(request, line)} needs {', '.join(absent)}",
                        line["line_number"],
                    )
                )
    return stop


def _same_customer(owner: str, account_number: str) -> bool:
    """Whether an ERP document's customer is the account: its number alone (Business Central's
    ``customerNumber``) or at the head of a display name (NetSuite's ``entity.refName`` shows
    "C100234 Nordwind Automation GmbH" where customers are numbered)."""
    words = owner.split()
    return bool(words) and words[0].casefold() == account_number.strip().casefold()


def _cut(line: dict[str, Any], quantity: float, reason: str, rule: dict[str, str]) -> None:
    line["authorized_quantity"] = max(0.0, min(line["authorized_quantity"], quantity))
    if isinstance(line["requested_quantity"], int) and float(line["authorized_quantity"]).is_integer():
        line["authorized_quantity"] = int(line["authorized_quantity"])
    line.setdefault("rejection_reason", reason)
    line.setdefault("rule", rule)


def _apply_windows(
    request: Mapping[str, Any],
    basis: Mapping[str, Any],
    policy: Policy,
    lines: list[dict[str, Any]],
    findings: list[Finding],
) -> None:
    if not basis.get("date"):
        return  # nothing to count from; the timeline shows no window finding
    since = dt.date.fromisoformat(basis["date"])
    asked = dt.date.fromisoformat(request["requested_date"])
    for source, line in zip(request["lines"], lines, strict=True):
        window = policy.window_for(_reason(request, source))
        if window is None:
            continue
        last_day = since + dt.timedelta(days=window.days)
        if asked > last_day:
            rule = policy.rule(window.id)
            _cut(line, 0, "outside_return_window", rule)
            findings.append(
                Finding(
                    rule,
                    f"asked on {asked}, {(asked - since).days} days after {basis['kind']} "
                    f"{basis['number']} of {since}; the window is {window.days} days",
                    line["line_number"],
                )
            )


def _apply_quantities(
    basis: Mapping[str, Any],
    already_returned: Mapping[str, float],
    policy: Policy,
    lines: list[dict[str, Any]],
    findings: list[Finding],
) -> None:
    left = returnable(basis, already_returned)
    rule = policy.rule(RETURNABLE_QUANTITY)
    for line in lines:
        wanted = float(line["authorized_quantity"])
        if wanted <= 0:
            continue
        available = max(0.0, left.get(line["sku"], 0.0))
        if wanted > available:
            _cut(line, available, "exceeds_returnable_quantity", rule)
            findings.append(
                Finding(
                    rule,
                    f"{line['sku']}: {wanted:g} asked, {available:g} returnable on {basis['kind']} "
                    f"{basis['number']} (shipped less already returned)",
                    line["line_number"],
                )
            )
        left[line["sku"]] = available - float(line["authorized_quantity"])


def authorized_credit(request: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Estimated credit, per currency, of the authorization ``lines`` at the request's prices."""
    prices = {ln["line_number"]: ln for ln in request["lines"]}
    return credit_value(
        {"unit_price": prices[ln["line_number"]]["unit_price"], "quantity": ln["authorized_quantity"]}
        for ln in lines
    )


def _approval_needed(
    request: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], policy: Policy, findings: list[Finding]
) -> tuple[dict[str, str], int] | None:
    """The approval rule with the most approvers among those that match, and that number."""
    value = authorized_credit(request, lines)
    tiers = policy.tiers_of(request["customer"]["account_number"])
    reasons = {_reason(request, line) for line in request["lines"]}
    best: tuple[dict[str, str], int] | None = None
    for rule in policy.approvals:
        why: str | None = None
        if rule.credit_over is not None:
            amount = value.get(rule.credit_over.currency)
            if amount is not None and amount > rule.credit_over.value:
                why = (
                    f"estimated credit {amount} {rule.credit_over.currency} is over {rule.credit_over.amount}"
                )
        if why is None and rule.customer_tiers and tiers & set(rule.customer_tiers):
            why = f"customer {request['customer']['account_number']} is in tier {', '.join(sorted(tiers))}"
        if why is None and rule.reasons and reasons & set(rule.reasons):
            why = f"reason {', '.join(sorted(reasons & set(rule.reasons)))} needs a person"
        if why is None:
            continue
        reference = policy.rule(rule.id)
        findings.append(Finding(reference, f"{why}: {rule.approvers} approver(s)"))
        if best is None or rule.approvers > best[1]:
            best = (reference, rule.approvers)
    return best


class Disposed(msgspec.Struct, frozen=True, kw_only=True):
    dispositions: list[dict[str, Any]]
    """Disposition lines (the contract's shape), each with the rule that chose it."""
    credit_lines: list[dict[str, Any]]
    claims: list[Claim]
    """Supplier claims for goods going back to vendors who pay for them."""
    findings: list[Finding]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    rule: dict[str, str]
    vendor: str
    purchase_order: str
    claim_window_days: int
    lines: list[dict[str, Any]]


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), "currency": currency}


def dispose(request: Mapping[str, Any], inspection: Mapping[str, Any], policy: Policy) -> Disposed:
    """Disposition by condition code, and the credit each inspected line earns (price x percent)."""
    prices: dict[str, Mapping[str, Any]] = {}
    for line in request["lines"]:
        prices.setdefault(line["sku"], line)  # the first line of a SKU prices it
    dispositions: list[dict[str, Any]] = []
    credit_lines: list[dict[str, Any]] = []
    findings: list[Finding] = []
    claims: dict[str, Claim] = {}
    for index, line in enumerate(inspection["lines"], start=1):
        rule = policy.disposition_for(line["condition_code"])
        assert rule is not None  # check_policy insists every condition is covered
        reference = policy.rule(rule.id)
        disposition: dict[str, Any] = {
            "line_number": index,
            "inspection_line_number": line["line_number"],
            "sku": line["sku"],
            "quantity": line["quantity"],
            "unit_of_measure": line["unit_of_measure"],
            "disposition_code": rule.disposition,
        }
        if rule.location:
            disposition["target_location"] = rule.location
        dispositions.append(disposition)
        source = prices.get(line["sku"])
        supplier = policy.supplier_for(line["sku"]) if rule.disposition == "return_to_vendor" else None
        if rule.disposition == "return_to_vendor":
            disposition["vendor"] = {"account_number": supplier.vendor if supplier else rule.vendor}
        if supplier is not None and source is not None:
            claim = claims.setdefault(
                supplier.id,
                Claim(
                    rule=policy.rule(supplier.id),
                    vendor=supplier.vendor,
                    purchase_order=supplier.purchase_order,
                    claim_window_days=supplier.claim_window_days,
                    lines=[],
                ),
            )
            claimed = Decimal(source["unit_price"]["amount"]) * Decimal(str(line["quantity"]))
            claim_line: dict[str, Any] = {
                "line_number": len(claim.lines) + 1,
                "sku": line["sku"],
                "quantity": line["quantity"],
                "unit_of_measure": line["unit_of_measure"],
                "amount_claimed": _money(
                    claimed * supplier.cost_percent / 100, source["unit_price"]["currency"]
                ),
                "reason_code": str(source.get("reason_code") or request["reason_code"]),
                "condition_code": line["condition_code"],
            }
            if line.get("serial_numbers"):
                claim_line["serial_numbers"] = line["serial_numbers"]
            claim.lines.append(claim_line)
            findings.append(
                Finding(
                    policy.rule(supplier.id),
                    f"{line['sku']} x{line['quantity']:g} claimed from vendor {supplier.vendor}",
                    line["line_number"],
                )
            )
        detail = f"{line['sku']} x{line['quantity']:g} {line['condition_code']}: {rule.disposition}"
        if source is None or rule.credit_percent == 0:
            findings.append(Finding(reference, f"{detail}, no credit", line["line_number"]))
            continue
        price = source["unit_price"]
        unit = Decimal(price["amount"])
        amount = unit * Decimal(str(line["quantity"])) * Decimal(rule.credit_percent) / 100
        credit_line: dict[str, Any] = {
            "line_number": len(credit_lines) + 1,
            "return_line_number": source["line_number"],
            "sku": line["sku"],
            "quantity": line["quantity"],
            "unit_of_measure": line["unit_of_measure"],
            "unit_price": _money(unit, price["currency"]),
            "line_amount": _money(amount, price["currency"]),
        }
        if rule.location:  # restocked, repaired, refurbished: the goods go back into stock there
            credit_line["return_location"] = rule.location
        credit_lines.append(credit_line)
        findings.append(
            Finding(reference, f"{detail}, {rule.credit_percent} % credited", line["line_number"])
        )
    return Disposed(
        dispositions=dispositions, credit_lines=credit_lines, claims=list(claims.values()), findings=findings
    )


def credit_totals(
    lines: Sequence[Mapping[str, Any]], field: str = "line_amount"
) -> dict[str, dict[str, str]]:
    """Subtotal and total of credit (or claim) lines; tax is the ERP's to compute when it posts."""
    currency = lines[0][field]["currency"]
    subtotal = sum((Decimal(ln[field]["amount"]) for ln in lines), Decimal(0))
    return {
        "subtotal": _money(subtotal, currency),
        "tax": _money(Decimal(0), currency),
        "total": _money(subtotal, currency),
    }
