"""Write X12: segments joined with chosen delimiters, and whole envelopes around sets.

Used to build test and benchmark interchanges, and by anything that sends X12 out; the
997 writer keeps its own layout (it mirrors the interchange it answers). Quantities are
written one way for X12 and EDIFACT alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

Elements = Sequence[str]


def write_quantity(value: float) -> str:
    """A quantity as EDI numeric text: ``3``, ``2.5``; never an exponent, never trailing zeros."""
    return format(Decimal(str(value)).normalize(), "f")


def write_segments(
    segments: Sequence[Elements], *, element: str = "*", segment: str = "~", newline: str = ""
) -> str:
    """``[["ST", "180", "0001"], ...]`` as text; ``newline`` after each terminator (``\\r\\n``)."""
    return "".join(element.join(parts) + segment + newline for parts in segments)


def write_interchange(
    groups: Sequence[Sequence[Sequence[Elements]]],
    *,
    sender: str = "NORDWIND",
    receiver: str = "RGWDIST",
    qualifier: str = "ZZ",
    control: int = 905,
    version: str = "00401",
    functional_id: str = "AN",
    element: str = "*",
    component: str = ">",
    repetition: str = "^",
    segment: str = "~",
    newline: str = "",
    date: str = "240311",
    time: str = "0942",
    usage: str = "P",
) -> str:
    """An interchange of ``groups``, each a list of sets, each a list of the segments
    between ST and SE; ST, SE, GS, GE, ISA and IEA are written with correct counts.
    ``usage`` is ISA15: ``P`` production, ``T`` test."""
    isa11 = "U" if version == "00401" else repetition
    segments: list[Elements] = [
        [
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            qualifier,
            sender.ljust(15),
            qualifier,
            receiver.ljust(15),
            date,
            time,
            isa11,
            version,
            f"{control:09d}",
            "0",
            usage,
            component,
        ]
    ]
    gs_version = version[:5] + "0" if version != "00401" else "004010"
    for g, sets in enumerate(groups, start=1):
        group_control = str(control % 99_999_999 * 10 + g)  # GS06 has at most 9 digits
        segments.append(
            ["GS", functional_id, sender, receiver, "20" + date, time, group_control, "X", gs_version]
        )
        for s, body in enumerate(sets, start=1):
            st02 = f"{s:04d}"
            segments.append(["ST", "180" if functional_id == "AN" else "997", st02])
            segments.extend(body)
            segments.append(["SE", str(len(body) + 2), st02])
        segments.append(["GE", str(len(sets)), group_control])
    segments.append(["IEA", str(len(groups)), f"{control:09d}"])
    return write_segments(segments, element=element, segment=segment, newline=newline)
