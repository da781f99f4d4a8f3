"""UN/EDIFACT interchanges: pydifact reads the segments, this module checks the envelope.

pydifact (MIT) handles the UNA service string advice, release (escape) characters and line
breaks after segment terminators; what it raises on text it cannot read is translated into
:class:`~gateway.errors.InterchangeUnusable` here, the only place that calls it. The envelope
check then pairs the control references (UNB 0020 = UNZ 0020, UNH 0062 = UNT 0062) and the
counts (UNT 0074 segments, UNZ 0036 messages or groups) the way the X12 check pairs ISA/IEA:
errors in a message reject that message, errors of the interchange itself reject it whole,
both reported in the CONTRL. ``UNG``/``UNE`` groups are tolerated and not checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydifact.parser import Parser
from pydifact.segments import Segment as _PdSegment
from pydifact.segments import SegmentFactory

from gateway.edi._envelope import SetCode
from gateway.edi._tokens import MAX_BYTES, is_digits
from gateway.errors import InterchangeUnusable

#: What the gateway writes with: component, element, decimal mark, release, reserved, terminator.
SEPARATORS = ":+.? '"
#: Data element values: a simple element is a string, a composite a list of component strings.
Element = str | list[str]


@dataclass(frozen=True, slots=True)
class EdiSegment:
    """One segment: its tag and data elements (``elements[0]`` is the first after the tag)."""

    tag: str
    elements: Sequence[Element]

    def get(self, element: int, component: int = 1) -> str:
        """Element ``element`` (1-based), component ``component`` (1-based); ``""`` when absent."""
        if element > len(self.elements):
            return ""
        value = self.elements[element - 1]
        if isinstance(value, str):
            return value if component == 1 else ""
        return value[component - 1] if component <= len(value) else ""

    def composite(self, element: int) -> list[str]:
        """Every component of element ``element``, a simple element as a list of one."""
        if element > len(self.elements):
            return []
        value = self.elements[element - 1]
        return [value] if isinstance(value, str) else list(value)


@dataclass(slots=True)
class EdifactMessage:
    """``UNH`` to ``UNT`` inclusive (or to where the next one starts), and its envelope errors."""

    reference: str
    """UNH 0062, the message reference number."""
    identifier: list[str]
    """UNH S009: type (0065), version (0052), release (0054), agency (0051)..."""
    segments: list[EdiSegment]
    errors: list[str] = field(default_factory=list)
    """What the envelope got wrong, as X12 ``SetCode`` values; the CONTRL translates them."""

    @property
    def type(self) -> str:
        return self.identifier[0] if self.identifier else ""


@dataclass(slots=True)
class EdifactInterchange:
    """An interchange whose UNB could be read: enough to answer it with a CONTRL."""

    syntax: list[str]
    """UNB S001: syntax identifier (``UNOC``) and version (``3``)."""
    sender: str
    sender_qualifier: str
    receiver: str
    receiver_qualifier: str
    control: str
    """UNB 0020, the interchange control reference."""
    test: bool
    una: bool
    messages: list[EdifactMessage] = field(default_factory=list)
    error: tuple[str, str] | None = None
    """Why the whole interchange is rejected: (0085 syntax error code, service segment tag)."""


class _Factory(SegmentFactory):
    """Plain segments: pydifact's directory validation would raise on what partners really send;
    our own checks report such findings in the CONTRL instead."""

    @staticmethod
    def create_segment(
        name: str, *elements: Any, validate: bool = True, version: str = "", directory: str = ""
    ) -> _PdSegment:
        return SegmentFactory.create_segment(
            name, *elements, validate=False, version=version, directory=directory
        )


def _text(data: bytes) -> str:
    """UNOA to UNOC are Latin-1 compatible and UNOY is UTF-8: UTF-8 first, Latin-1 otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.removeprefix("\ufeff").lstrip()


def read_segments(data: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[bool, list[EdiSegment]]:
    """Whether a UNA came first, and every segment after it; unreadable text is unusable."""
    if len(data) > max_bytes:
        raise InterchangeUnusable(f"the interchange is larger than {max_bytes} bytes")
    text = _text(data)
    if not text.startswith(("UNA", "UNB")):
        raise InterchangeUnusable("an EDIFACT interchange starts with UNA or UNB")
    if text.startswith("UNA") and len(text) < 10:
        raise InterchangeUnusable("the interchange ends inside its UNA")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydifact warns about empty segments; UNH/UNT checks report them
            raw = list(Parser(factory=_Factory()).parse(text))
    except Exception as exc:  # pydifact's failures are not one type (EDISyntaxError, ValueError, IndexError)
        raise InterchangeUnusable(f"not readable as EDIFACT: {exc}") from exc
    una = bool(raw) and raw[0].tag == "UNA"
    return una, [EdiSegment(s.tag, list(s.elements)) for s in raw[una:]]


def parse_edifact(data: bytes, *, max_bytes: int = MAX_BYTES) -> EdifactInterchange:
    """Read ``data`` and check its envelope; raises ``InterchangeUnusable`` without a usable UNB."""
    una, segments = read_segments(data, max_bytes=max_bytes)
    if not segments or segments[0].tag != "UNB":
        raise InterchangeUnusable("the interchange has no UNB after its UNA")
    unb = segments[0]
    if not (unb.get(1) and unb.get(2) and unb.get(3) and unb.get(5)):
        raise InterchangeUnusable(
            "the UNB lacks its syntax identifier, sender, recipient or control reference"
        )
    interchange = EdifactInterchange(
        syntax=unb.composite(1),
        sender=unb.get(2),
        sender_qualifier=unb.get(2, 2),
        receiver=unb.get(3),
        receiver_qualifier=unb.get(3, 2),
        control=unb.get(5),
        test=unb.get(11) == "1",
        una=una,
    )
    if interchange.syntax[0][:3] != "UNO" or (interchange.syntax[1:2] or [""])[0] not in ("1", "2", "3", "4"):
        interchange.error = ("2", "UNB")  # syntax version or level not supported
    current: EdifactMessage | None = None
    groups = 0
    unz: EdiSegment | None = None
    for segment in segments[1:]:
        if unz is not None:
            interchange.error = interchange.error or ("15", segment.tag)  # after UNZ
            break
        if segment.tag in ("UNH", "UNZ") and current is not None:
            current.errors.append(SetCode.TRAILER_MISSING)
            current = None
        if segment.tag == "UNH":
            current = EdifactMessage(segment.get(1), segment.composite(2), [segment])
            interchange.messages.append(current)
        elif current is not None:
            current.segments.append(segment)
            if segment.tag == "UNT":
                _close(current, segment)
                current = None
        elif segment.tag == "UNZ":
            unz = segment
        elif segment.tag == "UNG":
            groups += 1
        elif segment.tag != "UNE":
            interchange.error = interchange.error or ("15", segment.tag)  # outside any message
    if current is not None:
        current.errors.append(SetCode.TRAILER_MISSING)
    if unz is None:
        interchange.error = interchange.error or ("13", "UNZ")
    elif unz.get(2) != interchange.control:
        interchange.error = interchange.error or ("28", "UNZ")
    elif not _count_is(unz.get(1), groups or len(interchange.messages)):
        interchange.error = interchange.error or ("29", "UNZ")
    return interchange


def _close(message: EdifactMessage, unt: EdiSegment) -> None:
    if unt.get(2) != message.reference:
        message.errors.append(SetCode.CONTROL_NUMBERS_DIFFER)
    if not _count_is(unt.get(1), len(message.segments)):
        message.errors.append(SetCode.SEGMENT_COUNT_WRONG)


def _count_is(value: str, count: int) -> bool:
    return is_digits(value) and len(value) <= 10 and int(value) == count


def _escape(value: str) -> str:
    for char in "?:+'":
        value = value.replace(char, "?" + char)
    return value


def write_segment(tag: str, *elements: str | Sequence[str]) -> str:
    """One segment with the standard separators (``SEPARATORS``), values released with ``?``."""
    parts = [tag]
    for element in elements:
        components = [element] if isinstance(element, str) else list(element)
        while components and not components[-1]:
            components.pop()
        parts.append(":".join(map(_escape, components)))
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return "+".join(parts) + "'"
