"""The built wheel, installed outside the source tree, runs the gateway and a connector.

What an operator gets from ``pip install``: contracts, mappings, policies, EDI partner
profiles and the routing table ride along as package data; nothing is read from a checkout.
The fresh virtual environment borrows the test run's installed dependencies (a path entry,
not its ``.pth`` files, so the source checkout's editable install stays out of it).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from gateway.settings import PROJECT_ROOT, Settings
from tests.conftest import AMQP_URL, REDIS_URL
from tests.support.broker import delete_routing_topology
from tests.support.payloads import headers, return_request
from tests.support.sandbox import running_sandbox
from tests.support.server import ConnectorProcess, cli, running_gateway
from tests.support.waiting import wait_until

ROUTES = """
connectors:
  records:
    use: gateway.builtin.webhook:WebhookConnector
    target: {{base_url: "{base_url}", timeout_seconds: 5}}
    options: {{path: /records}}
routes:
  - {{id: requests, message: return-request.v1, to: [records]}}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``returns-gateway`` program of a fresh venv holding only the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root), "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = root.glob("returns_gateway-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installing = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installing.returncode == 0, installing.stderr
    [site] = (venv / "lib").glob("python3.*/site-packages")
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "returns-gateway"


def test_the_installed_gateway_reads_nothing_from_the_checkout(installed: Path, tmp_path: Path) -> None:
    python = installed.parent / "python"
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import gateway, gateway.settings as s; print(gateway.__file__, s.Settings().contracts_dir)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(not line.startswith(str(PROJECT_ROOT)) for line in where), where
    assert all("site-packages" in line for line in where), where

    checked = cli({}, "mappings", "check", program=[str(installed)], cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert int(checked.stdout.split()[0]) > 0  # "N mappings compiled, no problems"


async def test_the_installed_gateway_and_a_connector_deliver_a_return(
    installed: Path, tmp_path: Path, settings: Settings, redis: aioredis.Redis, amqp: AbstractRobustConnection
) -> None:
    env = {"RGW_NAMESPACE": settings.namespace, "RGW_AMQP_URL": AMQP_URL, "RGW_REDIS_URL": REDIS_URL}
    program = [str(installed)]
    with running_sandbox() as (base_url, sandbox):
        table = ROUTES.format(base_url=base_url)
        (tmp_path / "routes.yaml").write_text(table)
        env["RGW_ROUTES_FILE"] = str(tmp_path / "routes.yaml")
        created = cli(
            env,
            "keys",
            "create",
            "--partner",
            "acme",
            "--scope",
            "returns:write",
            program=program,
            cwd=tmp_path,
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        try:
            with running_gateway(env, program=program, cwd=tmp_path) as gateway:
                connector = ConnectorProcess(env, "records", program=program, cwd=tmp_path)
                connector.start()
                try:
                    request = return_request()
                    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
                        answer = await client.post("/v1/returns", json=request, headers=headers(key))
                    assert answer.status_code == 202, answer.text
                    await wait_until(lambda: len(sandbox.effects) == 1, within=30, what="the delivery")
                    [body] = sandbox.bodies.values()
                    assert request["external_id"] in body.decode()
                finally:
                    assert connector.terminate() == 0
        finally:
            await delete_routing_topology(amqp, settings, table)
