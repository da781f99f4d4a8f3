"""Contracts bound what they accept, and a refusal is explained within bounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.registry import Contract, ContractRegistry
from gateway.settings import PROJECT_ROOT

_REGISTRY = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")


def _arrays(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "array" or (isinstance(kind, list) and "array" in kind) or "items" in node:
            yield where, node
        for key, value in node.items():
            yield from _arrays(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _arrays(value, f"{where}/{index}")


@pytest.mark.parametrize("contract", list(_REGISTRY), ids=lambda c: f"{c.name}-{c.version}")
def test_every_array_has_a_business_maximum(contract: Contract) -> None:
    unbounded = [where for where, array in _arrays(contract.schema, "#") if "maxItems" not in array]
    assert unbounded == [], f"{contract.name} {contract.version}: arrays without maxItems"


def test_lines_are_at_most_500_per_message() -> None:
    for contract in _REGISTRY:
        lines = contract.schema.get("properties", {}).get("lines")
        if lines is not None:
            assert lines["maxItems"] <= 500, contract.name


def test_a_refusal_lists_the_first_violations_and_counts_them_up_to_the_ceiling() -> None:
    contract = _REGISTRY.require("return-request", "v1")
    payload = {"lines": [{"serial_numbers": [1] * 1000}] * 500}
    assert not contract.conforms(payload)
    refusal = contract.explain(payload, listed=10, ceiling=3000)
    assert len(refusal.violations) == 10 and refusal.total == 3000 and not refusal.exact
    exact = contract.explain({"lines": []}, listed=10, ceiling=3000)
    assert exact.exact and exact.total == len(exact.violations) == 7  # six missing fields, no line
    assert contract.check(contract.valid_examples[0].payload) is None


def test_an_array_past_its_maximum_is_not_explained_item_by_item() -> None:
    contract = _REGISTRY.require("return-request", "v1")
    refusal = contract.explain({"lines": [{}] * 100_000})
    assert refusal.exact and refusal.total == 6 + 1  # six missing fields, and the array too long
    [too_long] = [v for v in refusal.violations if v.pointer == "/lines"]
    assert too_long.detail == "has 100000 items, more than the 500 allowed"


def test_unique_items_is_not_judged_on_an_array_too_long() -> None:
    contract = _REGISTRY.require("return-request", "v1")
    line = dict(contract.valid_examples[0].payload["lines"][0])
    line["photos"] = ["https://photos.example/1.jpg"] * 50_000  # duplicates, had uniqueItems been judged
    refusal = contract.explain({**contract.valid_examples[0].payload, "lines": [line]})
    assert [(v.pointer, v.keyword) for v in refusal.violations] == [("/lines/0/photos", "maxItems")]
