"""RETINS out: a decided return answered to the partner that sent the RETANN, read back by pydifact."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydifact.segmentcollection import Interchange as PdInterchange

from gateway.edi._edifact import parse_edifact
from gateway.edi._origin import EdiOrigin, OriginLine
from gateway.edi.edifact_retins import build_retins
from tests.edi.x12 import expected_request

NOW = dt.datetime(2024, 3, 12, 8, 30, tzinfo=dt.UTC)
ORIGIN = EdiOrigin(
    partner="nordwind",
    sender_qualifier="ZZ",
    sender="NORDWIND",
    receiver_qualifier="ZZ",
    receiver="RGWDIST",
    group_sender="NORDWIND",
    group_receiver="RGWDIST",
    version="D:01B",
    interchange="IC0001",
    transaction="1",
    reference="RQ-0001",
    lines=[
        OriginLine(
            line_number=1,
            item_ids={"VN": "SSD-SAM-PM893-1T92"},
            sku="SSD-SAM-PM893-1T92",
            quantity=2,
            unit="EA",
        ),
        OriginLine(
            line_number=2,
            item_ids={"BP": "NW-4711", "SA": "S-1"},
            sku="SSD-SAM-PM893-1T92",
            quantity=1,
            unit="EA",
        ),
    ],
)


def _authorization(decision: str, quantities: tuple[float, float], rma: str | None) -> dict[str, Any]:
    lines = [
        {
            "line_number": n,
            "sku": "SSD-SAM-PM893-1T92",
            "requested_quantity": r,
            "authorized_quantity": q,
            "unit_of_measure": "C62",
        }
        for n, (r, q) in enumerate(zip((2, 1), quantities, strict=True), start=1)
    ]
    answer = {
        "return_id": "ret_0b7e3a9c1d2f4e5a6b7c8d9e0f1a2b3c",
        "external_id": "RQ-0001",
        "decision": decision,
        "decided_at": "2024-03-12T08:30:00Z",
        "decided_by": {"type": "system", "id": "rules"},
        "lines": lines,
    }
    if rma:
        answer.update(rma_number=rma, expires_on="2024-04-11")
    return answer


@pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")
@pytest.mark.parametrize(
    ("decision", "quantities", "rma", "bgm", "dates"),
    [
        ("authorized", (2, 1), "RMA-2024-031877", ["", "RMA-2024-031877", "9", "AP"], 2),
        ("partially_authorized", (2, 0), "RMA-2024-031878", ["", "RMA-2024-031878", "9", "CA"], 2),
        ("rejected", (0, 0), None, ["", "ret_0b7e3a9c1d2f4e5a6b7c8d9e0f1a2b3c", "9", "RE"], 1),
    ],
    ids=["authorized", "partly", "rejected"],
)
def test_a_decision_becomes_a_retins_back_to_the_sender(
    decision: str, quantities: tuple[float, float], rma: str | None, bgm: list[str], dates: int
) -> None:
    text = build_retins(
        ORIGIN, _authorization(decision, quantities, rma), expected_request("RQ-0001"), control=77, now=NOW
    )
    parsed = PdInterchange.from_str(text)
    assert parsed.sender == ["RGWDIST", "ZZ"] and parsed.recipient == ["NORDWIND", "ZZ"]
    assert parsed.control_reference == "77"
    (message,) = list(parsed.get_messages())
    assert message.type == "RETINS"
    segments = [(s.tag, s.elements) for s in message.segments]
    assert segments[0] == ("BGM", bgm)
    assert segments[1] == ("DTM", [["137", "202403120830", "203"]])
    assert [e for t, e in segments if t == "DTM"][1:] == ([[["36", "20240411", "102"]]] if dates == 2 else [])
    assert ("RFF", [["ACW", "RQ-0001"]]) in segments
    lines = [(t, e) for t, e in segments if t in ("LIN", "PIA", "QTY")]
    assert lines == [
        ("LIN", ["1", "", ["SSD-SAM-PM893-1T92", "VN"]]),
        ("QTY", [["61", str(quantities[0]), "EA"]]),
        ("LIN", ["2", "", ["NW-4711", "BP"]]),
        ("PIA", ["5", ["S-1", "SA"]]),
        ("QTY", [["61", str(quantities[1]), "EA"]]),
    ]
    # Our own envelope check finds nothing wrong with it either (counts and references pair up).
    envelope = parse_edifact(text.encode())
    assert envelope.error is None and not envelope.messages[0].errors


def test_fractional_quantities_and_values_needing_release_characters() -> None:
    authorization = _authorization("partially_authorized", (1.5, 0), "RMA+1:'?")
    text = build_retins(ORIGIN, authorization, expected_request("RQ-0001"), control=1, now=NOW)
    envelope = parse_edifact(text.encode())
    bgm = envelope.messages[0].segments[1]
    assert bgm.get(2) == "RMA+1:'?"
    qty = envelope.messages[0].segments[6]  # UNH BGM DTM DTM RFF LIN QTY
    assert qty.composite(1) == ["61", "1.5", "EA"]
