"""CONTRL (syntax and service report) answering an EDIFACT interchange.

``UCI`` answers the interchange: action 7 (acknowledged, and every message not explicitly
rejected below) or 4 (rejected with everything in it) with the 0085 syntax error code and
the service segment at fault. Then one ``UCM`` per message, 7 or 4, and for a rejected one a
``UCS`` per segment in error (0096 position, ``UNH`` is 1) with ``UCD`` element errors
(0085 code, S011 element:component position). Messages are reported only when the
interchange itself is acknowledged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from gateway.edi._edifact import SEPARATORS, EdifactInterchange
from gateway.edi._edifact import write_segment as _segment
from gateway.edi._envelope import SetCode
from gateway.edi._structure import SegmentError, SetResult

ACKNOWLEDGED, REJECTED = "7", "4"
#: 0085: an interchange (UNB 0020 from this sender) received before.
DUPLICATE_DETECTED = "26"
#: Message-level findings (kept as X12 AK502 codes by the shared intake) → 0085 and the segment at fault.
MESSAGE_CODES = {
    SetCode.NOT_SUPPORTED: ("14", "UNH"),  # value not supported in this position (S009)
    SetCode.TRAILER_MISSING: ("13", "UNT"),  # missing
    SetCode.CONTROL_NUMBERS_DIFFER: ("28", "UNT"),  # references do not match
    SetCode.SEGMENT_COUNT_WRONG: ("29", "UNT"),  # control count does not match
    SetCode.BAD_CONTROL_NUMBER: ("12", "UNH"),  # invalid value
    SetCode.CONTROL_NUMBER_NOT_UNIQUE: ("26", "UNH"),  # duplicate detected
}
_INVALID_VALUE = "12"
#: Tags the shared mapping step (``gateway.edi._returns``, the intake) names refusals with: the
#: X12 segments that play the part of BGM and LIN. Their element numbers are X12's.
SHARED_STEP_TAGS = frozenset({"BGN", "BLI"})


def _ucs(error: SegmentError) -> list[str]:
    if error.tag in SHARED_STEP_TAGS:
        # A refusal after the check (unknown item, contract, duplicate return) points at the
        # BGM or LIN by position; its element errors are X12's, so none are sent.
        return [_segment("UCS", str(error.position), _INVALID_VALUE)]
    lines = [_segment("UCS", str(error.position), error.code or "")]
    for element in error.elements:
        where = [str(element.position)] + ([str(element.ref)] if element.ref else [])
        lines.append(_segment("UCD", element.code, where))
    return lines


def build_contrl(
    interchange: EdifactInterchange,
    results: Sequence[SetResult],
    *,
    control: int = 1,
    now: dt.datetime | None = None,
) -> str:
    """The CONTRL for ``interchange``, its messages' ``results`` in order."""
    now = now or dt.datetime.now(dt.UTC)
    identifiers = {m.reference: m.identifier[:4] for m in interchange.messages}
    syntax = interchange.syntax[:2] if interchange.error != ("2", "UNB") else ["UNOC", "3"]
    sender = [interchange.sender, interchange.sender_qualifier]
    recipient = [interchange.receiver, interchange.receiver_qualifier]
    if interchange.error is not None:
        body = [_segment("UCI", interchange.control, sender, recipient, REJECTED, *interchange.error)]
    else:
        body = [_segment("UCI", interchange.control, sender, recipient, ACKNOWLEDGED)]
        for result in results:
            identifier = identifiers.get(result.control, [result.code])
            if result.accepted:
                body.append(_segment("UCM", result.control, identifier, ACKNOWLEDGED))
                continue
            code, tag = next((MESSAGE_CODES[c] for c in result.errors if c in MESSAGE_CODES), ("", ""))
            body.append(_segment("UCM", result.control, identifier, REJECTED, code, tag))
            for error in sorted(result.segment_errors, key=lambda e: e.position):
                body += _ucs(error)
    message = [_segment("UNH", "1", ["CONTRL", "D", "3", "UN"]), *body]
    message.append(_segment("UNT", str(len(message) + 1), "1"))
    reference = str(control)
    test = ["", "", "", "", "", "1"] if interchange.test else []  # 0035: a test answers a test
    header = _segment(
        "UNB", syntax, recipient, sender, [now.strftime("%y%m%d"), now.strftime("%H%M")], reference, *test
    )
    return f"UNA{SEPARATORS}" + header + "".join(message) + _segment("UNZ", "1", reference)
