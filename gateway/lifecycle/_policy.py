"""Policy rules: declarative, one YAML file per business unit or partner, checked at start-up.

A policy says how long each kind of return may come back, which returns a person must
approve (credit value, customer tier), which reasons need evidence, how soon received goods
must be inspected and what is checked, and what happens to goods by the condition found.
Every rule has an id; the file has a version. Each decision the lifecycle takes records the
rule id and the version, so it can be explained later even after the file changed.

Example (``policies/default.yaml``)::

    id: nordlicht-default
    version: "2026-12-01"
    default: true                       # for partners no other policy names
    approvers: [operations]             # tenants whose returns:approve keys decide here
    return_windows:
      - {id: window-standard, days: 30}                       # every reason not named elsewhere
      - {id: window-warranty, reasons: [defective, warranty_claim], days: 730}
    approvals:
      - {id: credit-over-5000, credit_over: {amount: "5000", currency: EUR}}
      - {id: credit-over-20000, credit_over: {amount: "20000", currency: EUR}, approvers: 2}
      - {id: watched-customers, customer_tiers: [watch]}
    customer_tiers: {watch: [C-6660]}
    evidence:
      - {id: serials-for-defects, reasons: [defective, warranty_claim], require: [serial_numbers]}
    dispositions:
      - {id: restock-as-new, conditions: [new_unopened], disposition: restock, location: STOCK}
      - {id: vendor-pays-defects, conditions: [defective], disposition: return_to_vendor, vendor: V-10000}
      - {id: restock-with-fee, conditions: [opened_like_new], disposition: restock, location: STOCK,
         credit_percent: 85}
      - {id: scrap-damaged, conditions: [damaged], disposition: scrap, credit_percent: 100}
    suppliers:                          # who pays for goods returned to the vendor
      - {id: samsung-warranty, sku_prefixes: [SSD-SAM-], vendor: V-20417, purchase_order: PO-FRAME-2024-SAM,
         claim_window_days: 30, cost_percent: 80}
    inspections:                        # how soon received goods are inspected, and what is checked
      - {id: inspect-standard, due_within_hours: 48}
      - {id: inspect-warranty, reasons: [defective], due_within_hours: 72, checks: [function_test]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from gateway.errors import ConfigurationError

_ID = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


class PolicyError(ConfigurationError):
    """A policy file is missing, malformed or inconsistent; the gateway refuses to start."""


class Amount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: Annotated[str, msgspec.Meta(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?$")]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)


class ReturnWindow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Days after the document date (shipment, else invoice, else order) a return may be asked for."""

    id: _ID
    days: Annotated[int, msgspec.Meta(ge=0, le=3650)]
    reasons: list[str] | None = None
    """Reason codes it covers; without, every reason no other window names."""


class ApprovalRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When a person must approve, and how many different people."""

    id: _ID
    credit_over: Amount | None = None
    """Estimated credit (quantity x unit price) above this amount."""
    customer_tiers: list[str] | None = None
    reasons: list[str] | None = None
    approvers: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1


class EvidenceRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Reasons whose lines must carry evidence, else the return waits for a person."""

    id: _ID
    reasons: list[str]
    require: list[Literal["serial_numbers", "lot_numbers", "photos"]]


class DispositionRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What happens to goods found in a condition, and how much of their price is credited."""

    id: _ID
    conditions: list[str]
    disposition: str
    location: str | None = None
    """Where the goods go (required for restock, repair, refurbish)."""
    credit_percent: Annotated[int, msgspec.Meta(ge=0, le=100)] = 100
    vendor: str | None = None
    """For ``return_to_vendor``: the vendor (account) goods go to when no supplier rule names one."""


class SupplierRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who pays for goods sent back to the vendor: a claim goes to the vendor for matching SKUs."""

    id: _ID
    sku_prefixes: Annotated[list[str], msgspec.Meta(min_length=1)]
    vendor: str
    """The vendor's account number in the ERP."""
    purchase_order: str
    """The (frame) purchase order the vendor's claims go against."""
    claim_window_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    cost_percent: Annotated[int, msgspec.Meta(ge=0, le=100)] = 100
    """Share of our selling price claimed back (the vendor refunds what we paid, not what we sold at)."""


class InspectionRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How soon goods returned for some reasons must be inspected, and what the inspector checks."""

    id: _ID
    due_within_hours: Annotated[int, msgspec.Meta(ge=1, le=2160)]
    reasons: list[str] | None = None
    """Reason codes it covers; without, every reason no other inspection rule names."""
    checks: list[str] = []
    """Checks on every line (``InspectionCheck`` codes) beyond the condition, and the serials or lots
    a line carries, which are always checked."""
    priority: Literal["normal", "high"] = "normal"
    instructions: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Words for the inspector, put at the head of the task."""


#: The rule of a policy that names no inspection rule for a reason: inspect within two days.
DEFAULT_INSPECTION = InspectionRule(id="inspect-on-receipt", due_within_hours=48)


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: _ID
    version: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    approvers: list[str]
    partners: list[str] = []
    """Partners this policy governs; a policy with ``default: true`` governs every other one."""
    default: bool = False
    return_windows: list[ReturnWindow] = []
    approvals: list[ApprovalRule] = []
    customer_tiers: dict[str, list[str]] = {}
    evidence: list[EvidenceRule] = []
    dispositions: list[DispositionRule] = []
    suppliers: list[SupplierRule] = []
    inspections: list[InspectionRule] = []

    def rule(self, rule_id: str) -> dict[str, str]:
        """A ``RuleReference`` for one of this policy's rules."""
        return {"id": rule_id, "version": self.version}

    def window_for(self, reason: str) -> ReturnWindow | None:
        named = [w for w in self.return_windows if w.reasons and reason in w.reasons]
        if named:
            return named[0]
        return next((w for w in self.return_windows if not w.reasons), None)

    def inspection_for(self, reason: str) -> InspectionRule:
        named = [r for r in self.inspections if r.reasons and reason in r.reasons]
        if named:
            return named[0]
        return next((r for r in self.inspections if not r.reasons), DEFAULT_INSPECTION)

    def tiers_of(self, account: str) -> set[str]:
        return {tier for tier, accounts in self.customer_tiers.items() if account in accounts}

    def disposition_for(self, condition: str) -> DispositionRule | None:
        return next((d for d in self.dispositions if condition in d.conditions), None)

    def supplier_for(self, sku: str) -> SupplierRule | None:
        return next((s for s in self.suppliers if any(sku.startswith(p) for p in s.sku_prefixes)), None)


class Vocabulary(msgspec.Struct, frozen=True):
    """The codes policies may name, as the contracts define them."""

    reasons: frozenset[str]
    conditions: frozenset[str]
    dispositions: frozenset[str]
    checks: frozenset[str]

    @classmethod
    def from_contracts(cls, contracts_dir: Path) -> Vocabulary:
        defs = json.loads((contracts_dir / "definitions" / "v1" / "schema.json").read_text())["$defs"]
        return cls(
            frozenset(defs["ReasonCode"]["enum"]),
            frozenset(defs["ConditionCode"]["enum"]),
            frozenset(defs["DispositionCode"]["enum"]),
            frozenset(defs["InspectionCheck"]["enum"]),
        )


def _unknown(codes: Iterable[str], known: frozenset[str], what: str, where: str) -> list[str]:
    return [f"{where}: unknown {what} '{code}'" for code in codes if code not in known]


def check_policy(policy: Policy, vocabulary: Vocabulary) -> list[str]:
    """Every inconsistency in one policy (unknown codes, repeated ids, ambiguous rules)."""
    problems: list[str] = []
    ids = [
        r.id
        for group in (
            policy.return_windows,
            policy.approvals,
            policy.evidence,
            policy.dispositions,
            policy.suppliers,
            policy.inspections,
        )
        for r in group
    ]
    problems += [f"rule id '{i}' is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if sum(1 for w in policy.return_windows if not w.reasons) > 1:
        problems.append("return_windows: only one window may cover every other reason")
    for w in policy.return_windows:
        problems += _unknown(w.reasons or (), vocabulary.reasons, "reason code", f"return_windows.{w.id}")
    for a in policy.approvals:
        problems += _unknown(a.reasons or (), vocabulary.reasons, "reason code", f"approvals.{a.id}")
        problems += [
            f"approvals.{a.id}: unknown customer tier '{t}'"
            for t in a.customer_tiers or ()
            if t not in policy.customer_tiers
        ]
        if a.credit_over is None and not a.customer_tiers and not a.reasons:
            problems.append(f"approvals.{a.id}: names no condition (credit_over, customer_tiers, reasons)")
    for e in policy.evidence:
        problems += _unknown(e.reasons, vocabulary.reasons, "reason code", f"evidence.{e.id}")
    seen: dict[str, str] = {}
    for d in policy.dispositions:
        where = f"dispositions.{d.id}"
        problems += _unknown(d.conditions, vocabulary.conditions, "condition code", where)
        problems += _unknown([d.disposition], vocabulary.dispositions, "disposition code", where)
        if d.disposition in ("restock", "repair", "refurbish") and not d.location:
            problems.append(f"{where}: {d.disposition} needs a location")
        if d.disposition == "return_to_vendor" and not d.vendor:
            problems.append(f"{where}: return_to_vendor needs a vendor (for items no supplier rule names)")
        for condition in d.conditions:
            if condition in seen:
                problems.append(f"{where}: condition '{condition}' is already decided by {seen[condition]}")
            seen[condition] = d.id
    uncovered = sorted(vocabulary.conditions - set(seen))
    if uncovered:  # goods in any condition must have somewhere to go, or they would wait unowned
        problems.append(f"dispositions: no rule for condition(s) {', '.join(uncovered)}")
    if sum(1 for r in policy.inspections if not r.reasons) > 1:
        problems.append("inspections: only one rule may cover every other reason")
    for r in policy.inspections:
        problems += _unknown(r.reasons or (), vocabulary.reasons, "reason code", f"inspections.{r.id}")
        problems += _unknown(r.checks, vocabulary.checks, "inspection check", f"inspections.{r.id}")
    if not policy.approvers:
        problems.append("approvers: name at least one tenant whose keys may approve")
    return problems


class PolicyBook:
    """Every policy, and which one governs each partner."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = {p.id: p for p in policies}
        self._by_partner = {partner: p for p in self.policies.values() for partner in p.partners}
        self._default = next((p for p in self.policies.values() if p.default), None)

    def for_partner(self, partner: str) -> Policy:
        policy = self._by_partner.get(partner, self._default)
        if policy is None:  # load() refuses a book without a default, so only a hand-built one
            raise PolicyError(f"no policy governs partner '{partner}' and none is the default")
        return policy

    @classmethod
    def load(cls, folder: Path, contracts_dir: Path) -> PolicyBook:
        """Read and check every ``*.yaml`` in ``folder``; every problem is reported at once."""
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        if not files:
            raise PolicyError(f"no policy files (*.yaml) in {folder}")
        vocabulary = Vocabulary.from_contracts(contracts_dir)
        problems: list[str] = []
        policies: list[Policy] = []
        for path in files:
            try:
                policy = msgspec.yaml.decode(path.read_bytes(), type=Policy)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                problems.append(f"{path.name}: {exc}")
                continue
            problems += [f"{path.name}: {p}" for p in check_policy(policy, vocabulary)]
            policies.append(policy)
        problems += _book_problems(policies)
        if problems:
            raise PolicyError(f"policies in {folder}: " + "; ".join(problems))
        return cls(policies)


def _book_problems(policies: list[Policy]) -> list[str]:
    problems: list[str] = []
    defaults = [p.id for p in policies if p.default]
    if len(defaults) != 1:
        problems.append(f"exactly one policy must be the default (found {len(defaults)}: {defaults})")
    owner: dict[str, str] = {}
    for policy in policies:
        for partner in policy.partners:
            if partner in owner:
                problems.append(f"partner '{partner}' is governed by both {owner[partner]} and {policy.id}")
            owner[partner] = policy.id
    ids = [p.id for p in policies]
    problems += [f"policy id '{i}' is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    return problems


def credit_value(lines: Iterable[Mapping[str, object]]) -> dict[str, Decimal]:
    """Estimated credit of request lines (quantity x unit price), per currency."""
    totals: dict[str, Decimal] = {}
    for line in lines:
        price = line["unit_price"]
        assert isinstance(price, Mapping)
        currency = str(price["currency"])
        totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(price["amount"])) * Decimal(
            str(line["quantity"])
        )
    return totals
