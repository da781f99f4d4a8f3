"""X12 997, Functional Acknowledgment (functional group ``FA``).

Used to check the 997s this gateway writes (tests, ``edi validate``) and those partners
send back; a 997 is never acknowledged itself. Codes as in the 004010 and 005010 element
directories (715, 716, 717, 718, 720, 723).
"""

from __future__ import annotations

from gateway.edi._spec import Loop, M, SegmentSpec, TransactionSpec, Use, element, set_envelope

SEGMENT_ERRORS = ("1", "2", "3", "4", "5", "6", "7", "8")
ELEMENT_ERRORS = (
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "12",
    "13",
    "I6",
    "I9",
    "I10",
    "I11",
    "I12",
    "I13",
)
SET_STATUSES = ("A", "E", "M", "R", "W", "X")
SET_ERRORS = (*tuple(str(code) for code in (*range(1, 20), 23, 24, 25, 26, 27)), "I5", "I6")
GROUP_STATUSES = ("A", "E", "M", "P", "R", "W", "X")
GROUP_ERRORS = tuple(str(code) for code in (*range(1, 27), 30, 31))

SEGMENTS: dict[str, SegmentSpec] = {
    spec.tag: spec
    for spec in (
        *set_envelope("997"),
        SegmentSpec(
            "AK1",
            "Functional Group Response Header",
            (
                element(479, "ID", 2, 2, required=M),
                element(28, "N0", 1, 9, required=M),
                element(480, "AN", 1, 12),
            ),
        ),
        SegmentSpec(
            "AK2",
            "Transaction Set Response Header",
            (
                element(143, "ID", 3, 3, required=M),
                element(329, "AN", 4, 9, required=M),
                element(1705, "AN", 1, 35),
            ),
        ),
        SegmentSpec(
            "AK3",
            "Data Segment Note",
            (
                element(721, "ID", 2, 3, required=M),
                element(719, "N0", 1, 10, required=M),
                element(447, "AN", 1, 4),
                element(720, "ID", 1, 3, codes=SEGMENT_ERRORS),
            ),
        ),
        SegmentSpec(
            "AK4",
            "Data Element Note",
            (
                element(722, "AN", 1, 9, required=M),
                element(725, "N0", 1, 4),
                element(723, "ID", 1, 3, required=M, codes=ELEMENT_ERRORS),
                element(724, "AN", 1, 99),
            ),
        ),
        SegmentSpec(
            "AK5",
            "Transaction Set Response Trailer",
            (
                element(717, "ID", 1, 1, required=M, codes=SET_STATUSES),
                *(element(718, "ID", 1, 3, codes=SET_ERRORS) for _ in range(5)),
            ),
        ),
        SegmentSpec(
            "AK9",
            "Functional Group Response Trailer",
            (
                element(715, "ID", 1, 1, required=M, codes=GROUP_STATUSES),
                element(97, "N0", 1, 6, required=M),
                element(123, "N0", 1, 6, required=M),
                element(2, "N0", 1, 6, required=M),
                *(element(716, "ID", 1, 3, codes=GROUP_ERRORS) for _ in range(5)),
            ),
        ),
    )
}

STRUCTURE = Loop(
    "997",
    (
        Use("ST", M),
        Use("AK1", M),
        Loop(
            "AK2",
            (
                Use("AK2", M),
                Loop("AK3", (Use("AK3", M), Use("AK4", max_use=99)), max_repeat=999_999),
                Use("AK5", M),
            ),
            max_repeat=999_999,
        ),
        Use("AK9", M),
        Use("SE", M),
    ),
    required=M,
)

SPEC = TransactionSpec("997", "FA", STRUCTURE, SEGMENTS)
