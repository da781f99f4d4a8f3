"""The fault suite: the whole product (gateway, one process per connector, the sandboxes) on
the real broker and a Redis of its own, a few hundred returns, one fault class per test.

Every scenario ends the same way or fails: each return at ``label_issued`` (RMA in the ERP,
receiver in the WMS, label bought at the carrier, case in the CRM) or at a visible exception
(an exception status, or a dead letter on its timeline); each posting exactly once; nothing
missing; no dead letter of a return that shows no exception; the queues drained and, once the
connectors are stopped, no message left that one held unacknowledged.

The harness is ``bench.faultlab``, which ``python -m bench.faults`` runs at 10,000 returns.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.faultlab import SCENARIOS, StackOptions, Tally, format_tally, run_scenario

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs redis-server to run one of its own"
    ),
]

AMQP_URL = os.environ.get("RGW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RATE = 30.0
"""Returns submitted per second: a fault injected at a third of the run lands mid-run."""
DRAIN_WITHIN = 60.0


async def run(name: str, returns: int) -> Tally:
    tally = await run_scenario(
        SCENARIOS[name],
        returns=returns,
        rate=RATE,
        options=StackOptions(amqp_url=AMQP_URL),
        drain_within=DRAIN_WITHIN,
    )
    print(format_tally(tally))  # shown with -s, and with the failure
    return tally


def assert_contract_met(tally: Tally) -> None:
    assert tally.problems() == [], format_tally(tally)


async def test_the_lifecycle_killed_mid_run_loses_and_repeats_nothing() -> None:
    tally = await run("lifecycle-kill", 200)
    assert_contract_met(tally)


async def test_redis_stopped_for_ten_seconds_mid_run_loses_and_repeats_nothing() -> None:
    tally = await run("redis-stop", 200)
    assert tally.refusals.get("503"), "the outage was felt: submissions answered 503 and were sent again"
    assert_contract_met(tally)


async def test_thirty_percent_transient_faults_on_erp_and_crm_drain_without_losing_a_posting() -> None:
    tally = await run("transient-30", 150)
    assert tally.faulted["erp"] and tally.faulted["crm"], "faults were served"
    assert_contract_met(tally)


async def test_each_connector_killed_in_turn_loses_and_repeats_nothing() -> None:
    tally = await run("connector-kill", 200)
    assert_contract_met(tally)
