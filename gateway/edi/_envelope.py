"""Group an interchange's segments into functional groups and transaction sets, checking
the envelope: control numbers pair up and the trailers count what they enclose.

Problems a 997 can report are kept on the group or set they concern (AK9 and AK5 codes);
problems only a TA1 could express (no IEA, IEA not matching the ISA) make the whole
interchange unusable, because nothing in it can be trusted to be complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.edi._tokens import Delimiters, Segment, is_digits
from gateway.errors import InterchangeUnusable

#: Versions (ISA12) this gateway reads.
VERSIONS = frozenset(
    {
        "00401",
        "00402",
        "00403",
        "00404",
        "00405",
        "00406",
        "00501",
        "00502",
        "00503",
        "00504",
        "00505",
        "00600",
        "00601",
        "00602",
        "00603",
        "00604",
        "00605",
        "00700",
        "00701",
        "00702",
        "00703",
        "00704",
        "00705",
        "00800",
        "00801",
    }
)


class GroupCode:
    """AK905, functional group syntax error codes (element 716)."""

    NOT_SUPPORTED = "1"
    VERSION_NOT_SUPPORTED = "2"
    TRAILER_MISSING = "3"
    CONTROL_NUMBERS_DIFFER = "4"
    SET_COUNT_WRONG = "5"
    CONTROL_NUMBER_SYNTAX = "6"


class SetCode:
    """AK502, transaction set syntax error codes (element 718)."""

    NOT_SUPPORTED = "1"
    TRAILER_MISSING = "2"
    CONTROL_NUMBERS_DIFFER = "3"
    SEGMENT_COUNT_WRONG = "4"
    SEGMENTS_IN_ERROR = "5"
    BAD_IDENTIFIER = "6"
    BAD_CONTROL_NUMBER = "7"
    CONTROL_NUMBER_NOT_UNIQUE = "23"


@dataclass(slots=True)
class TransactionSet:
    """``ST`` to ``SE`` inclusive, and what its envelope got wrong (AK502 codes)."""

    code: str
    control: str
    segments: list[Segment]
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Group:
    """``GS`` to ``GE``: its header fields, sets, and envelope errors (AK905 codes)."""

    header: Segment
    sets: list[TransactionSet] = field(default_factory=list)
    declared_sets: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def functional_id(self) -> str:
        return self.header.get(1)

    @property
    def sender(self) -> str:
        return self.header.get(2).strip()

    @property
    def receiver(self) -> str:
        return self.header.get(3).strip()

    @property
    def control(self) -> str:
        return self.header.get(6)

    @property
    def version(self) -> str:
        return self.header.get(8)


@dataclass(slots=True)
class Interchange:
    """One ISA/IEA envelope, parsed."""

    delimiters: Delimiters
    header: Segment
    groups: list[Group]
    segment_count: int

    @property
    def sender_qualifier(self) -> str:
        return self.header.get(5).strip()

    @property
    def sender(self) -> str:
        return self.header.get(6).strip()

    @property
    def receiver_qualifier(self) -> str:
        return self.header.get(7).strip()

    @property
    def receiver(self) -> str:
        return self.header.get(8).strip()

    @property
    def control(self) -> str:
        return self.header.get(13).strip()

    @property
    def version(self) -> str:
        return self.header.get(12).strip()

    @property
    def test(self) -> bool:
        """ISA15 ``T``: a test interchange."""
        return self.header.get(15).strip() == "T"


def _count(text: str) -> int | None:
    return int(text) if is_digits(text) else None


def _check_isa(isa: Segment) -> None:
    if len(isa.elements) != 16:
        raise InterchangeUnusable(f"the ISA has {len(isa.elements)} elements, not 16")
    control = isa.get(13)
    if len(control) != 9 or not is_digits(control):
        raise InterchangeUnusable(f"ISA13 {control!r} is not a 9-digit interchange control number")
    if isa.get(12) not in VERSIONS:
        raise InterchangeUnusable(f"ISA12 version {isa.get(12)!r} is not one of 00401 to 00801")
    for index, name in ((6, "ISA06 (the sender id)"), (8, "ISA08 (the receiver id)")):
        if not isa.get(index).strip():
            raise InterchangeUnusable(f"{name} is empty")


def parse_interchange(delimiters: Delimiters, segments: list[Segment]) -> Interchange:
    """Build the envelope tree; raise :class:`InterchangeUnusable` when it cannot be trusted."""
    isa = segments[0]
    _check_isa(isa)
    groups: list[Group] = []
    group: Group | None = None
    current: TransactionSet | None = None
    iea: Segment | None = None

    def close_set() -> None:
        nonlocal current
        if current is not None and group is not None:
            current.errors.append(SetCode.TRAILER_MISSING)
            group.sets.append(current)
        current = None

    def close_group() -> None:
        nonlocal group
        close_set()
        if group is not None:
            group.errors.append(GroupCode.TRAILER_MISSING)
            groups.append(group)
        group = None

    for segment in segments[1:]:
        tag = segment.tag
        if iea is not None:
            raise InterchangeUnusable(f"segment {tag} at position {segment.position} follows the IEA")
        if current is not None and tag not in ("SE", "ST", "GE", "GS", "IEA"):
            current.segments.append(segment)
        elif tag == "ST":
            if group is None:
                raise InterchangeUnusable(f"ST at position {segment.position} is outside a GS/GE group")
            close_set()
            current = TransactionSet(segment.get(1), segment.get(2), [segment])
        elif tag == "SE":
            if current is None or group is None:
                raise InterchangeUnusable(f"SE at position {segment.position} has no ST")
            current.segments.append(segment)
            _check_trailer(current, segment)
            group.sets.append(current)
            current = None
        elif tag == "GS":
            close_group()
            group = Group(segment)
        elif tag == "GE":
            if group is None:
                raise InterchangeUnusable(f"GE at position {segment.position} has no GS")
            close_set()
            _check_group_trailer(group, segment)
            groups.append(group)
            group = None
        elif tag == "IEA":
            close_group()
            iea = segment
        else:
            raise InterchangeUnusable(
                f"segment {tag!r} at position {segment.position} is outside any transaction set"
            )
    if iea is None:
        raise InterchangeUnusable("the interchange is truncated: it has no IEA trailer")
    if iea.get(2).strip() != isa.get(13):
        raise InterchangeUnusable(
            f"IEA02 {iea.get(2)!r} does not match ISA13 {isa.get(13)!r} (interchange control numbers)"
        )
    if _count(iea.get(1)) != len(groups):
        raise InterchangeUnusable(f"IEA01 says {iea.get(1)!r} groups, the interchange has {len(groups)}")
    return Interchange(delimiters, isa, groups, len(segments))


def _check_trailer(current: TransactionSet, se: Segment) -> None:
    if se.get(2) != current.control:
        current.errors.append(SetCode.CONTROL_NUMBERS_DIFFER)
    if _count(se.get(1)) != len(current.segments):
        current.errors.append(SetCode.SEGMENT_COUNT_WRONG)


def _check_group_trailer(group: Group, ge: Segment) -> None:
    group.declared_sets = _count(ge.get(1))
    if ge.get(2) != group.control:
        group.errors.append(GroupCode.CONTROL_NUMBERS_DIFFER)
    if group.declared_sets != len(group.sets):
        group.errors.append(GroupCode.SET_COUNT_WRONG)
