"""EDI intake: X12 and EDIFACT interchanges in, 997 and CONTRL acknowledgments out.

``tokenize`` → ``parse_interchange`` (envelope) → ``validate_set`` (the table of each
transaction set, ``x12_180`` and ``x12_997``) → ``read_return_notice`` → the ``edi``
mapping → canonical ``return-request`` v1; ``build_997`` reports every finding with the
standard X12 codes. ``check_interchange`` runs the offline part in one call.
``check_edifact`` does the same for a UN/EDIFACT interchange of RETANN messages (read by
pydifact into the same return notice, so the same mapping applies); ``build_contrl`` answers it.
"""

from gateway.edi._ack import GroupResult, build_997
from gateway.edi._check import SPECS, Checked, Transaction, check_interchange
from gateway.edi._document import read_return_notice
from gateway.edi._envelope import Group, GroupCode, Interchange, SetCode, TransactionSet, parse_interchange
from gateway.edi._partners import ItemSource, Partner, PartnerDirectory, PartnerProfileError
from gateway.edi._responses import EdiResponse, ResponseStore
from gateway.edi._returns import MAPPING, ReturnNoticeMapper, locate
from gateway.edi._structure import ElementError, SegmentError, SetResult, check_elements, validate_set
from gateway.edi._tokens import MAX_BYTES, Delimiters, Segment, tokenize
from gateway.edi._write import write_interchange
from gateway.edi.edifact_contrl import build_contrl
from gateway.edi.edifact_retann import EdifactChecked, check_edifact

__all__ = [
    "MAPPING",
    "MAX_BYTES",
    "SPECS",
    "Checked",
    "Delimiters",
    "EdiResponse",
    "EdifactChecked",
    "ElementError",
    "Group",
    "GroupCode",
    "GroupResult",
    "Interchange",
    "ItemSource",
    "Partner",
    "PartnerDirectory",
    "PartnerProfileError",
    "ResponseStore",
    "ReturnNoticeMapper",
    "Segment",
    "SegmentError",
    "SetCode",
    "SetResult",
    "Transaction",
    "TransactionSet",
    "build_997",
    "build_contrl",
    "check_edifact",
    "check_elements",
    "check_interchange",
    "locate",
    "parse_interchange",
    "read_return_notice",
    "tokenize",
    "validate_set",
    "write_interchange",
]
