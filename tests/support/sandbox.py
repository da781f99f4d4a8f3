"""A sandbox target system over real HTTP: counts requests and effects, replays a repeated
idempotency key like a real system would, and injects faults queued by the test."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, post

from tests.support.server import free_port


@dataclass
class Fault:
    """One injected reply: a status (with optional Retry-After), or a delay to force a timeout.

    With ``apply_first`` the effect is applied before the delay: the target did the work but
    its reply comes late (or never, if the caller dies meanwhile).
    """

    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    apply_first: bool = False


@dataclass
class SandboxState:
    faults: collections.deque[Fault] = field(default_factory=collections.deque)
    requests: list[tuple[float, str]] = field(default_factory=list)
    """(monotonic time, idempotency key) of every request, faulted ones included."""
    effects: dict[str, int] = field(default_factory=dict)
    """Idempotency key → 1 once applied; like a real system it never applies a key twice,
    a repeat is counted in ``repeats`` instead."""
    bodies: dict[str, bytes] = field(default_factory=dict)
    """Idempotency key → the body that was applied."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    repeats: int = 0
    """Requests for an effect already applied (answered as replays, not applied again)."""
    down: bool = False
    """While set, every request is answered 503: the whole system is out."""

    def times_for(self, key: str) -> list[float]:
        return [t for t, k in self.requests if k == key]


def _app(state: SandboxState) -> Litestar:
    @post("/records", status_code=201)
    async def create(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        key = request.headers.get("idempotency-key", "")
        body = await request.body()
        with state.lock:
            state.requests.append((time.monotonic(), key))
            fault = state.faults.popleft() if state.faults else None
            if fault is None and state.down:
                fault = Fault(503)
            if fault is not None and fault.apply_first and key not in state.effects:
                state.effects[key] = 1
                state.bodies[key] = body
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Response({"error": f"injected {fault.status}"}, status_code=fault.status, headers=headers)
        with state.lock:
            if key in state.effects:  # a repeat: replay, do not apply again
                state.repeats += 1
                return Response({"id": key, "replayed": True}, status_code=200)
            state.effects[key] = 1
            state.bodies[key] = body
        return Response({"id": key}, status_code=201)

    return Litestar([create])


@contextmanager
def running_sandbox() -> Iterator[tuple[str, SandboxState]]:
    """Serve the sandbox on a loopback port in a thread of its own."""
    state = SandboxState()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            _app(state), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("sandbox did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
