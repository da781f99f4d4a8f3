"""Fuzzing the tokenizer, the checks, the mapping and the 997 writer: whatever comes in,
either a 997 (itself a valid 997) or InterchangeUnusable comes out, never another
exception; and the time taken grows linearly with the input."""

from __future__ import annotations

import contextlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.edi import Partner, ReturnNoticeMapper, check_interchange
from gateway.edi._write import write_segments
from gateway.errors import InterchangeUnusable
from tests.edi.x12 import interchange, return_set

VALID = interchange([[return_set("RQ-1"), return_set("RQ-2")]], control=905)
TAGS = [
    "ST",
    "SE",
    "GS",
    "GE",
    "IEA",
    "BGN",
    "RDR",
    "PRF",
    "DTM",
    "N9",
    "PER",
    "N1",
    "N2",
    "N3",
    "N4",
    "BLI",
    "PID",
    "QTY",
    "REF",
    "CTT",
    "ZZZ",
    "",
    "isa",
]
ECHOES = {"AK1", "AK2", "AK3", "AK4"}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _survives(body: bytes, nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    try:
        checked = check_interchange(body, codes=nordwind.code_lists())
    except InterchangeUnusable:
        return
    for transaction in checked.transactions:
        mapper.apply(transaction, "nordwind", nordwind)
    answer = check_interchange(checked.ack().encode())  # the 997 is a well-formed interchange
    acknowledged = [g for g in checked.groups if g.functional_id != "FA"]
    assert [g.functional_id for g in answer.groups] == ["FA"] * len(acknowledged)
    # Its structure is a 997's; only values echoed from the input may be malformed (an ST01
    # of two characters comes back in AK201 as it was sent).
    for group in answer.groups:
        for result in group.sets:
            assert {e.tag for e in result.segment_errors} <= ECHOES, result


@FUZZ
@given(body=st.binary(max_size=600))
def test_any_bytes(body: bytes, nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    _survives(body, nordwind, mapper)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.sampled_from("dir"), st.binary(max_size=3)), max_size=8
    )
)
def test_mutated_interchange(
    edits: list[tuple[int, str, bytes]], nordwind: Partner, mapper: ReturnNoticeMapper
) -> None:
    _survives(mutate(VALID, edits), nordwind, mapper)


def mutate(valid: bytes, edits: list[tuple[int, str, bytes]]) -> bytes:
    """``valid`` with each edit applied: (position, d delete / i insert / r replace, bytes)."""
    body = bytearray(valid)
    for position, operation, data in edits:
        position = min(position, len(body))
        if operation == "d":
            del body[position : position + len(data) + 1]
        elif operation == "i":
            body[position:position] = data
        else:
            body[position : position + len(data)] = data
    return bytes(body)


_ELEMENT = st.text(alphabet=st.sampled_from("0123456789AZaz .-:>^" + "\x00é"), max_size=12)


@FUZZ
@given(segments=st.lists(st.tuples(st.sampled_from(TAGS), st.lists(_ELEMENT, max_size=14)), max_size=40))
def test_random_segments_in_a_valid_envelope(
    segments: list[tuple[str, list[str]]], nordwind: Partner, mapper: ReturnNoticeMapper
) -> None:
    head, _, _ = VALID.decode().partition("~GS")
    body = [[tag, *elements] for tag, elements in segments]
    text = (
        head
        + "~"
        + write_segments(
            [
                ["GS", "AN", "NORDWIND", "RGWDIST", "20240311", "0942", "1", "X", "004010"],
                ["ST", "180", "0001"],
                *body,
                ["SE", str(len(body) + 2), "0001"],
                ["GE", "1", "1"],
                ["IEA", "1", "000000905"],
            ]
        )
    )
    _survives(text.encode(), nordwind, mapper)


def _seconds(body: bytes, nordwind: Partner) -> float:
    """CPU seconds of this thread for the best of three checks: other processes on a busy machine
    take wall time from it, never its own CPU time, so the ratios below stay the code's."""
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        with contextlib.suppress(InterchangeUnusable):
            check_interchange(body, codes=nordwind.code_lists(), max_bytes=1 << 26)
        best = min(best, time.thread_time() - start)
    return best


def test_time_grows_linearly_with_the_number_of_sets(nordwind: Partner) -> None:
    small, large = (interchange([[return_set()] * n]) for n in (100, 800))
    ratio = _seconds(large, nordwind) / _seconds(small, nordwind)
    assert ratio < 8 * 3, ratio  # 8x the input: linear with room for cache effects; quadratic ~64x


def test_time_grows_linearly_with_pathological_shapes(nordwind: Partner) -> None:
    """One segment with very many elements, very many empty segments, one long element."""
    head = VALID.split(b"~GS")[0] + b"~"
    for make in (
        lambda n: head + b"GS*AN*NORDWIND*RGWDIST*20240311*0942*1*X*004010~ST*180*0001~BGN" + b"*" * n + b"~",
        lambda n: head + b"~" * n + b"\n" * n,
        lambda n: (
            head + b"GS*AN*NORDWIND*RGWDIST*20240311*0942*1*X*004010~ST*180*0001~BGN*00*" + b"A" * n + b"~"
        ),
        lambda n: (
            head + b"GS*AN*NORDWIND*RGWDIST*20240311*0942*1*X*004010~ST*180*0001~" + b"N9*SE*1~" * (n // 8)
        ),
    ):
        ratio = _seconds(make(800_000), nordwind) / max(_seconds(make(100_000), nordwind), 1e-4)
        assert ratio < 8 * 3, ratio  # linear with room for cache effects; quadratic is ~64x
