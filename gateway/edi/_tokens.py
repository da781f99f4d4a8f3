"""Split an X12 interchange into segments, with the delimiters its ISA declares.

The ISA is fixed-width by the standard, but partners' translators differ in what surrounds
it: a UTF-8 byte-order mark, CR/LF after each terminator, a newline as the terminator,
indentation, trailing blanks. All of that is tolerated here; what is not (no ISA, an ISA
whose delimiters cannot be read) raises :class:`InterchangeUnusable`, which the API answers
with 400, since without delimiters there is nothing to acknowledge.

One pass of ``str.split`` over the text: linear time, and memory bounded by ``max_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gateway.errors import InterchangeUnusable

BOM = b"\xef\xbb\xbf"
#: Largest interchange tokenized by default (the API's body limit applies before this).
MAX_BYTES = 16 * 1024 * 1024
_ISA_ELEMENTS = 16
_WHITESPACE = " \t\r\n\f\v"


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators of one interchange, as its ISA declares them."""

    element: str
    component: str
    segment: str
    repetition: str | None
    """``ISA11`` from version 00402 on; ``None`` for 00401 (where ISA11 is the standards id ``U``)."""


class Segment(NamedTuple):
    """One segment: its tag, its elements (``elements[0]`` is the first after the tag), and its
    1-based position in the interchange. A tuple of strings, so the garbage collector stops
    tracking it: an interchange holds tens of thousands of them."""

    tag: str
    elements: tuple[str, ...]
    position: int

    def get(self, index: int) -> str:
        """Element ``index`` (1-based, as X12 numbers them); empty when absent."""
        elements = self.elements
        return elements[index - 1] if 0 < index <= len(elements) else ""


def is_digits(text: str) -> bool:
    """Only ASCII digits: ``str.isdigit`` also takes ``'¹'`` or ``'٣'``, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # X12's extended character set in a legacy code page
        return data.decode("latin-1")


def read_delimiters(text: str) -> Delimiters:
    """The delimiters of the ISA at the start of ``text`` (already stripped of BOM and blanks)."""
    if not text.startswith("ISA") or len(text) < 4:
        raise InterchangeUnusable("the interchange does not start with an ISA segment")
    element = text[3]
    if element.isalnum() or element in _WHITESPACE:
        raise InterchangeUnusable(f"the ISA element separator {element!r} is a letter, digit or blank")
    # ISA16 follows the sixteenth separator; the character after it ends the segment.
    position = 3
    for _ in range(_ISA_ELEMENTS - 1):
        position = text.find(element, position + 1) if position < len(text) else -1
        if position < 0:
            raise InterchangeUnusable("the ISA segment is incomplete (fewer than 16 elements)")
    if position + 2 >= len(text):
        raise InterchangeUnusable("the interchange ends inside its ISA segment")
    component, segment = text[position + 1], text[position + 2]
    if segment == "\r" and text[position + 3 : position + 4] == "\n":
        segment = "\n"
    isa = text[: position + 1].split(element)
    version = isa[12]
    repetition = isa[11] if version >= "00402" and len(isa[11]) == 1 else None
    if len({element, component, segment, repetition or element}) < 3 or component.isalnum():
        raise InterchangeUnusable(
            f"the ISA declares unusable delimiters: element {element!r}, component {component!r}, "
            f"segment {segment!r}"
        )
    return Delimiters(element=element, component=component, segment=segment, repetition=repetition)


def tokenize(data: bytes, *, max_bytes: int = MAX_BYTES) -> tuple[Delimiters, list[Segment]]:
    """The delimiters and every segment of ``data``, blanks around segments removed."""
    if len(data) > max_bytes:
        raise InterchangeUnusable(f"the interchange is larger than {max_bytes} bytes")
    if data.startswith(BOM):
        data = data[len(BOM) :]
    text = _decode(data).lstrip(_WHITESPACE)
    delimiters = read_delimiters(text)
    separator = delimiters.element
    raws = [raw for raw in (piece.strip(_WHITESPACE) for piece in text.split(delimiters.segment)) if raw]
    segments = [
        Segment(parts[0], tuple(parts[1:]), position)
        for position, parts in enumerate((raw.split(separator) for raw in raws), start=1)
    ]
    return delimiters, segments
