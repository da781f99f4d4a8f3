"""Read a checked 180 into the neutral *return notice* the mappings take as input.

The return notice names business things (reference, dates, parties, references, lines with
their item ids), not X12 positions, so an EDIFACT RETANN reader can produce the same
document and reuse ``mappings/edi/``. Codes stay the partner's own (reasons ``RDR02``,
units ``BLI04``): the mapping translates them with the partner's tables. ``sources`` keeps
where each header field and line came from, so a refusal further on can name the segment.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.edi._envelope import Group, Interchange, TransactionSet
from gateway.edi._tokens import Segment, is_digits

#: N9 / REF qualifiers (128) read into the return's references.
REFERENCE_QUALIFIERS = {
    "PO": "order",
    "IV": "invoice",
    "IN": "invoice",
    "BM": "shipment",
    "PK": "shipment",
    "RA": "rma",
}


_EMPTY = ("",) * 13


def _date(value: str) -> str | None:
    if len(value) == 8 and is_digits(value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return None


def _number(value: str) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _decimal(value: str) -> str:
    """X12 ``R`` (``289.50``, ``.5``) as a canonical decimal string (``289.5``, ``0.5``)."""
    return format(Decimal(value).normalize(), "f")


def _party(segments: list[Segment]) -> dict[str, Any]:
    n1 = segments[0]
    party: dict[str, Any] = {"role": n1.get(1)}
    if n1.get(2):
        party["name"] = n1.get(2)
    if n1.get(4):
        party["id"] = n1.get(4)
        party["id_qualifier"] = n1.get(3)
    lines: list[str] = [n1.get(2)] if n1.get(2) else []
    for segment in segments[1:]:
        if segment.tag == "N2" or segment.tag == "N3":
            lines += [v for v in segment.elements[:2] if v]
        elif segment.tag == "N4":
            address = {
                "city": segment.get(1),
                "region": segment.get(2),
                "postal_code": segment.get(3),
                "country": segment.get(4),
            }
            party["address"] = {k: v for k, v in address.items() if v}
        elif segment.tag == "PER":
            contact = {"name": segment.get(2)}
            for qualifier, number in (
                (segment.get(3), segment.get(4)),
                (segment.get(5), segment.get(6)),
                (segment.get(7), segment.get(8)),
            ):
                key = {"TE": "phone", "EM": "email", "FX": "fax"}.get(qualifier)
                if key and number:
                    contact[key] = number
            party["contact"] = {k: v for k, v in contact.items() if v}
    if lines and "address" in party:
        party["address"]["lines"] = lines[:4]
    return party


def _reference(segment: Segment, into: dict[str, Any]) -> None:
    name = REFERENCE_QUALIFIERS.get(segment.get(1))
    if name and segment.get(2) and name not in into:
        reference: dict[str, Any] = {"number": segment.get(2)}
        if segment.tag == "N9" and _date(segment.get(4)):
            reference["date"] = _date(segment.get(4))
        into[name] = reference


def read_return_notice(interchange: Interchange, group: Group, tset: TransactionSet) -> dict[str, Any]:
    """The return notice of a 180 that passed its structure check."""
    notice: dict[str, Any] = {
        "standard": "x12",
        "message": tset.code,
        "sender": interchange.sender,
        "receiver": interchange.receiver,
        "interchange": interchange.control,
        "group": group.control,
        "transaction": tset.control,
        "test": interchange.test,
        "references": {},
        "parties": {},
        "lines": [],
    }
    sources: dict[str, int] = {}
    references: dict[str, Any] = notice["references"]
    lines: list[dict[str, Any]] = notice["lines"]
    line: dict[str, Any] | None = None
    party: list[Segment] | None = None

    def close_party() -> None:
        nonlocal party
        if party is not None and line is None:
            read = _party(party)
            notice["parties"].setdefault(read.pop("role"), read)
        party = None

    for position, segment in enumerate(tset.segments, start=1):
        tag = segment.tag
        v = (tag, *segment.elements, *_EMPTY)  # v[n] is element n, "" when absent
        if tag in ("N1", "BLI", "SE") or (party is not None and tag not in ("N2", "N3", "N4", "PER")):
            close_party()
        if tag == "BGN":
            notice.update(purpose=v[1], reference=v[2], date=_date(v[3]))
            sources["reference"] = position
        elif tag == "BLI":
            line = {"line_number": len(lines) + 1, "item_ids": {}, "position": position}
            for offset in (1, 8, 10, 12):
                if v[offset] and v[offset + 1]:
                    line["item_ids"].setdefault(v[offset], v[offset + 1])
            line["sku"] = v[2]
            line["quantity"] = _number(v[3])
            line["unit"] = v[4]
            line["unit_price"] = _decimal(v[6])
            lines.append(line)
        elif tag == "RDR":
            target = line if line is not None else notice
            for key, index in (("disposition", 1), ("reason", 2), ("response", 3), ("reason_text", 4)):
                if v[index]:
                    target[key] = v[index]
        elif tag == "PRF" and line is None:
            references.setdefault("order", {"number": v[1]})
            if _date(v[4]):
                references["order"]["date"] = _date(v[4])
        elif tag in ("N9", "REF"):
            if line is None:
                _reference(segment, references)
            elif v[1] == "SE" and v[2]:
                line.setdefault("serial_numbers", []).append(v[2])
            elif v[1] == "LI" and is_digits(v[2]):
                line["order_line_number"] = int(v[2])
            else:
                _reference(segment, line.setdefault("references", {}))
        elif tag == "PID" and line is not None and v[5]:
            line.setdefault("description", v[5])
        elif tag == "N1" and line is None:
            party = [segment]
        elif party is not None:
            party.append(segment)
    notice["sources"] = sources
    return notice
