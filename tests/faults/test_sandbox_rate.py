"""Rate faults of the sandbox kit: the fault suite's 30 % transient failures."""

from __future__ import annotations

import collections

from gateway.sandbox import Fault, SandboxState


def test_rate_faults_share_one_draw_so_their_rates_add_up_and_are_never_used_up() -> None:
    state = SandboxState()
    state.faults += [Fault(status=503, rate=0.15), Fault(status=429, rate=0.15)]
    taken = collections.Counter(
        fault.status if (fault := state.take_fault("GET", "/x")) else None for _ in range(20_000)
    )
    assert abs(taken[503] / 20_000 - 0.15) < 0.02
    assert abs(taken[429] / 20_000 - 0.15) < 0.02
    assert len(state.faults) == 2  # still in force


def test_a_counted_fault_still_goes_first_and_is_used_up() -> None:
    state = SandboxState()
    state.faults += [Fault(status=500, times=2), Fault(status=503, rate=0.0)]
    assert [getattr(state.take_fault("GET", "/x"), "status", None) for _ in range(3)] == [500, 500, None]
    assert [f.status for f in state.faults] == [503]
