"""Check one transaction set against its table: segment order, loops and repeats,
mandatory segments and elements, element types, lengths and codes, syntax notes.

Every finding is an X12 error code, ready for the 997 (AK3 for a segment, AK4 for an
element, AK5 for the set). The walk keeps a stack of open loops, so a segment is placed
in one look at the table from where the previous one stood: linear in the set's length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from gateway.edi._envelope import SetCode, TransactionSet
from gateway.edi._spec import Element, Loop, Rule, SegmentSpec, TransactionSpec, Use
from gateway.edi._tokens import Segment, is_digits

_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_INTEGER = re.compile(r"-?\d+")
_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_CONTROL = re.compile(r"[\x00-\x1f]")

_NONE: dict[int, Collection[str]] = {}
_MEMO_LIMIT = 100_000
_VALID: list[ElementError] = []  # shared by every valid segment; never appended to
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
    positions: dict[str, tuple[int, ...]]


def _frame(loop: Loop, first: int) -> _Frame:
    return _Frame(loop, 0, [first] + [0] * (len(loop.children) - 1), _positions(loop))


def _missing(frame: _Frame, stop: int, position: int, errors: list[SegmentError], root: bool = False) -> None:
    loop = None if root else frame.loop.id
    for k in range(frame.index if frame.loop.ordered else 0, stop):
        child = frame.loop.children[k]
        if child.required and frame.counts[k] == 0:
            tag = child.tag if isinstance(child, Use) else child.trigger
            errors.append(SegmentError(tag, position, loop, "3", detail=f"mandatory {tag} missing"))


_TAG_INDEX: dict[int, tuple[Loop, dict[str, tuple[int, ...]]]] = {}


def _positions(loop: Loop) -> dict[str, tuple[int, ...]]:
    """Where each tag can start among ``loop``'s children (a segment, or a loop's trigger)."""
    cached = _TAG_INDEX.get(id(loop))
    if cached is None or cached[0] is not loop:
        found: dict[str, list[int]] = {}
        for j, child in enumerate(loop.children):
            found.setdefault(child.tag if isinstance(child, Use) else child.trigger, []).append(j)
        cached = _TAG_INDEX[id(loop)] = (loop, {tag: tuple(js) for tag, js in found.items()})
    return cached[1]


def _place(stack: list[_Frame], tag: str, position: int, errors: list[SegmentError]) -> str | None:
    """Advance the stack to ``tag``; the AK304 code when it has no place here."""
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        loop = frame.loop
        # Inside a loop its trigger (child 0) starts the next repetition: the parent places it.
        start = frame.index if depth == 0 else max(frame.index, 1) if loop.ordered else 1
        for j in frame.positions.get(tag, ()):
            if j < start:
                continue
            for popped in stack[depth + 1 :]:
                _missing(popped, len(popped.loop.children), position, errors)
            del stack[depth + 1 :]
            if loop.ordered:
                if j > frame.index + 1 or not frame.counts[frame.index]:
                    _missing(frame, j, position, errors, root=depth == 0)
                frame.index = j
            frame.counts[j] += 1
            child = loop.children[j]
            if isinstance(child, Use):
                return "5" if frame.counts[j] > child.max_use else None
            stack.append(_frame(child, 1))
            return "4" if frame.counts[j] > child.max_repeat else None
    return "?"


def _step(frame: _Frame, tag: str, root: bool) -> str | None:
    """The common case, in one look: ``tag`` is a segment of the innermost loop at or just
    after where the walk stands. ``""`` placed, ``"5"`` used too often; ``None`` when the
    full search (:func:`_place`) must decide."""
    js = frame.positions.get(tag)
    if js is None or len(js) != 1:
        return None
    j = js[0]
    child = frame.loop.children[j]
    if not isinstance(child, Use) or (j == 0 and not root):
        return None
    if frame.loop.ordered:
        index = frame.index
        if not (j == index or (j == index + 1 and frame.counts[index])):
            return None
        frame.index = j
    frame.counts[j] += 1
    return "5" if frame.counts[j] > child.max_use else ""


def validate_set(
    spec: TransactionSpec,
    tset: TransactionSet,
    codes: CodeLists | None = None,
    *,
    memo: dict[tuple[str, tuple[str, ...]], list[ElementError]] | None = None,
) -> SetResult:
    """Check ``tset`` against ``spec``; envelope errors found earlier are carried over.

    ``memo`` (one per interchange) remembers the verdict on each distinct segment: the same
    parties, items, units and texts repeat from set to set, and are checked once.
    """
    result = SetResult(tset.code, tset.control, list(tset.errors))
    if tset.code != spec.code:
        result.errors.append(SetCode.NOT_SUPPORTED)
        return result
    if not 4 <= len(tset.control) <= 9:
        result.errors.append(SetCode.BAD_CONTROL_NUMBER)
    overrides = _by_tag(codes or {})
    errors = result.segment_errors
    stack = [_frame(spec.structure, 0)]
    known = spec.segments
    for position, segment in enumerate(tset.segments, start=1):
        tag = segment.tag
        if tag in spec.tolerated:
            continue
        segment_spec = known.get(tag)
        if segment_spec is None:
            code = "?"
        elif (found := _step(stack[-1], tag, len(stack) == 1)) is not None:
            code = found or None
        else:
            code = _place(stack, tag, position, errors)
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
        key = segment[:2]  # (tag, elements)
        bad = memo.get(key) if memo is not None else None
        if bad is None:
            bad = _elements(segment_spec, segment.elements, overrides.get(tag, _NONE))
            if memo is not None and len(memo) < _MEMO_LIMIT:
                memo[key] = bad
        if bad:
            errors.append(SegmentError(tag, position, loop, "8", bad, detail=f"{tag}: data element errors"))
    for depth in range(len(stack) - 1, -1, -1):
        _missing(stack[depth], len(stack[depth].loop.children), len(tset.segments), errors, root=depth == 0)
    if errors and SetCode.SEGMENTS_IN_ERROR not in result.errors:
        result.errors.append(SetCode.SEGMENTS_IN_ERROR)
    return result


def _by_tag(codes: CodeLists) -> dict[str, dict[int, Collection[str]]]:
    found: dict[str, dict[int, Collection[str]]] = {}
    for name, allowed in codes.items():
        found.setdefault(name[:-2], {})[int(name[-2:])] = allowed
    return found


def check_elements(spec: SegmentSpec, segment: Segment, codes: CodeLists) -> list[ElementError]:
    """The element errors of one segment (AK4s); ``codes`` replace the table's code lists."""
    return _elements(spec, segment.elements, _by_tag(codes).get(spec.tag, {}))


def _elements(
    spec: SegmentSpec, values: Sequence[str], overrides: Mapping[int, Collection[str]]
) -> list[ElementError]:
    errors: list[ElementError] = []
    defined = len(spec.elements)
    if len(values) > defined:
        if any(values[defined:]):
            errors.append(ElementError(defined + 1, None, "3", values[defined][:99]))
    elif len(values) < defined:
        values = (*values, *[""] * (defined - len(values)))
    for position, (element, value) in enumerate(zip(spec.elements, values, strict=False), start=1):
        if not value:
            if element.required:
                errors.append(ElementError(position, element.ref, "1"))
            continue
        code = _check_value(element, value, overrides.get(position, element.codes))
        if code is not None:
            errors.append(ElementError(position, element.ref, code, value[:99]))
    for rule in spec.rules:
        found = _check_rule(rule, values, spec)
        if found is not None:
            errors.append(found)
    return errors or _VALID


def _check_value(element: Element, value: str, allowed: Collection[str] | None) -> str | None:
    kind = element.type
    if kind == "ID" or kind == "AN":
        if _CONTROL.search(value):
            return "6"
        length = len(value)
    elif kind == "DT":
        if not is_digits(value) or len(value) not in (6, 8) or len(value) < element.min:
            return "8"
        year = int(value[:4]) if len(value) == 8 else 2000 + int(value[:2])
        try:
            dt.date(year, int(value[-4:-2]), int(value[-2:]))
        except ValueError:
            return "8"
        return None
    elif kind == "TM":
        if not is_digits(value) or len(value) < 4 or len(value) > 8:
            return "9"
        hours, minutes, seconds = int(value[:2]), int(value[2:4]), int(value[4:6] or 0)
        return "9" if hours > 23 or minutes > 59 or seconds > 59 else None
    else:  # N0, N1, N2, R
        if not (_DECIMAL if kind == "R" else _INTEGER).fullmatch(value):
            return "6"
        length = len(value) - value.startswith("-") - ("." in value)
    if length < element.min:
        return "4"
    if length > element.max:
        return "5"
    if allowed is not None and value not in allowed:
        return "7"
    return None


def _ref(spec: SegmentSpec, position: int) -> int | None:
    return spec.elements[position - 1].ref if position <= len(spec.elements) else None


def _check_rule(rule: Rule, values: Sequence[str], spec: SegmentSpec) -> ElementError | None:
    count = len(values)
    present = [p <= count and values[p - 1] != "" for p in rule.positions]
    ref = partial(_ref, spec)
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
