"""The offline half of EDI intake: tokenize, check the envelope and every set, read each
accepted 180 into a return notice. No I/O: the CLI, the API and the benchmark share it."""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway.edi import x12_180, x12_997
from gateway.edi._ack import DUPLICATE_CONTROL_NUMBER, GroupResult, build_997, build_ta1
from gateway.edi._document import read_return_notice
from gateway.edi._envelope import GroupCode, Interchange, SetCode, parse_interchange
from gateway.edi._spec import TransactionSpec
from gateway.edi._structure import CodeLists, ElementError, SetResult, validate_set
from gateway.edi._tokens import MAX_BYTES, is_digits, tokenize

#: Transaction sets this gateway reads, by code, and the group code each travels in.
SPECS: dict[str, TransactionSpec] = {spec.code: spec for spec in (x12_180.SPEC, x12_997.SPEC)}
GROUPS = {spec.functional_id: spec.code for spec in SPECS.values()}
_GROUP_VERSION = re.compile(r"00[4-8]0[0-9]0.*")


@dataclass(slots=True)
class Transaction:
    """An accepted 180: its result (still open to a later refusal), notice and canonical request."""

    group: GroupResult
    result: SetResult
    notice: dict[str, Any]
    request: dict[str, Any] | None = None
    return_id: str | None = None


@dataclass(slots=True)
class Checked:
    """An interchange checked, ready to be acknowledged."""

    interchange: Interchange
    groups: list[GroupResult]
    transactions: list[Transaction] = field(default_factory=list)
    standard: str = "x12"

    def ack(self, *, control: int = 1, group_control: int = 1, now: dt.datetime | None = None) -> str:
        """The 997 for everything known now (refusals added after the check included)."""
        return build_997(self.interchange, self.groups, control=control, group_control=group_control, now=now)

    def duplicate_ack(self, *, control: int = 1, now: dt.datetime | None = None) -> str:
        """A TA1 rejecting the interchange: its control number was used before (TA105 025)."""
        return build_ta1(self.interchange, note=DUPLICATE_CONTROL_NUMBER, control=control, now=now)


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while a check runs.

    A check builds tens of thousands of small acyclic objects (segments, results, notices);
    a collection triggered half-way would only walk them and everything the process holds,
    for nothing. The check never awaits, so no other request runs meanwhile.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_interchange(data: bytes, *, codes: CodeLists | None = None, max_bytes: int = MAX_BYTES) -> Checked:
    """Check ``data``; raises :class:`~gateway.errors.InterchangeUnusable` only when no 997 is possible."""
    with without_cyclic_gc():
        return _check(data, codes, max_bytes)


def _check(data: bytes, codes: CodeLists | None, max_bytes: int) -> Checked:
    delimiters, segments = tokenize(data, max_bytes=max_bytes)
    interchange = parse_interchange(delimiters, segments)
    checked = Checked(interchange, [])
    memo: dict[tuple[str, tuple[str, ...]], list[ElementError]] = {}
    for group in interchange.groups:
        result = GroupResult(
            functional_id=group.functional_id,
            control=group.control,
            version=group.version,
            sender=group.sender,
            receiver=group.receiver,
            declared_sets=group.declared_sets,
            received_sets=len(group.sets),
            errors=list(group.errors),
        )
        checked.groups.append(result)
        expected = GROUPS.get(group.functional_id)
        if expected is None:
            result.errors.insert(0, GroupCode.NOT_SUPPORTED)
            continue
        if not (is_digits(group.control) and len(group.control) <= 9):
            result.errors.append(GroupCode.CONTROL_NUMBER_SYNTAX)
        if not _GROUP_VERSION.fullmatch(group.version):
            result.errors.insert(0, GroupCode.VERSION_NOT_SUPPORTED)
        seen: set[str] = set()
        for tset in group.sets:
            spec = SPECS[expected]
            if tset.code != expected:
                outcome = SetResult(tset.code, tset.control, [*tset.errors, SetCode.NOT_SUPPORTED])
            else:
                outcome = validate_set(spec, tset, codes, memo=memo)
            if tset.control in seen:
                outcome.errors.append(SetCode.CONTROL_NUMBER_NOT_UNIQUE)
            seen.add(tset.control)
            result.sets.append(outcome)
            if outcome.accepted and not result.errors and tset.code == x12_180.SPEC.code:
                checked.transactions.append(
                    Transaction(result, outcome, read_return_notice(interchange, group, tset))
                )
    return checked
