"""RETINS (Instruction for returns) answering a decided return that came by EDIFACT RETANN.

A pure function of what is known about the return: where it came from (the RETANN's ids,
reference and lines, :class:`~gateway.edi._origin.EdiOrigin`), the decision (the canonical
``return-authorization`` v1 payload) and the canonical request. Delivery is not here.

What is written (UN/EDIFACT D.01B): ``UNB`` with the RETANN's ids swapped; ``BGM`` with the
RMA number as document number (the return id when rejected without one), message function 9
and response type 4343 ``AP`` accepted / ``CA`` conditionally accepted (partly) / ``RE``
rejected; ``DTM+137`` the decision time, ``DTM+36`` the RMA's expiry date; ``RFF+ACW`` the
partner's RETANN reference (BGM 1004); per line ``LIN`` with the partner's own first item id,
``PIA`` with the others, ``QTY+61`` the authorized return quantity in the partner's unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.edi._edifact import SEPARATORS, write_segment
from gateway.edi._origin import EdiOrigin
from gateway.edi._write import write_quantity

#: Decision → BGM 4343 response type code.
RESPONSE_TYPES = {"authorized": "AP", "partially_authorized": "CA", "rejected": "RE"}
_ORIGINAL = "9"


def build_retins(
    origin: EdiOrigin,
    authorization: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    control: int,
    now: dt.datetime,
) -> str:
    """The RETINS interchange answering ``authorization`` for the RETANN ``origin`` describes."""
    reference = str(control)
    sent = {line.line_number: line for line in origin.lines}
    requested = {line["line_number"]: line for line in request.get("lines", [])}
    body = [
        write_segment("UNH", "1", ["RETINS", "D", "01B", "UN"]),
        write_segment(
            "BGM",
            "",
            authorization.get("rma_number") or authorization["return_id"],
            _ORIGINAL,
            RESPONSE_TYPES[authorization["decision"]],
        ),
        write_segment("DTM", ["137", now.strftime("%Y%m%d%H%M"), "203"]),
    ]
    if authorization.get("expires_on"):
        body.append(write_segment("DTM", ["36", authorization["expires_on"].replace("-", ""), "102"]))
    body.append(write_segment("RFF", ["ACW", origin.reference]))
    for number, line in enumerate(authorization["lines"], start=1):
        partner = sent.get(line["line_number"])
        ids = list(partner.item_ids.items()) if partner else [("VN", line["sku"])]
        unit = partner.unit if partner else requested.get(line["line_number"], {}).get("unit_of_measure", "")
        first_type, first_id = ids[0]
        body.append(write_segment("LIN", str(number), "", [first_id, first_type]))
        if len(ids) > 1:
            body.append(write_segment("PIA", "5", *([i, t] for t, i in ids[1:5])))
        body.append(write_segment("QTY", ["61", write_quantity(line["authorized_quantity"]), unit]))
    body.append(write_segment("UNT", str(len(body) + 1), "1"))
    header = write_segment(
        "UNB",
        ["UNOC", "3"],
        [origin.receiver, origin.receiver_qualifier],
        [origin.sender, origin.sender_qualifier],
        [now.strftime("%y%m%d"), now.strftime("%H%M")],
        reference,
    )
    return f"UNA{SEPARATORS}" + header + "".join(body) + write_segment("UNZ", "1", reference)
