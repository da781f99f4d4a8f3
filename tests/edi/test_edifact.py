"""EDIFACT offline: RETANNs in the shapes partners send, read into the same canonical request as a
180; envelope and message findings reported in the CONTRL with the standard's codes."""

from __future__ import annotations

import pytest
from pydifact.segmentcollection import Interchange as PdInterchange

from gateway.edi import Partner, ReturnNoticeMapper
from gateway.edi.edifact_retann import check_edifact
from gateway.errors import InterchangeUnusable
from tests.edi.edifact import edifact, retann, segments_of
from tests.edi.x12 import expected_request, reference


def _check(body: bytes, partner: Partner):  # type: ignore[no-untyped-def]
    return check_edifact(body, reasons=set(partner.reasons), units=set(partner.units))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"una": False},
        {"newline": "\r\n"},
        {"newline": "\n", "una": True},
        {"separators": "|*,! ~"},
        {"separators": ">^.\\ \x1c", "newline": "\n"},
    ],
    ids=["una", "no-una", "crlf", "newline", "other-separators", "control-char-terminator"],
)
def test_a_retann_in_any_shape_becomes_the_request_a_180_becomes(
    options: dict, nordwind: Partner, mapper: ReturnNoticeMapper
) -> None:
    first, second = reference(), reference()
    checked = _check(edifact([retann(first), retann(second)], **options), nordwind)
    assert [r.accepted for r in checked.groups[0].sets] == [True, True]
    requests = [mapper.apply(t, "nordwind", nordwind) for t in checked.transactions]
    assert requests == [expected_request(first), expected_request(second)]
    contrl = segments_of(checked.ack(control=7))
    assert [s for s in contrl if s[0] in ("UCI", "UCM")] == [
        ["UCI", checked.interchange.control, "NORDWIND:ZZ", "RGWDIST:ZZ", "7"],
        ["UCM", "1", "RETANN:D:01B:UN", "7"],
        ["UCM", "2", "RETANN:D:01B:UN", "7"],
    ]


@pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")
def test_the_contrl_is_a_valid_interchange_back_to_the_sender(nordwind: Partner) -> None:
    checked = _check(edifact([retann(reference())]), nordwind)
    contrl = checked.ack(control=31)
    parsed = PdInterchange.from_str(contrl)
    assert parsed.sender == ["RGWDIST", "ZZ"] and parsed.recipient == ["NORDWIND", "ZZ"]
    assert parsed.control_reference == "31"
    assert [s.tag for s in parsed.segments] == ["UNH", "UCI", "UCM", "UNT"]
    unt = next(s for s in parsed.segments if s.tag == "UNT")
    assert unt.elements == ["4", "1"]


def _bad(line: list) -> list:  # type: ignore[type-arg]
    return [["LIN", "1", "", ["SSD-SAM-PM893-1T92", "VN"]], *line]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            retann("R", lines=_bad([["QTY", ["61", "two", "EA"]], ["PRI", ["AAA", "1"]]])),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "15"], ["UCD", "12", "1:2"]],
        ),
        (
            retann("R", lines=_bad([["QTY", ["61", "2", "XX"]], ["PRI", ["AAA", "1"]]])),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "15"], ["UCD", "12", "1:3"]],
        ),
        (
            retann("R", lines=_bad([["QTY", ["61", "2", "EA"]]])),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "16", "13"]],
        ),
        (
            retann(
                "R", lines=_bad([["QTY", ["61", "2", "EA"]], ["PRI", ["AAA", "1"]], ["FTX", "AAO", "", "ZZ"]])
            ),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "17"], ["UCD", "12", "3:1"]],
        ),
        (
            retann("", lines=_bad([["QTY", ["61", "2", "EA"]], ["PRI", ["AAA", "1"]]])),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "2"], ["UCD", "13", "2:1"]],
        ),
        (
            retann("R", lines=[]),
            [["UCM", "1", "RETANN:D:01B:UN", "4"], ["UCS", "14", "13"]],
        ),
        (
            [["DTM", ["137", "20241399", "102"]]],
            [
                ["UCM", "1", "RETANN:D:01B:UN", "4"],
                ["UCS", "2"],
                ["UCD", "12", "1:2"],
                ["UCS", "2", "13"],
                ["UCS", "3", "13"],
            ],
        ),
    ],
    ids=[
        "bad-quantity",
        "unit-not-agreed",
        "no-price",
        "reason-not-agreed",
        "no-document-number",
        "no-lines",
        "no-bgm-bad-date",
    ],
)
def test_a_bad_message_is_rejected_with_segment_and_element_positions(
    message: list,
    expected: list,
    nordwind: Partner,  # type: ignore[type-arg]
) -> None:
    checked = _check(edifact([retann(reference()), message]), nordwind)
    assert [r.accepted for r in checked.groups[0].sets] == [True, False]
    assert len(checked.transactions) == 1
    contrl = segments_of(checked.ack())
    assert contrl[3] == ["UCM", "1", "RETANN:D:01B:UN", "7"]
    assert contrl[4:-2] == [s if s[0] != "UCM" else ["UCM", "2", *s[2:]] for s in expected]


def test_message_envelope_errors_reject_that_message(nordwind: Partner) -> None:
    body = edifact(
        [retann(reference()), retann(reference()), retann(reference())], references=["A", "B", "B"]
    )
    text = body.decode()
    unt = [s for s in text.split("'") if s.startswith("UNT")]
    text = text.replace(unt[0] + "'", f"UNT+{int(unt[0].split('+')[1]) + 1}+A'", 1)
    checked = _check(text.encode(), nordwind)
    ucm = [s for s in segments_of(checked.ack()) if s[0] == "UCM"]
    assert ucm == [
        ["UCM", "A", "RETANN:D:01B:UN", "4", "29", "UNT"],
        ["UCM", "B", "RETANN:D:01B:UN", "7"],
        ["UCM", "B", "RETANN:D:01B:UN", "4", "26", "UNH"],
    ]
    assert len(checked.transactions) == 1


def test_unh_unt_reference_mismatch_missing_unt_and_other_message_types(nordwind: Partner) -> None:
    mismatch = edifact([retann(reference())]).decode().replace("+1'UNZ", "+9'UNZ")
    checked = _check(mismatch.encode(), nordwind)
    assert ["UCM", "1", "RETANN:D:01B:UN", "4", "28", "UNT"] in segments_of(checked.ack())
    no_unt = edifact([retann(reference()), retann(reference())]).decode()
    first_unt = next(s for s in no_unt.split("'") if s.startswith("UNT"))
    checked = _check(no_unt.replace(first_unt + "'", "", 1).encode(), nordwind)
    assert ["UCM", "1", "RETANN:D:01B:UN", "4", "13", "UNT"] in segments_of(checked.ack())
    assert [s[0:2] for s in segments_of(checked.ack()) if s[0] == "UCM"][1] == ["UCM", "2"]
    orders = edifact([retann(reference())], message_type="ORDERS:D:96A:UN")
    checked = _check(orders, nordwind)
    assert ["UCM", "1", "ORDERS:D:96A:UN", "4", "14", "UNH"] in segments_of(checked.ack())
    assert not checked.transactions


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda t: t.rsplit("UNZ+1+", 1)[0] + "UNZ+1+OTHER'", ["28", "UNZ"]),
        (lambda t: t.replace("UNZ+1+", "UNZ+2+"), ["29", "UNZ"]),
        (lambda t: t.rsplit("UNZ+", 1)[0], ["13", "UNZ"]),
        (lambda t: t + "LIN+9'", ["15", "LIN"]),
        (lambda t: t.replace("UNB+UNOC:3", "UNB+XYZA:3"), ["2", "UNB"]),
    ],
    ids=["unz-reference", "unz-count", "no-unz", "after-unz", "syntax-identifier"],
)
def test_interchange_envelope_errors_reject_it_whole(change, code: list[str], nordwind: Partner) -> None:  # type: ignore[no-untyped-def]
    body = change(edifact([retann(reference())]).decode()).encode()
    checked = _check(body, nordwind)
    assert not checked.transactions
    contrl = segments_of(checked.ack())
    uci = next(s for s in contrl if s[0] == "UCI")
    assert uci[4:] == ["4", *code]
    assert not [s for s in contrl if s[0] == "UCM"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"ISA*00*",
        b"UNH+1+RETANN:D:01B:UN'",
        b"UNA:+",
        b"UNB+UNOC:3+NORDWIND",
        b"UNB'''",
        b"UNA:+.? 'UNA:+.? '",
        b"UNB+UNOC:3++RGWDIST+1+'UNZ+0+1'",
        b"UN+1'",
    ],
    ids=[
        "empty",
        "blank",
        "x12",
        "no-unb",
        "cut-una",
        "cut-unb",
        "empty-unb",
        "two-una",
        "no-sender",
        "bad-tag",
    ],
)
def test_unusable_interchanges_raise_the_documented_error(body: bytes) -> None:
    with pytest.raises(InterchangeUnusable):
        check_edifact(body)


def test_a_bom_and_latin_1_text_are_read(nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    ref = reference()
    body = edifact([retann(ref, header=[["FTX", "ZZZ", "", "", "Gehäuse beschädigt"]])])
    checked = _check(b"\xef\xbb\xbf" + body, nordwind)
    assert checked.transactions and checked.transactions[0].notice["reference"] == ref
    latin = _check(body.decode().encode("latin-1"), nordwind)
    assert latin.transactions
