"""The gateway and each connector as an OS process of its own, the way they run in production,
so a scenario can ``kill -9`` one and start it again. Their output goes to a log file per
process (kept across restarts), read back when something goes wrong."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.settings import PROJECT_ROOT

STOP_TIMEOUT_SECONDS = 40.0
"""A graceful stop waits for in-flight work (the runtime's own graceful timeout is 30 s)."""


class ChildProcess:
    """``python -m gateway.cli <args>`` with ``env``; ``start`` again after a kill."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self._args = list(args)
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        assert not self.alive, f"{self.name} is running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *self._args],
                env=self._env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no cleanup — a crash."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)
            self.kills += 1

    async def stop(self) -> int | None:
        """SIGTERM, the graceful stop; SIGKILL if it does not end in time. Its exit code."""
        if self.process is None:
            return None
        if self.alive:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def log_tail(self, chars: int = 3_000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def gateway_process(port: int, env: Mapping[str, str], log_dir: Path) -> ChildProcess:
    """``returns-gateway serve`` on loopback ``port``."""
    return ChildProcess("gateway", ["serve", "--port", str(port), "--log-level", "warning"], env, log_dir)


def connector_process(name: str, env: Mapping[str, str], log_dir: Path) -> ChildProcess:
    """``returns-gateway connector run NAME``."""
    return ChildProcess(
        f"connector-{name}", ["connector", "run", name, "--log-level", "warning"], env, log_dir
    )
