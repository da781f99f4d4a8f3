"""``table: $name``: a code table handed over at run time (a trading partner's own codes)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.mapping import MappingCatalog, MappingDefinitionError, MappingFailure
from tests.mapping.test_catalog import CONTRACTS, GOOD, _profile

RUNTIME = (
    textwrap.dedent(GOOD).replace(
        "reason: {from: $.reason_code, table: reason}", "reason: {from: $.reason_code, table: $reasons}"
    )
    + "variables: [reasons]\n"
)


def _mapping(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    return MappingCatalog.load(_profile(tmp_path, body), CONTRACTS).get("demo", "return-request.v1.outbound")


def test_the_table_comes_from_the_variables(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, RUNTIME)
    data = {
        "customer": {"account_number": "C1"},
        "reason_code": "defective",
        "lines": [{"sku": "A", "quantity": 1}],
    }
    first = mapping.apply(data, {"message_id": "m1", "reasons": {"defective": "DEF"}})
    second = mapping.apply(data, {"message_id": "m1", "reasons": {"defective": "D-01"}})
    assert (first["reason"], second["reason"]) == ("DEF", "D-01")
    with pytest.raises(MappingFailure, match="no entry for 'defective' in mapping table '\\$reasons'"):
        mapping.apply(data, {"message_id": "m1", "reasons": {}})
    with pytest.raises(MappingFailure):  # no table passed at all: a miss, not a crash
        mapping.apply(data, {"message_id": "m1"})


def test_an_undeclared_runtime_table_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(MappingDefinitionError) as caught:
        MappingCatalog.load(_profile(tmp_path, RUNTIME.replace("variables: [reasons]\n", "")), CONTRACTS)
    assert any(":9: table $reasons: declare 'reasons' under 'variables'" in p for p in caught.value.problems)
