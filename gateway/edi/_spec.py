"""The vocabulary of a transaction set table: elements, segments, and loops.

A table is plain data (see ``x12_180.py``): a maintainer adds a segment, a code or a loop
by editing it, without touching the validator. Element types follow X12: ``ID`` (a code),
``AN`` (text), ``N0``/``N2`` (implied-decimal integers), ``R`` (decimal), ``DT`` (date,
CCYYMMDD, or YYMMDD where the minimum length is 6), ``TM`` (time, HHMM[SS[d..]]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Element:
    """One simple data element of a segment."""

    ref: int
    """The data element reference number (AK402)."""
    type: str
    min: int
    max: int
    required: bool = False
    codes: frozenset[str] | None = None
    """The allowed codes; ``None`` accepts any value of the right type and length."""


def element(
    ref: int, type_: str, min_: int, max_: int, *, required: bool = False, codes: Iterable[str] | None = None
) -> Element:
    """Shorthand for tables: ``element(353, "ID", 2, 2, required=True, codes=["00", "13"])``."""
    return Element(ref, type_, min_, max_, required, frozenset(codes) if codes is not None else None)


M = True
"""Readable ``required=M`` in tables."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A syntax note between elements, numbered from 1 as X12 writes them.

    ``P`` paired (all or none), ``R`` at least one, ``E`` at most one, ``C`` if the first
    is present all the others are, ``L`` if the first is present at least one other is.
    """

    kind: str
    positions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """A segment's elements (position 1 first) and its syntax notes."""

    tag: str
    name: str
    elements: tuple[Element, ...]
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class Use:
    """A segment's place in a set: required or not, and how often it may repeat."""

    tag: str
    required: bool = False
    max_use: int = 1


@dataclass(frozen=True, slots=True)
class Loop:
    """A loop: its first child is its trigger segment, which must be a :class:`Use`."""

    id: str
    children: tuple[Use | Loop, ...]
    required: bool = False
    max_repeat: int = 1
    ordered: bool = True
    """``False``: the segments after the trigger may come in any order (still counted), where
    partners' translators are known to differ from the standard's order."""

    @property
    def trigger(self) -> str:
        first = self.children[0]
        assert isinstance(first, Use), "a loop starts with a segment"
        return first.tag


@dataclass(frozen=True, slots=True)
class TransactionSpec:
    """A transaction set: its code, group code, structure, segments, and tolerated extras."""

    code: str
    functional_id: str
    structure: Loop
    segments: dict[str, SegmentSpec]
    tolerated: frozenset[str] = field(default_factory=frozenset)
    """Segments the standard does not place in this set but partners send anyway (``CTT``,
    ``REF``): accepted anywhere in the set and left unread."""


def set_envelope(code: str) -> tuple[SegmentSpec, SegmentSpec]:
    """``ST`` and ``SE``, the same in every transaction set but for ST01 (``code``)."""
    return (
        SegmentSpec(
            "ST",
            "Transaction Set Header",
            (
                element(143, "ID", 3, 3, required=M, codes=[code]),
                element(329, "AN", 4, 9, required=M),
                element(1705, "AN", 1, 35),
            ),
        ),
        SegmentSpec(
            "SE",
            "Transaction Set Trailer",
            (element(96, "N0", 1, 10, required=M), element(329, "AN", 4, 9, required=M)),
        ),
    )
