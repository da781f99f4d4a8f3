"""Every contract's shipped examples behave as they claim."""

from __future__ import annotations

import pytest
from jsonschema import FormatChecker

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
        "tracking-event",
    } <= names


def _mutations(payload: object) -> list[object]:
    """Small breakages of a valid payload: each field nulled, stringified or dropped."""
    if not isinstance(payload, dict):
        return []
    out: list[object] = []
    for name, value in payload.items():
        out.append({k: v for k, v in payload.items() if k != name})
        out.append({**payload, name: None})
        out.append({**payload, name: str(value)})
        out.append({**payload, name: -1})
        for nested in _mutations(value):
            out.append({**payload, name: nested})
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for nested in _mutations(value[0]):
                out.append({**payload, name: [nested, *value[1:]]})
    return out


@pytest.mark.parametrize("contract", MESSAGE_CONTRACTS, ids=lambda c: c.name)
def test_fast_and_explaining_validators_agree(contract: Contract) -> None:
    """The Rust validator decides; the Python one must refuse exactly the same payloads."""
    candidates = [e.payload for e in contract.valid_examples + contract.invalid_examples]
    candidates += [m for e in contract.valid_examples for m in _mutations(e.payload)]
    assert len(candidates) > 50
    for payload in candidates:
        assert contract.fast_validator.is_valid(payload) == contract.validator.is_valid(payload), payload


def _formats(schema: object) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["format"]} if isinstance(schema.get("format"), str) else set()
        return found.union(*(_formats(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_formats(v) for v in schema))
    return set()


def test_every_format_a_contract_names_is_checked() -> None:
    """A format without its checker library installed passes anything: each one our contracts
    use must have a checker (the dependencies name them one by one)."""
    used = set().union(*(_formats(c.schema) for c in _REGISTRY))
    assert used, "the contracts name no format at all"
    assert used <= set(FormatChecker().checkers), used - set(FormatChecker().checkers)
