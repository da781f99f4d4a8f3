"""The per-target breaker on its own: what opens it, what does not, the trial, the close.

Its clock is the test's, so a window sliding or an open period passing takes no real time.
"""

from __future__ import annotations

import pytest

from gateway.errors import CircuitOpen, PermanentDeliveryFailure, RetryableDeliveryFailure, TargetUnreachable
from gateway.routing import CircuitSpec
from gateway.runtime import TargetCircuit

SPEC = CircuitSpec(
    failure_rate=0.5, minimum_calls=20, window_seconds=10, consecutive_failures=5, open_seconds=30
)
UNAVAILABLE = RetryableDeliveryFailure("answered 503", status_code=503)
REFUSED = TargetUnreachable("target unreachable: ConnectError()")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def heard() -> list[str]:
    return []


@pytest.fixture
def circuit(clock: Clock, heard: list[str]) -> TargetCircuit:
    return TargetCircuit("erp", SPEC, on_change=heard.append, clock=clock)


def calls(circuit: TargetCircuit, outcomes: list[BaseException | None]) -> None:
    for outcome in outcomes:
        circuit.record(circuit.admit(), outcome)


def test_it_opens_when_half_the_calls_in_the_window_failed_and_there_were_enough(
    circuit: TargetCircuit, heard: list[str]
) -> None:
    calls(circuit, [None] * 10 + [UNAVAILABLE] * 9)  # 9 of 19: below the minimum volume
    assert circuit.state == "closed"
    calls(circuit, [UNAVAILABLE])  # 10 of 20
    assert circuit.state == "opened" and heard == ["opened"]
    assert circuit.reason == "10 of 20 calls in the last 10 s failed"


def test_a_few_failures_among_few_calls_open_nothing(circuit: TargetCircuit) -> None:
    calls(circuit, [UNAVAILABLE] * 15)  # every call failed, but only 15 of them
    assert circuit.state == "closed"


def test_a_steady_share_below_the_rate_never_opens_it(circuit: TargetCircuit, clock: Clock) -> None:
    for _ in range(60):  # a minute of 20 calls a second, 40 % of them throttled or failing
        calls(circuit, ([UNAVAILABLE] * 2 + [None] * 3) * 4)
        clock.now += 1
    assert circuit.state == "closed" and circuit.opened == 0


def test_failures_older_than_the_window_no_longer_count(circuit: TargetCircuit, clock: Clock) -> None:
    calls(circuit, [UNAVAILABLE] * 15)
    clock.now += 11  # out of the 10 s window
    calls(circuit, [UNAVAILABLE] * 15)
    assert circuit.state == "closed"  # 15 in the window, not 30
    clock.now += 5
    calls(circuit, [UNAVAILABLE] * 5)  # 20 in the window now, all failed
    assert circuit.state == "opened"


def test_a_refusal_is_an_answer_the_system_is_up(circuit: TargetCircuit) -> None:
    calls(circuit, [PermanentDeliveryFailure("answered 400", status_code=400)] * 50)
    assert circuit.state == "closed"


def test_calls_in_a_row_without_an_answer_open_it_at_any_volume(
    circuit: TargetCircuit, heard: list[str]
) -> None:
    calls(circuit, [REFUSED] * 4 + [UNAVAILABLE] + [REFUSED] * 4)  # an answered 503 breaks the row
    assert circuit.state == "closed"
    calls(circuit, [REFUSED])
    assert circuit.state == "opened" and circuit.reason == "5 calls in a row got no answer"
    assert heard == ["opened"]


def test_open_it_refuses_calls_then_lets_one_trial_through_which_closes_it(
    circuit: TargetCircuit, clock: Clock, heard: list[str]
) -> None:
    calls(circuit, [REFUSED] * 5)
    clock.now += 12
    with pytest.raises(CircuitOpen) as refused:
        circuit.admit()
    assert refused.value.retry_after == pytest.approx(18)

    clock.now += 18
    trial = circuit.admit()
    assert circuit.state == "half-opened"
    circuit.record(trial, None)
    assert circuit.state == "closed" and heard == ["opened", "half-opened", "closed"]
    calls(circuit, [UNAVAILABLE] * 19)  # the window starts empty again
    assert circuit.state == "closed"


def test_a_failed_trial_opens_it_again_for_another_period(
    circuit: TargetCircuit, clock: Clock, heard: list[str]
) -> None:
    calls(circuit, [REFUSED] * 5)
    clock.now += 30
    circuit.record(circuit.admit(), UNAVAILABLE)
    assert circuit.state == "opened" and circuit.opened == 2
    assert heard == ["opened", "half-opened", "opened"]
    with pytest.raises(CircuitOpen) as refused:
        circuit.admit()
    assert refused.value.retry_after == pytest.approx(30)


def test_a_call_made_before_it_opened_does_not_decide_the_trial(circuit: TargetCircuit, clock: Clock) -> None:
    slow = circuit.admit()  # a call still waiting for its reply while the others fail
    calls(circuit, [REFUSED] * 5)
    clock.now += 30
    circuit.admit()  # the trial's
    circuit.record(slow, REFUSED)  # the slow call's timeout, at last
    assert circuit.state == "half-opened"


def test_neither_its_own_refusal_nor_a_bug_counts(circuit: TargetCircuit) -> None:
    calls(circuit, [CircuitOpen("open", retry_after=1), RuntimeError("a bug")] * 30)
    assert circuit.state == "closed"


async def test_call_guards_an_action_as_one_call(circuit: TargetCircuit, clock: Clock) -> None:
    async def down() -> None:
        raise REFUSED

    async def up() -> str:
        return "answered"

    for _ in range(5):
        with pytest.raises(TargetUnreachable):
            await circuit.call(down)
    with pytest.raises(CircuitOpen):
        await circuit.call(up)
    clock.now += 30
    assert await circuit.call(up) == "answered"
    assert circuit.state == "closed"
