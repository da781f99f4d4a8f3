"""Fuzzing the EDIFACT path (pydifact, envelope, RETANN check, mapping, CONTRL writer): whatever
comes in, either a CONTRL (itself a readable interchange) or InterchangeUnusable comes out."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.edi import Partner, ReturnNoticeMapper
from gateway.edi._edifact import parse_edifact
from gateway.edi.edifact_retann import check_edifact
from gateway.errors import InterchangeUnusable
from tests.edi.edifact import edifact, retann, write_segment
from tests.edi.test_fuzz import mutate

VALID = edifact([retann("RQ-1"), retann("RQ-2")], control="IC905", newline="\n")
TAGS = [
    "UNH",
    "UNT",
    "UNZ",
    "UNG",
    "UNE",
    "BGM",
    "DTM",
    "FTX",
    "RFF",
    "NAD",
    "CTA",
    "COM",
    "LIN",
    "PIA",
    "QTY",
    "PRI",
    "IMD",
    "GIN",
    "CUX",
    "ZZZ",
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _survives(body: bytes, nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    try:
        checked = check_edifact(body, reasons=set(nordwind.reasons), units=set(nordwind.units))
    except InterchangeUnusable:
        return
    for transaction in checked.transactions:
        mapper.apply(transaction, "nordwind", nordwind)
    answer = parse_edifact(checked.ack().encode())  # the CONTRL is a well-formed interchange
    assert answer.error is None, answer.error
    assert [m.type for m in answer.messages] == ["CONTRL"] and not answer.messages[0].errors


@FUZZ
@given(body=st.binary(max_size=600))
def test_any_bytes(body: bytes, nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    _survives(body, nordwind, mapper)


@FUZZ
@given(body=st.text(alphabet=st.sampled_from("UNABZ+:'?.* \n0123456789RETANLQY"), max_size=300))
def test_edifact_like_text(body: str, nordwind: Partner, mapper: ReturnNoticeMapper) -> None:
    _survives(("UNB+" + body).encode(), nordwind, mapper)
    _survives(("UNA:+.? '" + body).encode(), nordwind, mapper)


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


_COMPONENT = st.text(alphabet=st.sampled_from("0123456789AZaz .-,?:+'é\x00"), max_size=10)
_ELEMENT = st.one_of(_COMPONENT, st.lists(_COMPONENT, max_size=5))


@FUZZ
@given(segments=st.lists(st.tuples(st.sampled_from(TAGS), st.lists(_ELEMENT, max_size=10)), max_size=40))
def test_random_segments_in_a_valid_envelope(
    segments: list[tuple[str, list]],
    nordwind: Partner,
    mapper: ReturnNoticeMapper,  # type: ignore[type-arg]
) -> None:
    body = "".join(write_segment(tag, elements) for tag, elements in segments)
    text = (
        "UNB+UNOC:3+NORDWIND:ZZ+RGWDIST:ZZ+240311:1200+IC1'UNH+1+RETANN:D:01B:UN'"
        + body
        + f"UNT+{len(segments) + 2}+1'UNZ+1+IC1'"
    )
    _survives(text.encode(), nordwind, mapper)


def _seconds(body: bytes) -> float:
    """CPU seconds of this thread for the best of three checks (a busy machine takes wall time
    from it, never its own CPU time)."""
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        check_edifact(body, max_bytes=1 << 26)
        best = min(best, time.thread_time() - start)
    return best


def test_time_grows_linearly_with_the_number_of_messages() -> None:
    small, large = (edifact([retann("R")] * n) for n in (20, 160))
    ratio = _seconds(large) / _seconds(small)
    assert ratio < 8 * 3, ratio  # 8x the input: linear with room for cache effects; quadratic ~64x
