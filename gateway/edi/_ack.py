"""Write the 997 for an interchange: one functional group per group acknowledged.

The 997 goes back with the delimiters and version the partner used, sender and receiver
swapped. Groups of 997s are not acknowledged (a 997 is never acknowledged).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gateway.edi._envelope import Interchange
from gateway.edi._structure import SetResult


@dataclass(slots=True)
class GroupResult:
    """What a group's check found: its sets' results and its own AK905 codes."""

    functional_id: str
    control: str
    version: str
    sender: str
    receiver: str
    declared_sets: int | None
    received_sets: int = 0
    """Sets found between GS and GE (AK903), acknowledged one by one unless the group is unsupported."""
    sets: list[SetResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def accepted_count(self) -> int:
        return 0 if self.errors else sum(result.accepted for result in self.sets)

    @property
    def status(self) -> str:
        """AK901: A all accepted, P some, R none (or the group itself is in error)."""
        accepted = self.accepted_count
        if self.errors or accepted == 0:
            return "R"
        return "A" if accepted == len(self.sets) else "P"


def _pad(value: str, width: int) -> str:
    return value[:width].ljust(width)


#: TA105 interchange note code: the interchange control number was used before.
DUPLICATE_CONTROL_NUMBER = "025"


def _isa(interchange: Interchange, control: int, now: dt.datetime) -> str:
    """The answer's ISA: the partner's delimiters, version and usage indicator, ids swapped."""
    d = interchange.delimiters
    isa = interchange.header
    return d.element.join(
        (
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            _pad(isa.get(7), 2),
            _pad(isa.get(8).strip(), 15),
            _pad(isa.get(5), 2),
            _pad(isa.get(6).strip(), 15),
            now.strftime("%y%m%d"),
            now.strftime("%H%M"),
            isa.get(11),
            isa.get(12),
            f"{control:09d}",
            "0",
            isa.get(15) or "P",
            d.component,
        )
    )


def build_ta1(interchange: Interchange, *, note: str, control: int, now: dt.datetime | None = None) -> str:
    """An interchange holding only a TA1 that rejects ``interchange`` (TA104 ``R``) for ``note``
    (TA105, e.g. :data:`DUPLICATE_CONTROL_NUMBER`); ``control`` is the answer's own ISA13."""
    now = now or dt.datetime.now(dt.UTC)
    e, t = interchange.delimiters.element, interchange.delimiters.segment
    isa = interchange.header
    ta1 = e.join(("TA1", isa.get(13), isa.get(9), isa.get(10), "R", note))
    return t.join((_isa(interchange, control, now), ta1, e.join(("IEA", "0", f"{control:09d}")))) + t


def build_997(
    interchange: Interchange,
    groups: list[GroupResult],
    *,
    control: int,
    group_control: int,
    now: dt.datetime | None = None,
) -> str:
    """The 997 interchange acknowledging ``groups`` (those that are not 997s themselves).

    ``control`` is the 997's own ISA13, ``group_control`` its first GS06; the caller keeps
    them unique (the API draws them from a counter per partner).
    """
    now = now or dt.datetime.now(dt.UTC)
    d = interchange.delimiters
    e, t = d.element, d.segment
    lines = [_isa(interchange, control, now)]
    acknowledged = [group for group in groups if group.functional_id != "FA"]
    for offset, group in enumerate(acknowledged):
        gs06 = str(group_control + offset)
        body = [e.join(("ST", "997", "0001")), e.join(("AK1", group.functional_id, group.control))]
        for result in group.sets:
            body.append(e.join(("AK2", result.code, result.control)))
            for error in result.segment_errors:
                body.append(
                    e.join(
                        ("AK3", error.tag, str(error.position), error.loop or "", error.code or "")
                    ).rstrip(e)
                )
                for bad in error.elements:
                    fields = ("AK4", str(bad.position), str(bad.ref or ""), bad.code, bad.value)
                    body.append(e.join(fields).rstrip(e))
            status = "A" if result.accepted and not group.errors else "R"
            body.append(e.join(("AK5", status, *result.errors[:5])))
        included = group.declared_sets if group.declared_sets is not None else group.received_sets
        body.append(
            e.join(
                (
                    "AK9",
                    group.status,
                    str(included),
                    str(group.received_sets),
                    str(group.accepted_count),
                    *group.errors[:5],
                )
            )
        )
        body.append(e.join(("SE", str(len(body) + 1), "0001")))
        lines.append(
            e.join(
                (
                    "GS",
                    "FA",
                    group.receiver,
                    group.sender,
                    now.strftime("%Y%m%d"),
                    now.strftime("%H%M"),
                    gs06,
                    "X",
                    group.version,
                )
            )
        )
        lines.extend(body)
        lines.append(e.join(("GE", "1", gs06)))
    lines.append(e.join(("IEA", str(len(acknowledged)), f"{control:09d}")))
    return t.join(lines) + t
