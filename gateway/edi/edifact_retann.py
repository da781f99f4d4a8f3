"""RETANN (Announcement for returns) in: checked, then read into the same return notice as a 180.

The segments read (UN/EDIFACT D.96A to D.01B and later; others are tolerated), and where
they go in the notice:

- ``BGM`` C106/1004 document number → ``reference``; 1225 message function → ``purpose``
- ``DTM`` C507 2005 ``137`` (formats 102, 203) → ``date``; ``DTM 171`` after an ``RFF`` → its date
- ``FTX`` C107 4441 coded text → the partner's return ``reason``; C108 4440 → ``reason_text``
  (in the header, or in a line for that line)
- ``RFF`` C506 1153 ``ON`` order, ``IV`` invoice, ``AAK`` despatch advice / ``DQ`` delivery
  note (shipment) → ``references``; ``RFF+LI`` in a line → ``order_line_number``
- ``NAD`` 3035 role, C082 id and agency (3055 ``91``: assigned by us), C080 name, C059 street,
  3164 city, 3251 postal code, 3207 country, then ``CTA``/``COM`` → ``parties``
- ``LIN`` C212 and ``PIA`` C212 item ids by type (7143 ``VN``, ``BP``, ``SA``, ``EN``...) →
  ``lines[].item_ids``; ``QTY`` C186 (6063 ``61`` return quantity preferred) quantity and unit
  6411; ``PRI`` C509 5118 unit price; ``IMD`` C273 7008 description; ``GIN+BN`` serial numbers

Findings are kept as :class:`~gateway.edi._structure.SegmentError` with EDIFACT tags, segment
positions (``UNH`` is 1) and 0085 syntax error codes, element errors with the element and
component positions, exactly what the CONTRL's ``UCS``/``UCD`` need.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.edi._ack import GroupResult
from gateway.edi._check import Transaction, without_cyclic_gc
from gateway.edi._document import _decimal as canonical_decimal
from gateway.edi._document import _number
from gateway.edi._edifact import EdifactInterchange, EdifactMessage, EdiSegment, parse_edifact
from gateway.edi._envelope import SetCode
from gateway.edi._structure import ElementError, SegmentError, SetResult
from gateway.edi._tokens import MAX_BYTES, is_digits
from gateway.edi.edifact_contrl import DUPLICATE_DETECTED, build_contrl

MESSAGE = "RETANN"
#: RFF 1153 reference qualifiers read into the return's references.
REFERENCE_QUALIFIERS = {"ON": "order", "IV": "invoice", "AAK": "shipment", "DQ": "shipment"}
#: 0085 syntax error codes used for findings in messages.
INVALID_VALUE, MISSING = "12", "13"
_DECIMAL = re.compile(r"-?[0-9]{0,15}([.,][0-9]{0,6})?")
_RETURN_QUANTITY = "61"


@dataclass(slots=True)
class EdifactChecked:
    """An EDIFACT interchange checked, ready to be acknowledged with a CONTRL."""

    interchange: EdifactInterchange
    groups: list[GroupResult]
    """One pseudo-group holding every message's result, as the shared intake expects."""
    transactions: list[Transaction] = field(default_factory=list)
    standard: str = "edifact"

    def ack(self, *, control: int = 1, group_control: int = 1, now: dt.datetime | None = None) -> str:
        """The CONTRL for everything known now (refusals added after the check included)."""
        del group_control  # no UNG in our answer
        results = self.groups[0].sets if self.groups else []
        return build_contrl(self.interchange, results, control=control, now=now)

    def duplicate_ack(self, *, control: int = 1, now: dt.datetime | None = None) -> str:
        """A CONTRL rejecting the interchange (UCI 4): its control reference was used before (0085 26)."""
        refused = dataclasses.replace(self.interchange, error=(DUPLICATE_DETECTED, "UNB"))
        return build_contrl(refused, [], control=control, now=now)


def _date(qualifier_format: str, value: str) -> str | None:
    digits = value[:8] if qualifier_format in ("102", "203", "204") else ""
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat() if digits else None
    except ValueError:
        return None


def _decimal(value: str) -> str | None:
    """EDIFACT numbers may use a comma as decimal mark; ``None`` when not a number."""
    if not value or not _DECIMAL.fullmatch(value) or not any(c.isdigit() for c in value):
        return None
    return canonical_decimal(value.replace(",", "."))


class _Reader:
    """One walk over a RETANN's segments: findings and the return notice at once."""

    def __init__(
        self,
        interchange: EdifactInterchange,
        message: EdifactMessage,
        reasons: Collection[str] | None,
        units: Collection[str] | None,
    ) -> None:
        self.result = SetResult(message.type, message.reference, list(message.errors))
        self.reasons = reasons
        self.units = units
        self.notice: dict[str, Any] = {
            "standard": "edifact",
            "message": message.type,
            "sender": interchange.sender,
            "receiver": interchange.receiver,
            "interchange": interchange.control,
            "group": "",
            "transaction": message.reference,
            "test": interchange.test,
            "references": {},
            "parties": {},
            "lines": [],
            "sources": {},
        }
        self.line: dict[str, Any] | None = None
        self.party: dict[str, Any] | None = None
        self.reference: dict[str, Any] | None = None
        self.line_segment: tuple[EdiSegment, int] = (EdiSegment("LIN", []), 0)

    def error(
        self, segment: EdiSegment, position: int, code: str | None, *elements: ElementError, detail: str = ""
    ) -> None:
        self.result.reject(SegmentError(segment.tag, position, None, code, list(elements), detail=detail))

    def element(
        self, segment: EdiSegment, position: int, element: int, component: int, code: str, detail: str
    ) -> None:
        value = segment.get(element, component)[:99]
        self.error(segment, position, None, ElementError(element, component, code, value), detail=detail)

    def read(self, segments: list[EdiSegment]) -> None:
        body = segments[1:-1] if segments[-1].tag == "UNT" else segments[1:]
        bgm = False
        for position, segment in enumerate(body, start=2):
            tag = segment.tag
            if tag not in ("CTA", "COM") and self.party is not None:
                self.party = None
            if tag != "DTM":
                self.reference = None
            if tag == "BGM":
                bgm = True
                self.bgm(segment, position)
            elif tag == "LIN":
                self.close_line(position)
                self.lin(segment, position)
            elif tag == "PIA" and self.line is not None:
                self.item_ids(segment.elements[1:])
            elif tag == "QTY" and self.line is not None:
                self.qty(segment, position)
            elif tag == "PRI" and self.line is not None:
                amount = _decimal(segment.get(1, 2))
                if amount is None:
                    self.element(segment, position, 1, 2, INVALID_VALUE, "the price is not a number")
                self.line.setdefault("unit_price", amount or "0")
            elif tag == "IMD" and self.line is not None and segment.get(3, 4):
                self.line.setdefault("description", segment.get(3, 4))
            elif tag == "GIN" and self.line is not None and segment.get(1) == "BN":
                self.line.setdefault("serial_numbers", []).extend(
                    v for e in range(2, len(segment.elements) + 1) if (v := segment.get(e))
                )
            elif tag == "FTX":
                self.ftx(segment, position)
            elif tag == "DTM":
                self.dtm(segment, position)
            elif tag == "RFF":
                self.rff(segment)
            elif tag == "NAD" and self.line is None:
                self.nad(segment)
            elif tag == "CTA" and self.party is not None and segment.get(2, 2):
                self.party.setdefault("contact", {})["name"] = segment.get(2, 2)
            elif tag == "COM" and self.party is not None:
                key = {"TE": "phone", "EM": "email", "FX": "fax"}.get(segment.get(1, 2))
                if key and segment.get(1):
                    self.party.setdefault("contact", {})[key] = segment.get(1)
        end = len(body) + 2
        self.close_line(end)
        if not bgm:
            self.error(EdiSegment("BGM", []), 2, MISSING, detail="a RETANN begins with BGM")
        if not self.notice["lines"]:
            self.error(EdiSegment("LIN", []), end, MISSING, detail="a RETANN announces at least one line")

    def bgm(self, segment: EdiSegment, position: int) -> None:
        number = segment.get(2)
        if not number:
            self.element(segment, position, 2, 1, MISSING, "BGM 1004, the document number, is missing")
        self.notice.update(reference=number, purpose=segment.get(3), date=None)
        self.notice["sources"]["reference"] = position

    def lin(self, segment: EdiSegment, position: int) -> None:
        self.line = {"line_number": len(self.notice["lines"]) + 1, "item_ids": {}, "position": position}
        self.notice["lines"].append(self.line)
        self.line_segment = (segment, position)
        self.item_ids([segment.elements[2]] if len(segment.elements) > 2 else [])

    def item_ids(self, composites: Any) -> None:
        assert self.line is not None
        for composite in composites:
            parts = [composite] if isinstance(composite, str) else composite
            if len(parts) > 1 and parts[0] and parts[1]:
                self.line["item_ids"].setdefault(parts[1], parts[0])
                self.line.setdefault("sku", parts[0])

    def close_line(self, end: int) -> None:
        line = self.line
        if line is None:
            return
        self.line = None
        segment, position = self.line_segment
        if "sku" not in line:
            self.element(segment, position, 3, 1, MISSING, "no item id in LIN or PIA")
            line["sku"] = ""
        for key, tag, what in (
            ("quantity", "QTY", "the returned quantity"),
            ("unit_price", "PRI", "the price"),
        ):
            if key not in line:
                self.error(
                    EdiSegment(tag, []), end, MISSING, detail=f"line {line['line_number']}: no {tag}, {what}"
                )
        line.setdefault("quantity", 0)
        line.setdefault("unit", "")
        line.setdefault("unit_price", "0")

    def qty(self, segment: EdiSegment, position: int) -> None:
        assert self.line is not None
        if "quantity" in self.line and segment.get(1) != _RETURN_QUANTITY:
            return  # the return quantity (61) wins over other quantities of the line
        amount = _decimal(segment.get(1, 2))
        unit = segment.get(1, 3)
        if amount is None or Decimal(amount) <= 0:
            self.element(segment, position, 1, 2, INVALID_VALUE, "the quantity is not a positive number")
            self.line["quantity"] = 0
            return
        if not unit:
            self.element(segment, position, 1, 3, MISSING, "the unit (6411) is missing")
        elif self.units is not None and unit not in self.units:
            self.element(segment, position, 1, 3, INVALID_VALUE, f"unit {unit!r} is not agreed")
        self.line.update(quantity=_number(amount), unit=unit)

    def ftx(self, segment: EdiSegment, position: int) -> None:
        target = self.line if self.line is not None else self.notice
        reason, text = segment.get(3), " ".join(filter(None, segment.composite(4)))
        if reason:
            if self.reasons is not None and reason not in self.reasons:
                self.element(
                    segment, position, 3, 1, INVALID_VALUE, f"return reason {reason!r} is not agreed"
                )
            target.setdefault("reason", reason)
        if text:
            target.setdefault("reason_text", text)

    def dtm(self, segment: EdiSegment, position: int) -> None:
        qualifier, value, form = segment.get(1), segment.get(1, 2), segment.get(1, 3) or "102"
        date = _date(form, value)
        if date is None:
            self.element(segment, position, 1, 2, INVALID_VALUE, f"{value!r} is not a date in format {form}")
        elif self.reference is not None and qualifier == "171":
            self.reference["date"] = date
        elif self.line is None and qualifier == "137":
            self.notice["date"] = date

    def rff(self, segment: EdiSegment) -> None:
        qualifier, number = segment.get(1), segment.get(1, 2)
        if self.line is not None and qualifier == "LI":
            if is_digits(number):
                self.line["order_line_number"] = int(number)
            return
        name = REFERENCE_QUALIFIERS.get(qualifier)
        into = self.notice["references"] if self.line is None else self.line.setdefault("references", {})
        if name and number and name not in into:
            self.reference = into[name] = {"number": number}

    def nad(self, segment: EdiSegment) -> None:
        party: dict[str, Any] = {}
        if segment.get(2):
            party.update(id=segment.get(2), id_qualifier=segment.get(2, 3))
        name = " ".join(filter(None, segment.composite(4))) or " ".join(filter(None, segment.composite(3)))
        if name:
            party["name"] = name
        address = {
            "city": segment.get(6),
            "region": segment.get(7),
            "postal_code": segment.get(8),
            "country": segment.get(9),
        }
        address = {k: v for k, v in address.items() if v}
        street = [v for v in segment.composite(5) if v]
        if address or street:  # as from a 180: the name is the first address line
            party["address"] = {"lines": ([name] if name else [])[:1] + street[:3], **address}
        role = segment.get(1)
        if role and role not in self.notice["parties"]:
            self.notice["parties"][role] = party
            self.party = party


def check_message(
    interchange: EdifactInterchange,
    message: EdifactMessage,
    *,
    reasons: Collection[str] | None = None,
    units: Collection[str] | None = None,
) -> tuple[SetResult, dict[str, Any]]:
    """The result of one message and its return notice (meaningful only when accepted)."""
    if message.type != MESSAGE:
        return SetResult(message.type, message.reference, [*message.errors, SetCode.NOT_SUPPORTED]), {}
    reader = _Reader(interchange, message, reasons, units)
    if not message.reference:
        reader.result.errors.append(SetCode.BAD_CONTROL_NUMBER)
    reader.read(message.segments)
    return reader.result, reader.notice


def check_edifact(
    data: bytes,
    *,
    reasons: Collection[str] | None = None,
    units: Collection[str] | None = None,
    max_bytes: int = MAX_BYTES,
) -> EdifactChecked:
    """Check an EDIFACT interchange; raises ``InterchangeUnusable`` only when no CONTRL is possible.

    ``reasons`` and ``units`` are the codes the partner's tables know; ``None`` accepts any.
    """
    with without_cyclic_gc():  # as for X12: many small acyclic objects, nothing for the collector
        interchange = parse_edifact(data, max_bytes=max_bytes)
        group = GroupResult(
            functional_id=MESSAGE,
            control=interchange.control,
            version=":".join(interchange.messages[0].identifier[1:3]) if interchange.messages else "",
            sender=interchange.sender,
            receiver=interchange.receiver,
            declared_sets=len(interchange.messages),
            received_sets=len(interchange.messages),
        )
        checked = EdifactChecked(interchange, [group])
        seen: set[str] = set()
        for message in interchange.messages:
            result, notice = check_message(interchange, message, reasons=reasons, units=units)
            if message.reference in seen:
                result.errors.append(SetCode.CONTROL_NUMBER_NOT_UNIQUE)
            seen.add(message.reference)
            group.sets.append(result)
            if interchange.error is None and result.accepted:
                checked.transactions.append(Transaction(group, result, notice))
        return checked
