"""The ERP documents the returns refer to: a run of thousands of returns needs more shipped
goods than the sandbox's one seeded shipment (6 drives), or the policy rightly rejects every
return past the shipped quantity. Each group of returns gets a copy of the seeded order,
shipment and invoice of its own, with numbers of its own and quantities for the whole group."""

from __future__ import annotations

import copy
from typing import Any

from gateway.sandbox import Sandbox

#: The seeded NetSuite documents the contract's example refers to: record type, tranId, kind.
SEEDED = (("salesOrder", "4500118832", "order"), ("itemFulfillment", "80071234", "shipment"),
          ("invoice", "90031877", "invoice"))  # fmt: skip
RETURNS_PER_GROUP = 50
"""Returns sharing one copy; each asks 3 of the 6 drives the seeded shipment holds."""


def seed_documents(erp: Sandbox, returns: int, tag: int) -> list[dict[str, Any]]:
    """Copies for ``returns`` returns in the ERP sandbox; the ``references`` of each group."""
    groups = (returns + RETURNS_PER_GROUP - 1) // RETURNS_PER_GROUP
    references: list[dict[str, Any]] = []
    for group in range(groups):
        refs: dict[str, Any] = {}
        for record_type, number, kind in SEEDED:
            seeded = erp.state.find(record_type, "tranId", number)
            if seeded is None:
                raise RuntimeError(f"the ERP sandbox holds no {record_type} {number} to copy")
            record = copy.deepcopy(seeded)
            record["id"] = erp.state.new_id()
            record["tranId"] = f"{number}-{tag}-{group}"
            for line in record["item"]["items"]:
                line["quantity"] = line["quantity"] * RETURNS_PER_GROUP
            erp.state.put(record_type, record["id"], record)
            refs[kind] = {"number": record["tranId"], "date": record["tranDate"]}
        references.append(refs)
    return references
