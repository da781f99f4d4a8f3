"""``returns-gateway --help`` (and a command group's or command's) starts without the server stack.

Importing Redis, RabbitMQ, litestar, jsonschema and the packages built on them cost ~0.45 s before
the first line of help. The CLI imports them inside the commands that use them; these tests run
the CLI in a fresh interpreter and list what it imported, so they guard start-up without timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import PROJECT_ROOT

#: Loaded by none of the runs below (each was, before the imports moved into the commands).
HEAVY = (
    "aio_pika",
    "aiormq",
    "httpx",
    "jsonschema",
    "referencing",
    "litestar",
    "redis",
    "uvicorn",
    "yaml",
    "rich.progress",
    "gateway.auth._keys",
    "gateway.broker",
    "gateway.deadletters",
    "gateway.edi",
    "gateway.intake",
    "gateway.mapping",
    "gateway.registry",
    "gateway.routing",
    "gateway.sandbox",
    "gateway.storage",
    "gateway.database",
    "psycopg",
    "alembic",
    "sqlalchemy",
)

#: Runs the CLI as ``python -m gateway.cli`` does, then writes every module it imported to a file.
PROBE = """
import atexit, runpy, sys
out, sys.argv = sys.argv[1], ["returns-gateway", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("gateway.cli", run_name="__main__", alter_sys=True)
"""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert "Usage:" in result.stdout, result.stderr
    return set(out.read_text().split())


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        (),
        ("keys", "--help"),
        ("keys", "create", "--help"),
        ("mappings", "--help"),
        ("connector", "new", "--help"),
        ("dlq", "replay", "--help"),
        ("edi", "submit", "--help"),
        ("sandbox", "run", "--help"),
        ("db", "upgrade", "--help"),
    ],
    ids=lambda args: " ".join(args) or "no arguments",
)
def test_help_loads_no_server_stack(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = imported_by(tmp_path, *args)
    assert "gateway.cli.app" in modules
    assert heavy(modules) == []
