"""Every contract's shipped examples behave as they claim."""

from __future__ import annotations

import pytest

from gateway.registry import Contract, ContractRegistry
from gateway.settings import PROJECT_ROOT

_REGISTRY = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
MESSAGE_CONTRACTS = [c for c in _REGISTRY if c.name != "definitions"]
VALID = [(c, e) for c in MESSAGE_CONTRACTS for e in c.valid_examples]
INVALID = [(c, e) for c in MESSAGE_CONTRACTS for e in c.invalid_examples]


def test_every_message_contract_ships_valid_and_invalid_examples() -> None:
    for contract in MESSAGE_CONTRACTS:
        assert len(contract.valid_examples) >= 2, contract.name
        assert len(contract.invalid_examples) >= 1, contract.name


@pytest.mark.parametrize(("contract", "example"), VALID, ids=lambda v: getattr(v, "name", ""))
def test_valid_example_conforms(contract: Contract, example) -> None:  # type: ignore[no-untyped-def]
    assert contract.violations(example.payload) == []


@pytest.mark.parametrize(("contract", "example"), INVALID, ids=lambda v: getattr(v, "name", ""))
def test_invalid_example_reports_exactly_its_pointers(contract: Contract, example) -> None:  # type: ignore[no-untyped-def]
    # A value can break two rules at once (pattern and format): compare the places, not the count.
    pointers = {v.pointer for v in contract.violations(example.payload)}
    assert pointers == set(example.expected_pointers), example.description


def test_contract_registry_has_the_milestone_contracts(registry: ContractRegistry) -> None:
    names = {c.name for c in registry}
    assert {
        "definitions",
        "return-request",
        "return-authorization",
        "receipt",
        "inspection-result",
        "disposition",
        "credit-memo",
        "supplier-claim",
        "return-status-changed",
    } <= names
