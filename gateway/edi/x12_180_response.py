"""The 180 that answers a partner's 180 once its return is decided: authorized (``RA``), partly
authorized (``PA``) or denied (``RD``), with the RMA number and each line's authorized quantity.

It goes back the way the request came, sender and receiver swapped, in the request's version,
quoting the partner's own reference (its ``BGN02``) in ``BGN06`` and each line by the item ids
and unit the partner used. The structure is the one ``x12_180.SPEC`` checks, so the gateway
could read its own answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.edi._origin import EdiOrigin
from gateway.edi._write import write_quantity, write_segments

#: RDR01 for a canonical decision, and for one line by what was authorized of it.
_DECISIONS = {"authorized": "RA", "partially_authorized": "PA", "rejected": "RD"}
ELEMENT, SEGMENT, COMPONENT = "*", "~", ">"


def _line_disposition(line: Mapping[str, Any]) -> str:
    if line["authorized_quantity"] <= 0:
        return "RD"
    return "RA" if line["authorized_quantity"] >= line["requested_quantity"] else "PA"


def build_180_response(
    origin: EdiOrigin,
    authorization: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    control: int,
    now: dt.datetime,
) -> str:
    """The interchange (ISA to IEA) carrying one 180 response to ``origin``'s partner."""
    isa_version = origin.version[:5] if len(origin.version) >= 5 else "00401"
    date8, time4 = now.strftime("%Y%m%d"), now.strftime("%H%M")
    body: list[Sequence[str]] = [
        [
            "BGN",
            "11",
            str(authorization.get("rma_number") or authorization["return_id"])[:50],
            date8,
            time4,
            "",
            origin.reference[:50],
        ],
    ]
    rdr = ["RDR", _DECISIONS[authorization["decision"]]]
    if authorization["decision"] == "rejected":
        rdr += ["", "", str(authorization.get("rejection_reason", "")).replace("_", " ")[:80]]
    body.append(rdr)
    if authorization.get("expires_on"):
        body.append(["DTM", "036", authorization["expires_on"].replace("-", "")])
    if authorization.get("rma_number"):
        body.append(["N9", "RA", str(authorization["rma_number"])[:50]])
    sent = {line.line_number: line for line in origin.lines}
    prices = {line["line_number"]: line for line in request["lines"]}
    for line in authorization["lines"]:
        source = sent.get(line["line_number"])
        if source is not None and source.item_ids:
            qualifier, item = next(iter(source.item_ids.items()))
            unit = source.unit
        else:  # a line the partner did not send this way: our item number
            qualifier, item, unit = "VN", line["sku"], "EA"
        price = prices.get(line["line_number"], {}).get("unit_price", {}).get("amount", "0")
        body.append(["BLI", qualifier, item, write_quantity(line["authorized_quantity"]), unit, "CON", price])
        body.append(["RDR", _line_disposition(line)])
        body.append(["QTY", "38", write_quantity(line["requested_quantity"]), unit])
    isa = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        origin.receiver_qualifier,
        origin.receiver.ljust(15)[:15],
        origin.sender_qualifier,
        origin.sender.ljust(15)[:15],
        now.strftime("%y%m%d"),
        time4,
        "U" if isa_version == "00401" else "^",
        isa_version,
        f"{control:09d}",
        "0",
        "P",
        COMPONENT,
    ]
    group = str(control)
    segments: list[Sequence[str]] = [
        isa,
        ["GS", "AN", origin.group_receiver, origin.group_sender, date8, time4, group, "X", origin.version],
        ["ST", "180", "0001"],
        *body,
        ["SE", str(len(body) + 2), "0001"],
        ["GE", "1", group],
        ["IEA", "1", f"{control:09d}"],
    ]
    return write_segments(segments, element=ELEMENT, segment=SEGMENT, newline="\n")
