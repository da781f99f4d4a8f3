"""RETANN messages and EDIFACT interchanges for the EDI tests, in the shapes partners send."""

from __future__ import annotations

import uuid

Segments = list[list[str | list[str]]]
#: Component, element, decimal mark, release character, reserved, segment terminator (UNA order).
STANDARD = ":+.? '"


def retann(ref: str, *, lines: Segments | None = None, header: Segments | None = None) -> Segments:
    """The segments between UNH and UNT of a RETANN announcing what ``tests.edi.x12.return_set``
    asks for: two SSDs (one by buyer part), so both become the same canonical request."""
    return [
        ["BGM", "7", ref, "9"],
        ["DTM", ["137", "20240311", "102"]],
        ["FTX", "AAO", "", "DM", "Two drives report SMART errors"],
        *(header or []),
        ["RFF", ["ON", "4500118832"]],
        ["DTM", ["171", "20240202", "102"]],
        ["RFF", ["IV", "90031877"]],
        ["DTM", ["171", "20240206", "102"]],
        ["NAD", "BY", ["C100234", "", "91"], "", "Nordwind Automation GmbH"],
        ["CTA", "IC", ["", "Jana Krueger"]],
        ["COM", ["+49 40 555 0192", "TE"]],
        ["COM", ["j.krueger@nordwind-automation.example", "EM"]],
        [
            "NAD",
            "SF",
            "",
            "",
            "Nordwind Automation GmbH",
            ["Wareneingang Tor 3", "Hafenstrasse 21"],
            "Hamburg",
            "",
            "20457",
            "DE",
        ],
        *(
            lines
            if lines is not None
            else [
                ["LIN", "1", "", ["SSD-SAM-PM893-1T92", "VN"]],
                ["IMD", "F", "", ["", "", "", "Samsung PM893 1.92 TB SATA SSD"]],
                ["QTY", ["61", "2", "EA"]],
                ["PRI", ["AAA", "289.50"]],
                ["GIN", "BN", "S5KANE0R401234", "S5KANE0R401239"],
                ["RFF", ["LI", "10"]],
                ["LIN", "2"],
                ["PIA", "5", ["NW-4711", "BP"]],
                ["QTY", ["61", "1", "EA"]],
                ["PRI", ["AAA", "289,50"]],
                ["FTX", "AAO", "", "EI"],
            ]
        ),
    ]


def _escape(value: str, separators: str) -> str:
    release = separators[3]
    for char in (release, separators[0], separators[1], separators[5]):
        value = value.replace(char, release + char)
    return value


def write_segment(tag: str, elements: list[str | list[str]], separators: str = STANDARD) -> str:
    parts = [tag]
    for element in elements:
        components = [element] if isinstance(element, str) else element
        parts.append(separators[0].join(_escape(c, separators) for c in components))
    return separators[1].join(parts) + separators[5]


def edifact(
    messages: list[Segments],
    *,
    control: str | None = None,
    sender: list[str] | None = None,
    recipient: list[str] | None = None,
    separators: str = STANDARD,
    una: bool = True,
    newline: str = "",
    message_type: str = "RETANN:D:01B:UN",
    references: list[str] | None = None,
    test: bool = False,
) -> bytes:
    """An interchange of one RETANN per ``messages`` entry, with a fresh control reference;
    ``test`` sets the UNB test indicator (0035 ``1``)."""
    control = control or uuid.uuid4().hex[:14].upper()
    out = [f"UNA{separators}"] if una else []
    out.append(
        write_segment(
            "UNB",
            [
                ["UNOC", "3"],
                sender or ["NORDWIND", "ZZ"],
                recipient or ["RGWDIST", "ZZ"],
                ["240311", "1200"],
                control,
                *(["", "", "", "", "", "1"] if test else []),
            ],
            separators,
        )
    )
    for number, body in enumerate(messages, start=1):
        ref = references[number - 1] if references else str(number)
        segments = [["UNH", ref, message_type.split(":")], *body]
        out += [write_segment(str(s[0]), list(s[1:]), separators) for s in segments]
        out.append(write_segment("UNT", [str(len(segments) + 1), ref], separators))
    out.append(write_segment("UNZ", [str(len(messages)), control], separators))
    return newline.join(out).encode()


def segments_of(contrl: str) -> list[list[str]]:
    """A CONTRL (standard separators, no release characters in it) as lists of elements."""
    text = contrl.split("'", 1)[1] if contrl.startswith("UNA") else contrl
    return [s.strip().split("+") for s in text.split("'") if s.strip()]
