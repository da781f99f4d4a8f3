"""X12 180, Return Merchandise Authorization and Notification (functional group ``AN``).

Read from the public 004010-008010 segment and element directories: the segments an
inbound return request uses, with their standard element numbers, types, lengths and
the code lists worth enforcing. Unit codes (355) and item qualifiers (235) are left open
here: the trading partner's code tables decide which it sends (see ``edi-partners.yaml``).

Where this table departs from the standard, on purpose: the ``BLI`` loop is required and
its quantity, unit and unit price (``BLI03``, ``BLI04``, ``BLI05``/``BLI06``) too, since a
canonical return needs them; inside a ``BLI`` loop segments may come in any order and
``N9`` repeats up to 999 times (one ``N9*SE`` per serial number), as translators differ
there. Partners' extras the standard lacks (``CTT``, ``REF``) are tolerated anywhere.

To extend: add the segment to ``SEGMENTS`` and its place to ``STRUCTURE``.
"""

from __future__ import annotations

from gateway.edi._spec import Loop, M, Rule, SegmentSpec, TransactionSpec, Use, element, set_envelope

#: BGN01, transaction set purpose (353): original, cancellation, response, request...
PURPOSES = ("00", "01", "05", "06", "11", "13", "22")
#: RDR01, returns disposition (1292).
DISPOSITIONS = ("CR", "DI", "KA", "KR", "MW", "PA", "RA", "RD", "RF", "RN", "RP", "RT", "SC", "SD")
#: RDR02, return request reason (1293), as of 004010.
REQUEST_REASONS = (
    "BC",
    "CO",
    "CV",
    "DA",
    "DI",
    "DM",
    "DP",
    "DR",
    "DT",
    "EI",
    "EO",
    "EW",
    "LP",
    "MD",
    "NA",
    "OP",
    "PE",
    "PF",
    "PR",
    "PS",
    "PW",
    "RE",
    "SD",
    "SM",
    "SP",
    "SR",
    "ST",
    "TE",
    "WG",
)
#: RDR03, return response reason (1294).
RESPONSE_REASONS = ("EW", "FR", "IN", "IO", "MI", "NR", "OS", "PC", "PR", "QD", "RR", "RT", "SR", "UI")

SEGMENTS: dict[str, SegmentSpec] = {
    spec.tag: spec
    for spec in (
        *set_envelope("180"),
        SegmentSpec(
            "BGN",
            "Beginning Segment",
            (
                element(353, "ID", 2, 2, required=M, codes=PURPOSES),
                element(127, "AN", 1, 50, required=M),
                element(373, "DT", 8, 8, required=M),
                element(337, "TM", 4, 8),
                element(623, "ID", 2, 2),
                element(127, "AN", 1, 50),
                element(640, "ID", 2, 2),
                element(306, "ID", 1, 2),
                element(786, "ID", 1, 2),
            ),
            (Rule("C", (5, 4)),),
        ),
        SegmentSpec(
            "RDR",
            "Return Disposition Reason",
            (
                element(1292, "ID", 2, 2, codes=DISPOSITIONS),
                element(1293, "ID", 2, 2, codes=REQUEST_REASONS),
                element(1294, "ID", 2, 2, codes=RESPONSE_REASONS),
                element(352, "AN", 1, 80),
                element(1073, "ID", 1, 1, codes=["Y", "N"]),
            ),
            (Rule("E", (2, 3)),),
        ),
        SegmentSpec(
            "PRF",
            "Purchase Order Reference",
            (
                element(324, "AN", 1, 22, required=M),
                element(328, "AN", 1, 8),
                element(327, "AN", 1, 8),
                element(373, "DT", 8, 8),
                element(350, "AN", 1, 20),
                element(367, "AN", 1, 30),
                element(92, "ID", 2, 2),
            ),
        ),
        SegmentSpec(
            "DTM",
            "Date/Time Reference",
            (
                element(374, "ID", 3, 3, required=M),
                element(373, "DT", 8, 8),
                element(337, "TM", 4, 8),
                element(623, "ID", 2, 2),
                element(1250, "ID", 2, 3),
                element(1251, "AN", 1, 35),
            ),
            (Rule("R", (2, 3, 5)), Rule("C", (4, 3)), Rule("P", (5, 6))),
        ),
        SegmentSpec(
            "N9",
            "Reference Identification",
            (
                element(128, "ID", 2, 3, required=M),
                element(127, "AN", 1, 50),
                element(369, "AN", 1, 45),
                element(373, "DT", 8, 8),
                element(337, "TM", 4, 8),
                element(623, "ID", 2, 2),
            ),
            (Rule("R", (2, 3)),),
        ),
        SegmentSpec(
            "PER",
            "Administrative Communications Contact",
            (
                element(366, "ID", 2, 2, required=M),
                element(93, "AN", 1, 60),
                element(365, "ID", 2, 2),
                element(364, "AN", 1, 256),
                element(365, "ID", 2, 2),
                element(364, "AN", 1, 256),
                element(365, "ID", 2, 2),
                element(364, "AN", 1, 256),
                element(443, "AN", 1, 20),
            ),
            (Rule("P", (3, 4)), Rule("P", (5, 6)), Rule("P", (7, 8))),
        ),
        SegmentSpec(
            "N1",
            "Party Identification",
            (
                element(98, "ID", 2, 3, required=M),
                element(93, "AN", 1, 60),
                element(66, "ID", 1, 2),
                element(67, "AN", 2, 80),
                element(706, "ID", 2, 2),
                element(98, "ID", 2, 3),
            ),
            (Rule("R", (2, 3)), Rule("P", (3, 4))),
        ),
        SegmentSpec(
            "N2",
            "Additional Name Information",
            (
                element(93, "AN", 1, 60, required=M),
                element(93, "AN", 1, 60),
            ),
        ),
        SegmentSpec(
            "N3",
            "Party Location",
            (
                element(166, "AN", 1, 55, required=M),
                element(166, "AN", 1, 55),
            ),
        ),
        SegmentSpec(
            "N4",
            "Geographic Location",
            (
                element(19, "AN", 2, 30),
                element(156, "ID", 2, 2),
                element(116, "ID", 3, 15),
                element(26, "ID", 2, 3),
                element(309, "ID", 1, 2),
                element(310, "AN", 1, 30),
                element(1715, "ID", 1, 3),
            ),
            (Rule("C", (6, 5)),),
        ),
        SegmentSpec(
            "BLI",
            "Basic Baseline Item Data",
            (
                element(235, "ID", 2, 2, required=M),
                element(234, "AN", 1, 80, required=M),
                element(380, "R", 1, 15, required=M),
                element(355, "ID", 2, 2, required=M),
                element(236, "ID", 3, 3, required=M),
                element(212, "R", 1, 17, required=M),
                element(355, "ID", 2, 2),
                element(235, "ID", 2, 2),
                element(234, "AN", 1, 80),
                element(235, "ID", 2, 2),
                element(234, "AN", 1, 80),
                element(235, "ID", 2, 2),
                element(234, "AN", 1, 80),
            ),
            (
                Rule("C", (4, 3)),
                Rule("P", (5, 6)),
                Rule("C", (7, 6)),
                Rule("P", (8, 9)),
                Rule("P", (10, 11)),
                Rule("P", (12, 13)),
            ),
        ),
        SegmentSpec(
            "PID",
            "Product/Item Description",
            (
                element(349, "ID", 1, 1, required=M, codes=["F", "S", "X"]),
                element(750, "ID", 2, 3),
                element(559, "ID", 2, 2),
                element(751, "AN", 1, 12),
                element(352, "AN", 1, 80),
            ),
            (Rule("R", (4, 5)), Rule("C", (4, 3))),
        ),
        SegmentSpec(
            "QTY",
            "Quantity Information",
            (
                element(673, "ID", 2, 2, required=M),
                element(380, "R", 1, 15),
                element(355, "ID", 2, 2),
            ),
        ),
    )
}

STRUCTURE = Loop(
    "180",
    (
        Use("ST", M),
        Use("BGN", M),
        Use("RDR"),
        Use("PRF"),
        Use("DTM", max_use=10),
        Use("N9", max_use=10),
        Use("PER", max_use=2),
        Loop(
            "N1",
            (Use("N1", M), Use("N2", max_use=2), Use("N3", max_use=2), Use("N4"), Use("PER", max_use=5)),
            max_repeat=200,
        ),
        Loop(
            "BLI",
            (
                Use("BLI", M),
                Use("N9", max_use=999),  # serial numbers come one N9*SE each
                Use("PID", max_use=10),
                Use("DTM", max_use=10),
                Use("RDR"),
                Use("PRF"),
                Loop("QTY", (Use("QTY", M), Use("DTM", max_use=10)), max_repeat=10),
                Loop(
                    "N1",
                    (Use("N1", M), Use("N2", max_use=2), Use("N3", max_use=2), Use("N4")),
                    max_repeat=200,
                ),
            ),
            required=M,
            max_repeat=100_000,
            ordered=False,
        ),
        Use("SE", M),
    ),
    required=M,
)

SPEC = TransactionSpec("180", "AN", STRUCTURE, SEGMENTS, tolerated=frozenset({"CTT", "REF"}))
