"""Run the gateway as a real uvicorn process, the way it runs in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.sandbox import free_port  # re-exported for the tests that import it from here
from gateway.settings import PROJECT_ROOT

#: How the tests run ``returns-gateway``: this interpreter, from the source checkout.
SOURCE_CLI = (sys.executable, "-m", "gateway.cli")


def cli(
    env: dict[str, str], *args: str, program: Sequence[str] = SOURCE_CLI, cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``returns-gateway`` with ``env`` and capture what it prints."""
    return subprocess.run(
        [*program, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@contextmanager
def running_gateway(
    env: dict[str, str],
    *,
    within: float = 30.0,
    program: Sequence[str] = SOURCE_CLI,
    cwd: Path = PROJECT_ROOT,
) -> Iterator[str]:
    """Start ``returns-gateway serve`` and yield its base URL once it reports ready."""
    port = free_port()
    process = subprocess.Popen(
        [*program, "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **env},
        cwd=cwd,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + within
        while True:
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not become ready (exit code {process.poll()})")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


class ConnectorProcess:
    """``returns-gateway connector run NAME`` as a real process the test can kill and restart."""

    def __init__(
        self, env: dict[str, str], name: str, *, program: Sequence[str] = SOURCE_CLI, cwd: Path = PROJECT_ROOT
    ) -> None:
        self._env = {**os.environ, **env}
        self._name = name
        self._program = program
        self._cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self._program, "connector", "run", self._name, "--log-level", "warning"],
            env=self._env,
            cwd=self._cwd,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acks, no cleanup — a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        """SIGTERM, the graceful stop; returns the exit code."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=40)

    def __enter__(self) -> ConnectorProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
