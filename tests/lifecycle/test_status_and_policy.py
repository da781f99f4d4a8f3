"""The status model covers the contracts' vocabulary exactly and refuses every other move;
policy files are checked at start-up with every problem named."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

from gateway.lifecycle import (
    ROAD,
    TRANSITIONS,
    IllegalTransition,
    PolicyBook,
    PolicyError,
    ReturnStatus,
    check_move,
)
from gateway.lifecycle._status import allowed_from, contract_statuses, is_behind
from gateway.settings import PROJECT_ROOT
from tests.support.lifecycle import UNAPPROVED_ROAD

CONTRACTS = PROJECT_ROOT / "contracts"


def test_the_model_covers_exactly_the_contract_vocabulary() -> None:
    assert [s.value for s in ReturnStatus] == contract_statuses(CONTRACTS)
    assert set(TRANSITIONS) == set(contract_statuses(CONTRACTS))
    for targets in TRANSITIONS.values():
        assert targets <= set(TRANSITIONS)


def test_the_main_road_is_walkable_and_nothing_leaves_closed() -> None:
    walked = UNAPPROVED_ROAD
    for here, there in itertools.pairwise(walked):
        check_move(here, there)
    assert TRANSITIONS["closed"] == frozenset()
    assert set(walked) <= set(ROAD)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("requested", "authorized"),
        ("rejected", "received"),
        ("closed", "requested"),
        ("received", "in_transit"),
        ("pending_approval", "credited"),
        ("authorized", "credited"),
    ],
)
def test_illegal_moves_are_refused_with_what_is_allowed(current: str, wanted: str) -> None:
    with pytest.raises(IllegalTransition, match=f"'{current}' cannot move to '{wanted}'.*allowed from"):
        check_move(current, wanted)


def test_a_parked_return_goes_back_or_on_from_where_it_left() -> None:
    assert allowed_from("posting_failed", "dispositioned") == {"dispositioned", *TRANSITIONS["dispositioned"]}
    check_move("posting_failed", "credited", "dispositioned")
    with pytest.raises(IllegalTransition):
        check_move("posting_failed", "received", "dispositioned")
    with pytest.raises(IllegalTransition):
        check_move("posting_failed", "authorized")  # without knowing where it left, nowhere


def test_late_milestones_are_recognised() -> None:
    assert is_behind("received", "in_transit")
    assert is_behind("received", "received")
    assert not is_behind("authorized", "received")
    assert not is_behind("rejected", "received")


def test_the_shipped_policies_load() -> None:
    book = PolicyBook.load(PROJECT_ROOT / "policies", CONTRACTS)
    policy = book.for_partner("anyone")
    assert policy.default and policy.approvers
    assert policy.window_for("warranty_claim").id == "window-warranty"  # type: ignore[union-attr]
    assert policy.window_for("no_longer_needed").id == "window-standard"  # type: ignore[union-attr]
    assert policy.inspection_for("damaged_in_transit").priority == "high"
    assert policy.inspection_for("no_longer_needed").id == "inspect-standard"


def test_a_policy_without_inspection_rules_inspects_within_two_days(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", 'id: a\nversion: "1"\ndefault: true\napprovers: [ops]\n' + GOOD_DISPOSITIONS)
    rule = PolicyBook.load(tmp_path, CONTRACTS).for_partner("x").inspection_for("defective")
    assert (rule.id, rule.due_within_hours, rule.checks) == ("inspect-on-receipt", 48, [])


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


GOOD_DISPOSITIONS = """
dispositions:
  - {id: all, conditions: [new_unopened, opened_like_new, used, damaged_packaging, cosmetic_damage,
     damaged, defective, no_fault_found, missing_parts, wrong_item], disposition: scrap}
"""


def test_a_policy_with_mistakes_is_refused_with_every_problem(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a.yaml",
        """
id: a
version: "1"
default: true
approvers: [operations]
return_windows:
  - {id: w, days: 30}
  - {id: w2, days: 10}
  - {id: w3, reasons: [lost_my_mind], days: 5}
approvals:
  - {id: nothing}
  - {id: tiered, customer_tiers: [gold]}
evidence:
  - {id: w, reasons: [defective], require: [serial_numbers]}
dispositions:
  - {id: keep, conditions: [new_unopened], disposition: restock}
  - {id: burn, conditions: [new_unopened, melted], disposition: incinerate}
  - {id: rtv, conditions: [defective], disposition: return_to_vendor}
inspections:
  - {id: i1, due_within_hours: 24}
  - {id: i2, due_within_hours: 48}
  - {id: i3, reasons: [defective, broken_heart], due_within_hours: 8, checks: [x_ray, photos]}
""",
    )
    with pytest.raises(PolicyError) as refused:
        PolicyBook.load(tmp_path, CONTRACTS)
    message = str(refused.value)
    for expected in (
        "rule id 'w' is used twice",
        "only one window may cover every other reason",
        "unknown reason code 'lost_my_mind'",
        "approvals.nothing: names no condition",
        "unknown customer tier 'gold'",
        "restock needs a location",
        "condition 'new_unopened' is already decided by keep",
        "unknown condition code 'melted'",
        "unknown disposition code 'incinerate'",
        "dispositions.rtv: return_to_vendor needs a vendor",
        "dispositions: no rule for condition(s)",
        "inspections: only one rule may cover every other reason",
        "inspections.i3: unknown reason code 'broken_heart'",
        "inspections.i3: unknown inspection check 'x_ray'",
    ):
        assert expected in message, expected


def test_the_book_needs_one_default_and_one_owner_per_partner(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _write(
            tmp_path,
            f"{name}.yaml",
            f"id: {name}\nversion: '1'\napprovers: [ops]\npartners: [acme]\n" + GOOD_DISPOSITIONS,
        )
    with pytest.raises(PolicyError) as refused:
        PolicyBook.load(tmp_path, CONTRACTS)
    assert "exactly one policy must be the default (found 0" in str(refused.value)
    assert "partner 'acme' is governed by both a and b" in str(refused.value)


def test_a_partner_policy_beats_the_default(tmp_path: Path) -> None:
    _write(tmp_path, "d.yaml", "id: d\nversion: '1'\ndefault: true\napprovers: [ops]\n" + GOOD_DISPOSITIONS)
    _write(
        tmp_path,
        "acme.yaml",
        "id: acme\nversion: '7'\napprovers: [ops]\npartners: [acme]\n" + GOOD_DISPOSITIONS,
    )
    book = PolicyBook.load(tmp_path, CONTRACTS)
    assert book.for_partner("acme").id == "acme"
    assert book.for_partner("other").id == "d"
    assert book.for_partner("acme").rule("x") == {"id": "x", "version": "7"}


def test_no_policy_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy files"):
        PolicyBook.load(tmp_path, CONTRACTS)


def test_the_database_checks_the_same_statuses() -> None:
    path = PROJECT_ROOT / "gateway/database/migrations/versions/0002_returns_and_lifecycle.py"
    spec = importlib.util.spec_from_file_location("migration_0002", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert set(migration.STATUSES) == {s.value for s in ReturnStatus}
