"""Offline: interchanges in the shapes partners send map to the expected returns, and each
kind of defect gets its X12 code in the 997 (or, without a usable envelope, a refusal)."""

from __future__ import annotations

import pytest

from gateway.edi import Partner, ReturnNoticeMapper, check_interchange
from gateway.errors import InterchangeUnusable
from tests.edi.x12 import Segments, expected_request, interchange, return_set, segments_of

CODES = {"RDR02", "BLI04"}


def _requests(body: bytes, nordwind: Partner, mapper: ReturnNoticeMapper) -> list[dict[str, object]]:
    checked = check_interchange(body, codes=nordwind.code_lists())
    assert all(s.accepted for g in checked.groups for s in g.sets), [g.sets for g in checked.groups]
    requests = [mapper.apply(t, "nordwind", nordwind) for t in checked.transactions]
    assert all(t.result.accepted for t in checked.transactions), [t.result for t in checked.transactions]
    return requests  # type: ignore[return-value]


SHAPES = {
    "tilde-star-gt": {},
    "pipe-newline-colon": {"element": "|", "segment": "\n", "component": ":"},
    "caret-bang-backslash": {"element": "^", "segment": "!", "component": "\\", "repetition": "{"},
    "crlf-after-tilde": {"newline": "\r\n"},
    "newline-only-terminator-00501": {"segment": "\n", "version": "00501"},
    "version-00801": {"version": "00801", "repetition": "^"},
}


@pytest.mark.parametrize("options", SHAPES.values(), ids=SHAPES.keys())
def test_each_shape_maps_to_the_same_returns(options: dict[str, str], nordwind: Partner, mapper) -> None:  # type: ignore[no-untyped-def]
    body = interchange([[return_set("RQ-A"), return_set("RQ-B")], [return_set("RQ-C")]], **options)
    assert _requests(body, nordwind, mapper) == [expected_request(r) for r in ("RQ-A", "RQ-B", "RQ-C")]


def test_bom_indentation_trailing_blanks_and_partner_extras(nordwind: Partner, mapper) -> None:  # type: ignore[no-untyped-def]
    text = interchange(
        [[[*return_set("RQ-A", header=[["REF", "ZZ", "internal"]]), ["CTT", "2"]]]], newline="\r\n"
    ).decode()
    indented = "\n".join(("    " + line + "  \t") for line in text.splitlines())
    body = b"\xef\xbb\xbf" + b"\r\n  " + indented.encode()
    assert _requests(body, nordwind, mapper) == [expected_request("RQ-A")]


def _ack_of(groups: list[list[Segments]], nordwind: Partner, **options: object) -> list[list[str]]:
    checked = check_interchange(interchange(groups, **options), codes=nordwind.code_lists())  # type: ignore[arg-type]
    return [s for s in segments_of(checked.ack()) if s[0].startswith("AK")]


def _replace(segments: Segments, tag: str, new: list[str] | None) -> Segments:
    out, done = [], False
    for segment in segments:
        if segment[0] == tag and not done:
            done = True
            if new is not None:
                out.append(new)
        else:
            out.append(segment)
    return out


ELEMENT_ERRORS = {
    "bad-purpose-code": (
        ["BGN", "99", "RQ-1", "20240311"],
        ["AK3", "BGN", "2", "", "8"],
        ["AK4", "1", "353", "7", "99"],
    ),
    "invalid-date": (
        ["BGN", "00", "RQ-1", "20241340"],
        ["AK3", "BGN", "2", "", "8"],
        ["AK4", "3", "373", "8", "20241340"],
    ),
    "too-long": (
        ["BGN", "00", "R" * 51, "20240311"],
        ["AK3", "BGN", "2", "", "8"],
        ["AK4", "2", "127", "5", "R" * 51],
    ),
    "mandatory-missing": (
        ["BGN", "00", "", "20240311"],
        ["AK3", "BGN", "2", "", "8"],
        ["AK4", "2", "127", "1"],
    ),
    "too-many-elements": (
        ["BGN", "00", "RQ-1", "20240311", "", "", "", "", "", "", "X"],
        ["AK3", "BGN", "2", "", "8"],
        ["AK4", "10", "", "3", "X"],
    ),
    "exclusion": (["RDR", "", "DM", "IN"], ["AK3", "RDR", "3", "", "8"], ["AK4", "3", "1294", "10", "IN"]),
    "reason-not-in-partner-table": (
        ["RDR", "", "SM"],
        ["AK3", "RDR", "3", "", "8"],
        ["AK4", "2", "1293", "7", "SM"],
    ),
}


@pytest.mark.parametrize(("segment", "ak3", "ak4"), ELEMENT_ERRORS.values(), ids=ELEMENT_ERRORS.keys())
def test_element_errors(segment: list[str], ak3: list[str], ak4: list[str], nordwind: Partner) -> None:
    good = return_set()
    bad = _replace(return_set(), segment[0], segment)
    ack = _ack_of([[good, bad]], nordwind)
    assert [a + [""] * (5 - len(a)) if a[0] == "AK3" else a for a in ack] == [
        ack[0],
        ["AK2", "180", "0001"],
        ["AK5", "A"],
        ["AK2", "180", "0002"],
        ak3,
        ak4,
        ["AK5", "R", "5"],
        ["AK9", "P", "2", "2", "1"],
    ]


def test_non_numeric_quantity(nordwind: Partner) -> None:
    lines = [["BLI", "VN", "SSD-SAM-PM893-1T92", "two", "EA", "CON", "289.50"]]
    ack = _ack_of([[return_set(lines=lines)]], nordwind)
    assert ["AK3", "BLI", "11", "BLI", "8"] in ack and ["AK4", "3", "380", "6", "two"] in ack


SEGMENT_ERRORS = {
    "unknown-segment": (lambda s: [*s[:2], ["ZZZ", "1"], *s[2:]], ["AK3", "ZZZ", "4", "", "6"]),
    "unrecognized-segment-id": (lambda s: [*s[:2], ["zz$", "1"], *s[2:]], ["AK3", "zz$", "4", "", "1"]),
    "mandatory-segment-missing": (lambda s: s[1:], ["AK3", "BGN", "2", "", "3"]),
    "out-of-sequence": (lambda s: [*s, ["BGN", "00", "X", "20240311"]], ["AK3", "BGN", "18", "BLI", "7"]),
    "exceeds-maximum-use": (lambda s: [*s[:3], s[2], *s[3:]], ["AK3", "PRF", "5", "", "5"]),
    "no-items": (lambda s: s[:9], ["AK3", "BLI", "11", "", "3"]),
}


@pytest.mark.parametrize(("change", "ak3"), SEGMENT_ERRORS.values(), ids=SEGMENT_ERRORS.keys())
def test_segment_errors(change, ak3: list[str], nordwind: Partner) -> None:  # type: ignore[no-untyped-def]
    ack = _ack_of([[change(return_set())]], nordwind)
    assert ak3 in [a + [""] * (5 - len(a)) for a in ack if a[0] == "AK3"], ack
    assert ["AK5", "R", "5"] in ack and ack[-1][:2] == ["AK9", "R"]


def _raw(text: str) -> bytes:
    return text.encode()


def _mutate(old: str, new: str, groups: list[list[Segments]] | None = None) -> bytes:
    body = interchange(groups or [[return_set(), return_set()]], control=905).decode()
    assert old in body
    return body.replace(old, new, 1).encode()


ENVELOPE_ERRORS = {
    "segment-count": (lambda: _mutate("SE*18*0001", "SE*21*0001"), ["AK5", "R", "4"], "P"),
    "set-control-numbers": (lambda: _mutate("SE*18*0001", "SE*18*0009"), ["AK5", "R", "3"], "P"),
    "set-trailer-missing": (lambda: _mutate("SE*18*0001~", ""), ["AK5", "R", "2", "5"], "P"),
    "set-control-not-unique": (
        lambda: _mutate("ST*180*0002", "ST*180*0001").replace(b"SE*18*0002", b"SE*18*0001"),
        ["AK5", "R", "23"],
        "P",
    ),
    "set-not-supported": (lambda: _mutate("ST*180*0002", "ST*850*0002"), ["AK5", "R", "1"], "P"),
}


@pytest.mark.parametrize(("body", "ak5", "status"), ENVELOPE_ERRORS.values(), ids=ENVELOPE_ERRORS.keys())
def test_set_envelope_errors(body, ak5: list[str], status: str, nordwind: Partner) -> None:  # type: ignore[no-untyped-def]
    ack = [
        s
        for s in segments_of(check_interchange(body(), codes=nordwind.code_lists()).ack())
        if s[0].startswith("AK")
    ]
    assert ak5 in ack, ack
    assert ack[-1][:2] == ["AK9", status]


GROUP_ERRORS = {
    "group-count": (lambda: _mutate("GE*2*", "GE*3*"), ["AK9", "R", "3", "2", "0", "5"]),
    "group-control-numbers": (
        lambda: _mutate("GE*2*9051", "GE*2*9052"),
        ["AK9", "R", "2", "2", "0", "4"],
    ),
    "group-not-supported": (lambda: _mutate("GS*AN", "GS*PO"), ["AK9", "R", "2", "2", "0", "1"]),
    "group-version": (lambda: _mutate("*X*004010~", "*X*003010~"), ["AK9", "R", "2", "2", "0", "2"]),
    "group-trailer-missing": (lambda: _mutate("GE*2*9051~", ""), ["AK9", "R", "2", "2", "0", "3"]),
}


@pytest.mark.parametrize(("body", "ak9"), GROUP_ERRORS.values(), ids=GROUP_ERRORS.keys())
def test_group_envelope_errors(body, ak9: list[str], nordwind: Partner) -> None:  # type: ignore[no-untyped-def]
    checked = check_interchange(body(), codes=nordwind.code_lists())
    ack = [s for s in segments_of(checked.ack()) if s[0].startswith("AK")]
    assert ack[-1] == ak9
    assert checked.transactions == []  # nothing in a broken group becomes a return


def test_a_997_received_is_checked_but_never_acknowledged(nordwind: Partner) -> None:
    inbound = check_interchange(interchange([[return_set()]]), codes=nordwind.code_lists())
    answer = check_interchange(inbound.ack().encode())
    assert [(g.functional_id, [s.accepted for s in g.sets]) for g in answer.groups] == [("FA", [True])]
    assert segments_of(answer.ack()) == [segments_of(answer.ack())[0], ["IEA", "0", "000000001"]]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "does not start with an ISA"),
        (b"\xef\xbb\xbf   \r\n", "does not start with an ISA"),
        (b"ISA*00*", "incomplete"),
        (b"ISA" + b"A" * 200, "letter, digit or blank"),
        (lambda: _mutate("IEA*1*000000905~", ""), "truncated"),
        (lambda: _mutate("IEA*1*000000905", "IEA*1*000000906"), "IEA02"),
        (lambda: _mutate("IEA*1*", "IEA*2*"), "IEA01"),
        (lambda: _mutate("*00401*000000905*", "*00300*000000905*"), "ISA12"),
        (lambda: _mutate("*00401*000000905*", "*00401*905*"), "ISA13"),
        (lambda: _mutate("*ZZ*RGWDIST        *", "*ZZ*               *"), "ISA08"),
        (lambda: _mutate("GS*AN", "XX*1~GS*AN"), "outside any transaction set"),
    ],
)
def test_no_usable_envelope_is_refused_with_the_reason(body, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InterchangeUnusable, match=reason):
        check_interchange(body() if callable(body) else body)


def test_size_limit() -> None:
    body = interchange([[return_set()] * 5])
    with pytest.raises(InterchangeUnusable, match="larger than"):
        check_interchange(body, max_bytes=len(body) - 1)
