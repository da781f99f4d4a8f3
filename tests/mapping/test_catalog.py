"""Mappings: every shipped fixture passes, and a broken mapping is refused with file and line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.mapping import (
    CompiledMapping,
    MappingCatalog,
    MappingDefinitionError,
    MappingFailure,
    fixture_problems,
)
from gateway.settings import PROJECT_ROOT
from tests.support.profiles import catalog

CONTRACTS = PROJECT_ROOT / "contracts"
SHIPPED = [(m, f) for m in catalog() for f in m.fixtures]


@pytest.mark.parametrize(
    ("mapping", "fixture"), SHIPPED, ids=[f"{m.profile}/{m.name}/{f.name}" for m, f in SHIPPED]
)
def test_every_shipped_fixture_passes(mapping: CompiledMapping, fixture: object) -> None:
    assert fixture_problems(mapping, fixture) == []  # type: ignore[arg-type]


def test_every_profile_has_mappings_in_both_directions() -> None:
    profiles = {m.profile for m in catalog()}
    for profile in profiles:
        directions = {m.direction for m in catalog() if m.profile == profile}
        assert directions <= {"outbound", "inbound"} and directions, profile


TARGET = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ref", "customer", "lines"],
    "properties": {
        "ref": {"type": "string"},
        "customer": {"type": "string"},
        "memo": {"type": "string"},
        "reason": {"type": "string"},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sku", "qty"],
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "number"},
                    "unit": {"type": "string"},
                },
            },
        },
    },
}

GOOD = """\
    input: return-request.v1
    output: schemas/target.json
    tables:
      reason: {defective: DEF}
    map:
      ref: $message_id
      customer: $.customer.account_number
      memo: $.notes
      reason: {from: $.reason_code, table: reason}
      lines:
        each: $.lines
        map:
          sku: $item.sku
          qty: $item.quantity
    """


def _profile(tmp_path: Path, body: str, *, fixture: dict[str, object] | None = None) -> Path:
    folder = tmp_path / "mappings" / "demo"
    (folder / "schemas").mkdir(parents=True)
    (folder / "schemas" / "target.json").write_text(json.dumps(TARGET))
    (folder / "return-request.v1.outbound.yaml").write_text(textwrap.dedent(body))
    cases = folder / "fixtures" / "return-request.v1.outbound"
    cases.mkdir(parents=True)
    case = fixture or {
        "variables": {"message_id": "m1"},
        "input": {
            "customer": {"account_number": "C1"},
            "reason_code": "defective",
            "lines": [{"sku": "A", "quantity": 2}],
        },
        "expected": {"ref": "m1", "customer": "C1", "reason": "DEF", "lines": [{"sku": "A", "qty": 2}]},
    }
    (cases / "one.yaml").write_text(json.dumps(case))
    return tmp_path / "mappings"


def _problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(MappingDefinitionError) as caught:
        MappingCatalog.load(_profile(tmp_path, body), CONTRACTS)
    return caught.value.problems


def test_a_good_mapping_compiles_and_maps(tmp_path: Path) -> None:
    mapping = MappingCatalog.load(_profile(tmp_path, GOOD), CONTRACTS).get(
        "demo", "return-request.v1.outbound"
    )
    [fixture] = mapping.fixtures
    assert fixture_problems(mapping, fixture) == []


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ("$.customer.account_number", "$.customer.acount_number"),
            7,
            "the input schema has no 'acount_number'",
        ),
        (("  ref: $message_id\n", ""), 6, "required output field 'ref' is not mapped"),
        (("customer: $.customer.account_number", "customer: $.customer.name"), 7, "'customer' may be absent"),
        (("table: reason}", "table: reasons}"), 9, "unknown table 'reasons'"),
        (("$message_id", "$mesage_id"), 6, "unknown variable"),
        (("  memo: $.notes", "  note: $.notes"), 8, "output field 'note' is not in the target schema"),
        (("sku: $item.sku", "sku: $.sku"), 13, "the input schema has no 'sku'"),
        (
            ("qty: $item.quantity", "qty: $item.quantity\n      colour: red"),
            15,
            "'colour' is not in the target",
        ),
        (("each: $.lines", "each: $.customer"), 11, "not an array"),
    ],
)
def test_a_broken_mapping_is_refused_with_file_and_line(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    body = textwrap.dedent(GOOD).replace(*change)
    assert body != textwrap.dedent(GOOD)
    problems = _problems(tmp_path, body)
    assert any(f"return-request.v1.outbound.yaml:{line}: " in p and message in p for p in problems), problems


def test_a_yaml_syntax_error_is_refused_with_its_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, textwrap.dedent(GOOD).replace("each: $.lines", "each: [$.lines"))
    assert any("return-request.v1.outbound.yaml:" in p and "YAML" in p for p in problems), problems


def test_a_mapping_without_fixtures_is_refused(tmp_path: Path) -> None:
    root = _profile(tmp_path, GOOD)
    (root / "demo" / "fixtures" / "return-request.v1.outbound" / "one.yaml").unlink()
    with pytest.raises(MappingDefinitionError, match="no fixtures"):
        MappingCatalog.load(root, CONTRACTS)


def test_a_code_missing_from_a_table_fails_the_message_not_the_mapping(tmp_path: Path) -> None:
    mapping = MappingCatalog.load(_profile(tmp_path, GOOD), CONTRACTS).get(
        "demo", "return-request.v1.outbound"
    )
    payload = {"customer": {"account_number": "C1"}, "reason_code": "late_delivery", "lines": []}
    with pytest.raises(MappingFailure, match="no entry for 'late_delivery' in mapping table 'reason'"):
        mapping.apply(payload, {"message_id": "m1"})


def test_an_output_that_breaks_the_target_schema_fails_with_its_pointer(tmp_path: Path) -> None:
    mapping = MappingCatalog.load(_profile(tmp_path, GOOD), CONTRACTS).get(
        "demo", "return-request.v1.outbound"
    )
    payload = {"customer": {"account_number": "C1"}, "lines": [{"sku": "A", "quantity": "two"}]}
    with pytest.raises(MappingFailure, match="/lines/0/qty"):
        mapping.apply(payload, {"message_id": "m1"})


def test_a_fixture_difference_is_reported_by_pointer(tmp_path: Path) -> None:
    case = {
        "variables": {"message_id": "m1"},
        "input": {"customer": {"account_number": "C1"}, "lines": [{"sku": "A", "quantity": 2}]},
        "expected": {"ref": "m1", "customer": "C2", "lines": [{"sku": "A", "qty": 2}]},
    }
    root = _profile(tmp_path, GOOD, fixture=case)
    mapping = MappingCatalog.load(root, CONTRACTS).get("demo", "return-request.v1.outbound")
    assert fixture_problems(mapping, mapping.fixtures[0]) == ["/customer: expected 'C2', got 'C1'"]


def test_the_cli_runs_fixtures_and_fails_on_a_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RGW_MAPPINGS_DIR", str(_profile(tmp_path, GOOD)))
    passed = CliRunner().invoke(app, ["mappings", "test"])
    assert passed.exit_code == 0 and "1 passed, 0 failed" in passed.output
    case = tmp_path / "mappings" / "demo" / "fixtures" / "return-request.v1.outbound" / "one.yaml"
    case.write_text(
        case.read_text().replace('"C1"}', '"C9"}', 1).replace('"customer": "C1"', '"customer": "C7"')
    )
    failed = CliRunner().invoke(app, ["mappings", "test"])
    assert failed.exit_code == 1 and "FAIL demo/return-request.v1.outbound [one]" in failed.output


def test_an_output_object_with_no_field_present_is_left_out() -> None:
    """An X12 180 without a PER segment has no contact: none is written, not an empty one."""
    mapping = catalog().get("edi", "return-notice.inbound")
    fixture = yaml.safe_load(
        (
            PROJECT_ROOT / "mappings/edi/fixtures/return-notice.inbound/defective-ssds-one-by-buyer-part.yaml"
        ).read_text()
    )
    notice = fixture["input"]
    notice["parties"]["BY"].pop("contact", None)
    mapped = mapping.apply(notice, fixture.get("variables", {}))
    assert "contact" not in mapped
