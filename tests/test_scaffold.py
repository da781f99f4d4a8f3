"""``returns-gateway connector new`` writes a connector that passes its own test as generated."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.settings import PROJECT_ROOT


@pytest.fixture
def name() -> Iterator[str]:
    """A connector name nobody uses; everything it wrote is removed afterwards."""
    name = f"scaffold_{uuid.uuid4().hex[:8]}"
    yield name
    for path in (
        PROJECT_ROOT / "connectors" / "erp" / f"{name}.py",
        PROJECT_ROOT / "connectors" / "erp" / f"{name}_sandbox.py",
        PROJECT_ROOT / "tests" / "connectors" / "profiles" / f"test_{name}.py",
    ):
        path.unlink(missing_ok=True)
    shutil.rmtree(PROJECT_ROOT / "mappings" / name, ignore_errors=True)


def test_a_new_connector_passes_its_own_test_and_its_mapping_fixtures(name: str) -> None:
    result = CliRunner().invoke(app, ["connector", "new", name, "--role", "erp"])
    assert result.exit_code == 0, result.output
    assert f"wrote mappings/{name}/return-request.v1.outbound.yaml" in result.output

    generated_test = PROJECT_ROOT / "tests" / "connectors" / "profiles" / f"test_{name}.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(generated_test)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout

    fixtures = CliRunner().invoke(app, ["mappings", "test", name])
    assert fixtures.exit_code == 0 and "1 passed, 0 failed" in fixtures.output, fixtures.output
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            f"connectors/erp/{name}.py",
            f"connectors/erp/{name}_sandbox.py",
            str(generated_test),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout


def test_an_existing_name_is_refused(name: str) -> None:
    assert CliRunner().invoke(app, ["connector", "new", name, "--role", "erp"]).exit_code == 0
    again = CliRunner().invoke(app, ["connector", "new", name, "--role", "erp"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_a_bad_name_is_refused() -> None:
    result = CliRunner().invoke(app, ["connector", "new", "Bad-Name", "--role", "erp"])
    assert result.exit_code == 1 and "lower case" in result.output
