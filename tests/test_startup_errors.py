"""A gateway or connector that cannot start says why in one line (what, where, which setting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import cli, free_port


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        (
            "RGW_CONTRACTS_DIR",
            "/nonexistent/contracts",
            "contracts folder /nonexistent/contracts does not exist",
        ),
        ("RGW_MAPPINGS_DIR", "/nonexistent/mappings", "mappings folder /nonexistent/mappings does not exist"),
        ("RGW_POLICIES_DIR", "/nonexistent/policies", "no policy files (*.yaml) in /nonexistent/policies"),
        ("RGW_EDI_PARTNERS_FILE", "/nonexistent/edi.yaml", "/nonexistent/edi.yaml: no such file"),
        ("RGW_ROUTES_FILE", "/nonexistent/routes.yaml", "cannot read routing table /nonexistent/routes.yaml"),
    ],
)
def test_the_gateway_refuses_to_start_in_one_line(setting: str, value: str, says: str) -> None:
    result = cli({setting: value}, "serve", "--port", str(free_port()))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot start the gateway: ")
    assert says in line and line.endswith(f"(setting {setting})")


def test_a_connector_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("connectors: {}\nroutes: []\n")
    result = cli({"RGW_ROUTES_FILE": str(routes)}, "connector", "run", "erp")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert (
        line
        == f"error: cannot start connector erp: connector 'erp' is not in {routes} (setting RGW_ROUTES_FILE)"
    )


def test_mappings_check_with_nothing_to_check_fails(tmp_path: Path) -> None:
    result = cli({"RGW_MAPPINGS_DIR": str(tmp_path)}, "mappings", "check")
    assert result.returncode == 1
    assert f"no mappings in {tmp_path}" in result.stderr
    assert "Traceback" not in result.stderr
