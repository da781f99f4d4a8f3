"""A Redis server of the run's own, as a child process, so a scenario may stop, kill and
restart it without touching the shared Redis everybody else uses.

With ``appendonly`` (the default) it keeps an append-only file in its folder: stopped with
SIGTERM it writes the file out and exits, and started again on the same port and folder it
comes back with every key. :meth:`RedisServer.wipe` forgets them (a Redis that lost its data).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from gateway.sandbox import free_port

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 20.0


class RedisServer:
    """``redis-server`` on loopback, on a port chosen once and kept across restarts."""

    def __init__(self, folder: Path, *, appendonly: bool = True, port: int | None = None) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it (on its port, with its folder) and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--dir", str(self.folder),
            "--daemonize", "no",
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.starts += 1
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start:\n{self.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file out, then exits (a clean stop)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash; whatever was not yet written to the append-only file is gone."""
        self._end(signal.SIGKILL)

    def wipe(self) -> None:
        """Forget every key: the next start comes up empty (call while stopped)."""
        assert not self.running, "wipe a stopped server"
        shutil.rmtree(self.folder / "appendonlydir", ignore_errors=True)
        for name in ("dump.rdb", "appendonly.aof"):
            (self.folder / name).unlink(missing_ok=True)

    def _end(self, signum: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signum)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log_tail(self, chars: int = 2_000) -> str:
        log = self.folder / "redis.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""
