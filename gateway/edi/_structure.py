"""Check one transaction set against its table: segment order, loops and repeats,
mandatory segments and elements, element types, lengths and codes, syntax notes.

Every finding is an X12 error code, ready for the 997 (AK3 for a segment, AK4 for an
element, AK5 for the set). The walk keeps a stack of open loops, so a segment is placed
in one look at the table from where the previous one stood: linear in the set's length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from gateway.edi._envelope import SetCode, TransactionSet
from gateway.edi._spec import Element, Loop, Rule, SegmentSpec, TransactionSpec, Use
from gateway.edi._tokens import Segment

_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_INTEGER = re.compile(r"-?\d+")
_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}")

#: Codes a partner's tables impose on elements, by segment and position: ``{"RDR02": {...}}``.
CodeLists = Mapping[str, Collection[str]]


@dataclass(slots=True)
class ElementError:
    """An AK4: element position in its segment, reference number, AK403 code, the bad value."""

    position: int
    ref: int | None
    code: str
    value: str = ""


@dataclass(slots=True)
class SegmentError:
    """An AK3: segment id, position in the set (ST is 1), loop id, AK304 code, element errors."""

    tag: str
    position: int
    loop: str | None
    code: str | None
    elements: list[ElementError] = field(default_factory=list)
    detail: str = ""
    """Why, in words, for reports and logs (not sent in the 997)."""


@dataclass(slots=True)
class SetResult:
    """What a set's check found; no errors means it is accepted."""

    code: str
    control: str
    errors: list[str] = field(default_factory=list)
    """AK502 codes."""
    segment_errors: list[SegmentError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.errors and not self.segment_errors

    def reject(self, error: SegmentError) -> None:
        """Add an error found after the syntax check (mapping, contract, duplicate)."""
        self.segment_errors.append(error)
        if SetCode.SEGMENTS_IN_ERROR not in self.errors:
            self.errors.append(SetCode.SEGMENTS_IN_ERROR)


@dataclass(slots=True)
class _Frame:
    loop: Loop
    index: int
    counts: list[int]


def _missing(frame: _Frame, stop: int, position: int, errors: list[SegmentError], root: bool = False) -> None:
    loop = None if root else frame.loop.id
    for k in range(frame.index if frame.loop.ordered else 0, stop):
        child = frame.loop.children[k]
        if child.required and frame.counts[k] == 0:
            tag = child.tag if isinstance(child, Use) else child.trigger
            errors.append(SegmentError(tag, position, loop, "3", detail=f"mandatory {tag} missing"))


def _place(stack: list[_Frame], tag: str, position: int, errors: list[SegmentError]) -> str | None:
    """Advance the stack to ``tag``; the AK304 code when it has no place here."""
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        children = frame.loop.children
        # Inside a loop its trigger (child 0) starts the next repetition: the parent places it.
        start = max(frame.index, 1) if depth > 0 else frame.index
        if not frame.loop.ordered:
            start = 1
        for j in range(start, len(children)):
            child = children[j]
            is_use = isinstance(child, Use)
            if (child.tag if is_use else child.trigger) != tag:  # type: ignore[union-attr]
                continue
            for popped in stack[depth + 1 :]:
                _missing(popped, len(popped.loop.children), position, errors)
            del stack[depth + 1 :]
            if frame.loop.ordered:
                _missing(frame, j, position, errors, root=depth == 0)
                frame.index = j
            frame.counts[j] += 1
            if is_use:
                return "5" if frame.counts[j] > child.max_use else None  # type: ignore[union-attr]
            loop: Loop = child  # type: ignore[assignment]
            stack.append(_Frame(loop, 0, [1] + [0] * (len(loop.children) - 1)))
            return "4" if frame.counts[j] > loop.max_repeat else None
    return "?"


def validate_set(spec: TransactionSpec, tset: TransactionSet, codes: CodeLists | None = None) -> SetResult:
    """Check ``tset`` against ``spec``; envelope errors found earlier are carried over."""
    result = SetResult(tset.code, tset.control, list(tset.errors))
    if tset.code != spec.code:
        result.errors.append(SetCode.NOT_SUPPORTED)
        return result
    if not 4 <= len(tset.control) <= 9:
        result.errors.append(SetCode.BAD_CONTROL_NUMBER)
    codes = codes or {}
    errors = result.segment_errors
    stack = [_Frame(spec.structure, 0, [0] * len(spec.structure.children))]
    known = spec.segments
    for position, segment in enumerate(tset.segments, start=1):
        tag = segment.tag
        if tag in spec.tolerated:
            continue
        segment_spec = known.get(tag)
        code = _place(stack, tag, position, errors) if segment_spec is not None else "?"
        loop = stack[-1].loop.id if len(stack) > 1 else None
        if code == "?":
            code = "7" if segment_spec is not None else ("6" if _TAG.fullmatch(tag) else "1")
            detail = {"7": "not in proper sequence", "6": "not in this transaction set", "1": "unrecognized"}
            errors.append(SegmentError(tag, position, loop, code, detail=f"{tag}: {detail[code]}"))
            continue
        if code is not None:
            errors.append(SegmentError(tag, position, loop, code, detail=f"{tag}: used too often"))
            continue
        assert segment_spec is not None
        bad = check_elements(segment_spec, segment, codes)
        if bad:
            errors.append(SegmentError(tag, position, loop, "8", bad, detail=f"{tag}: data element errors"))
    for depth in range(len(stack) - 1, -1, -1):
        _missing(stack[depth], len(stack[depth].loop.children), len(tset.segments), errors, root=depth == 0)
    if errors and SetCode.SEGMENTS_IN_ERROR not in result.errors:
        result.errors.append(SetCode.SEGMENTS_IN_ERROR)
    return result


def check_elements(spec: SegmentSpec, segment: Segment, codes: CodeLists) -> list[ElementError]:
    """The element errors of one segment (AK4s)."""
    values = segment.elements
    errors: list[ElementError] = []
    defined = len(spec.elements)
    if len(values) > defined and any(values[defined:]):
        errors.append(ElementError(defined + 1, None, "3", values[defined][:99]))
    for position, element in enumerate(spec.elements, start=1):
        value = values[position - 1] if position <= len(values) else ""
        if not value:
            if element.required:
                errors.append(ElementError(position, element.ref, "1"))
            continue
        allowed = codes.get(f"{spec.tag}{position:02d}", element.codes)
        code = _check_value(element, value, allowed)
        if code is not None:
            errors.append(ElementError(position, element.ref, code, value[:99]))
    for rule in spec.rules:
        found = _check_rule(rule, values, spec)
        if found is not None:
            errors.append(found)
    return errors


def _digits(value: str) -> int:
    return sum(character.isdigit() for character in value)


def _check_value(element: Element, value: str, allowed: Collection[str] | None) -> str | None:
    kind = element.type
    if kind in ("N0", "N1", "N2", "R"):
        if not (_INTEGER if kind != "R" else _DECIMAL).fullmatch(value):
            return "6"
        length = _digits(value)
    elif kind == "DT":
        if not value.isdigit():
            return "8"
        if len(value) not in (6, 8) or len(value) < element.min:
            return "8"
        try:
            dt.datetime.strptime(value, "%Y%m%d" if len(value) == 8 else "%y%m%d")
        except ValueError:
            return "8"
        return None
    elif kind == "TM":
        if not value.isdigit() or len(value) < 4 or len(value) > 8:
            return "9"
        hours, minutes, seconds = int(value[:2]), int(value[2:4]), int(value[4:6] or 0)
        return "9" if hours > 23 or minutes > 59 or seconds > 59 else None
    else:
        if any(character < " " for character in value):
            return "6"
        length = len(value)
    if length < element.min:
        return "4"
    if length > element.max:
        return "5"
    if allowed is not None and value not in allowed:
        return "7"
    return None


def _check_rule(rule: Rule, values: list[str], spec: SegmentSpec) -> ElementError | None:
    present = [p <= len(values) and bool(values[p - 1]) for p in rule.positions]

    def ref(position: int) -> int | None:
        return spec.elements[position - 1].ref if position <= len(spec.elements) else None

    kind, positions = rule.kind, rule.positions
    if kind == "P" and any(present) and not all(present):
        missing = positions[present.index(False)]
        return ElementError(missing, ref(missing), "2")
    if kind == "R" and not any(present):
        return ElementError(positions[0], ref(positions[0]), "2")
    if kind == "E" and sum(present) > 1:
        second = [p for p, here in zip(positions, present, strict=True) if here][1]
        return ElementError(second, ref(second), "10", values[second - 1][:99])
    if kind == "C" and present[0] and not all(present[1:]):
        missing = positions[1:][present[1:].index(False)]
        return ElementError(missing, ref(missing), "2")
    if kind == "L" and present[0] and not any(present[1:]):
        return ElementError(positions[1], ref(positions[1]), "2")
    return None
