"""180 transaction sets and interchanges for the EDI tests, in the shapes partners send."""

from __future__ import annotations

import uuid
from typing import Any

from gateway.edi._write import write_interchange

Segments = list[list[str]]


def reference() -> str:
    """A fresh BGN02 (the gateway refuses a return reference it already holds)."""
    return f"RQ-{uuid.uuid4().hex[:10].upper()}"


def return_set(
    ref: str | None = None, *, lines: Segments | None = None, header: Segments | None = None
) -> Segments:
    """The segments between ST and SE of a 180 asking to return two SSDs (one by buyer part)."""
    return [
        ["BGN", "00", ref or reference(), "20240311"],
        ["RDR", "", "DM", "", "Two drives report SMART errors"],
        ["PRF", "4500118832", "", "", "20240202"],
        ["N9", "IV", "90031877", "", "20240206"],
        *(header or []),
        ["N1", "BY", "Nordwind Automation GmbH", "91", "C100234"],
        ["PER", "IC", "Jana Krueger", "TE", "+49 40 555 0192", "EM", "j.krueger@nordwind-automation.example"],
        ["N1", "SF", "Nordwind Automation GmbH"],
        ["N3", "Wareneingang Tor 3", "Hafenstrasse 21"],
        ["N4", "Hamburg", "", "20457", "DE"],
        *(
            lines
            if lines is not None
            else [
                ["BLI", "VN", "SSD-SAM-PM893-1T92", "2", "EA", "CON", "289.50"],
                ["PID", "F", "", "", "", "Samsung PM893 1.92 TB SATA SSD"],
                ["N9", "SE", "S5KANE0R401234"],
                ["N9", "SE", "S5KANE0R401239"],
                ["N9", "LI", "10"],
                ["BLI", "BP", "NW-4711", "1", "EA", "CON", "289.50"],
                ["RDR", "", "EI"],
            ]
        ),
    ]


def interchange(groups: list[list[Segments]], **options: Any) -> bytes:
    """An interchange with a fresh control number unless one is given."""
    options.setdefault("control", uuid.uuid4().int % 999_999_999 + 1)
    return write_interchange(groups, **options).encode()


def segments_of(ack: str, terminator: str = "~", element: str = "*") -> list[list[str]]:
    """A 997 as lists of elements, blanks around segments removed."""
    return [s.strip().split(element) for s in ack.split(terminator) if s.strip()]


def expected_request(ref: str) -> dict[str, Any]:
    """The canonical return request ``return_set(ref)`` becomes for partner nordwind."""
    return {
        "external_id": ref,
        "channel": "edi",
        "customer": {"account_number": "C100234", "name": "Nordwind Automation GmbH"},
        "reason_code": "defective",
        "requested_date": "2024-03-11",
        "references": {
            "order": {"number": "4500118832", "date": "2024-02-02"},
            "invoice": {"number": "90031877", "date": "2024-02-06"},
        },
        "contact": {
            "name": "Jana Krueger",
            "email": "j.krueger@nordwind-automation.example",
            "phone": "+49 40 555 0192",
        },
        "ship_from": {
            "lines": ["Nordwind Automation GmbH", "Wareneingang Tor 3", "Hafenstrasse 21"],
            "city": "Hamburg",
            "postal_code": "20457",
            "country": "DE",
        },
        "notes": "Two drives report SMART errors",
        "lines": [
            {
                "line_number": 1,
                "sku": "SSD-SAM-PM893-1T92",
                "description": "Samsung PM893 1.92 TB SATA SSD",
                "quantity": 2,
                "unit_of_measure": "C62",
                "unit_price": {"amount": "289.5", "currency": "EUR"},
                "serial_numbers": ["S5KANE0R401234", "S5KANE0R401239"],
                "order_line_number": 10,
            },
            {
                "line_number": 2,
                "sku": "SSD-SAM-PM893-1T92",
                "quantity": 1,
                "unit_of_measure": "C62",
                "unit_price": {"amount": "289.5", "currency": "EUR"},
                "reason_code": "no_longer_needed",
            },
        ],
    }
