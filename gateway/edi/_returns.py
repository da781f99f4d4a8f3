"""From return notice to canonical return request, with the partner's tables.

The SKU, the customer and the currency come from the trading-partner profile in Python
(a lookup with fallbacks across item qualifiers is not a field map); reasons and units are
translated by ``mappings/edi/return-notice.inbound.yaml`` with the partner's tables passed
as variables. Anything refused here is reported back into the 997 against the segment the
value came from, so the partner sees which line to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.edi._check import Transaction
from gateway.edi._partners import Partner
from gateway.edi._structure import ElementError, SegmentError
from gateway.edi._tokens import is_digits
from gateway.errors import Violation
from gateway.mapping import CompiledMapping, MappingCatalog, MappingFailure
from gateway.registry import Contract

MAPPING = ("edi", "return-notice.inbound")
#: Canonical line field → (BLI element position, element reference, AK403 code).
_LINE_FIELDS = {
    "sku": (2, 234, "7"),
    "quantity": (3, 380, "6"),
    "unit_of_measure": (4, 355, "7"),
    "unit_price": (6, 212, "6"),
}
#: Canonical header field → (BGN element position, element reference, AK403 code).
_HEADER_FIELDS = {"external_id": (2, 127, "6"), "requested_date": (3, 373, "8")}
_SELLER_ASSIGNED = "91"


def locate(transaction: Transaction, violations: Sequence[Violation]) -> list[SegmentError]:
    """Where in the 180 each contract violation comes from: the line's BLI or the BGN."""
    notice = transaction.notice
    bgn = int(notice.get("sources", {}).get("reference", 2))
    errors: dict[int, SegmentError] = {}
    for violation in violations:
        parts = violation.pointer.strip("/").split("/")
        if (
            parts[0] == "lines"
            and len(parts) > 1
            and is_digits(parts[1])
            and int(parts[1]) < len(notice["lines"])
        ):
            position, tag, loop, fields = (
                notice["lines"][int(parts[1])]["position"],
                "BLI",
                "BLI",
                _LINE_FIELDS,
            )
            name = parts[2] if len(parts) > 2 else ""
        else:
            position, tag, loop, fields, name = bgn, "BGN", None, _HEADER_FIELDS, parts[0]
        error = errors.setdefault(position, SegmentError(tag, position, loop, "8", detail=""))
        error.detail = "; ".join(filter(None, (error.detail, f"{violation.pointer}: {violation.detail}")))
        if name in fields:
            element, ref, code = fields[name]
            if all(e.position != element for e in error.elements):
                error.elements.append(ElementError(element, ref, code))
    return list(errors.values())


class ReturnNoticeMapper:
    """Turns accepted transactions into canonical return requests, refusing what cannot be."""

    def __init__(self, mapping: CompiledMapping, contract: Contract) -> None:
        self._mapping = mapping
        self._contract = contract

    @classmethod
    def from_catalog(cls, catalog: MappingCatalog, contract: Contract) -> ReturnNoticeMapper:
        return cls(catalog.get(*MAPPING), contract)

    def apply(self, transaction: Transaction, name: str, partner: Partner) -> dict[str, Any] | None:
        """The canonical request, also kept on ``transaction``; ``None`` after rejecting it."""
        notice = transaction.notice
        buyer = notice["parties"].get("BY", {})
        account = buyer.get("id") if buyer.get("id_qualifier") == _SELLER_ASSIGNED else None
        notice["customer"] = {"account_number": account or partner.customer_account}
        if buyer.get("name"):
            notice["customer"]["name"] = buyer["name"]
        notice["currency"] = partner.currency
        for line in notice["lines"]:
            sku = partner.sku(line["item_ids"])
            if sku is None:
                transaction.result.reject(
                    SegmentError(
                        "BLI",
                        line["position"],
                        "BLI",
                        "8",
                        [ElementError(2, 234, "7", line["sku"][:99])],
                        detail=f"no SKU for item ids {line['item_ids']}",
                    )
                )
            else:
                line["sku"] = sku
        if not transaction.result.accepted:
            return None
        variables = {"partner": name, "reasons": partner.reasons, "units": partner.units}
        try:  # the function itself: the contract check below locates each violation
            request: dict[str, Any] = self._mapping.function(notice, variables)
        except MappingFailure as exc:
            bgn = int(notice.get("sources", {}).get("reference", 2))
            transaction.result.reject(SegmentError("BGN", bgn, None, "8", detail=exc.detail))
            return None
        violations = self._contract.violations(request)
        if violations:
            for error in locate(transaction, violations):
                transaction.result.reject(error)
            return None
        transaction.request = request
        return request
