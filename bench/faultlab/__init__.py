"""Fault scenarios on the whole product: one harness for the fault suite (``tests/faults``)
and its benchmark (``python -m bench.faults``).

The stack runs as it does in production: the gateway and each connector are OS processes of
their own (killable), Redis is a server of the run's own (stoppable, without touching the
shared one), the sandboxes play ERP, WMS, carrier and CRM, and the run keeps to a namespace of
its own on the shared RabbitMQ, deleted afterwards.
"""

from bench.faultlab._report import format_tally
from bench.faultlab._scenarios import SCENARIOS, Run, Scenario, run_scenario, transient_faults
from bench.faultlab._stack import FaultStack, StackOptions, running_fault_stack
from bench.faultlab._tally import EXPECTED_STATUS, SYSTEMS, Tally

__all__ = [
    "EXPECTED_STATUS",
    "SCENARIOS",
    "SYSTEMS",
    "FaultStack",
    "Run",
    "Scenario",
    "StackOptions",
    "Tally",
    "format_tally",
    "run_scenario",
    "running_fault_stack",
    "transient_faults",
]
