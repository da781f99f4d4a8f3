"""What every sandbox shares: a record store, request log, credentials, and fault injection.

A sandbox is a small stateful HTTP server speaking one system's API shape. Each profile
writes its routes and its error format; this kit adds, on every sandbox:

* authentication: OAuth2 client credentials (a token endpoint issues bearer tokens) or
  HTTP Basic, answered in the system's own 401 shape when missing or wrong;
* ``POST /_sandbox/faults`` — queue faults: a status (429 with ``Retry-After``, 5xx...), a
  slow reply, a malformed body; optionally only for a method and a path prefix; each used
  ``times`` times, or with a ``rate`` by that share of the requests;
* ``GET /_sandbox/records`` — what it holds, to count postings;
* ``GET /_sandbox/requests`` — every request it saw, faulted ones included;
* ``POST /_sandbox/reset`` — forget everything.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

CONTROL_PREFIX = "/_sandbox"


class Fault(msgspec.Struct, kw_only=True):
    """One injected misbehaviour, used ``times`` times by requests it matches."""

    status: int | None = 503
    """Answer this status (in the system's error shape); ``None`` answers normally."""
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering: a slow reply, or a timeout if above the client's."""
    malformed: bool = False
    """Answer 200 with a body that is not the system's JSON."""
    method: str | None = None
    path: str | None = None
    """Only requests whose path starts with this."""
    times: int = 1
    rate: float | None = None
    """Fault this share of the requests it matches instead (``times`` is then unused). Rate
    faults share one draw per request, so their rates add up: a 503 at 0.15 and a 429 at 0.15
    fault 30 % of the requests, never one twice."""

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or path.startswith(self.path)
        )


class Seen(msgspec.Struct):
    """One request as the sandbox saw it."""

    method: str
    path: str
    at: float
    status: int = 0
    """Set when the kit answered itself (an injected fault, a 401); 0 when a handler did."""
    idempotency: str | None = None


@dataclass
class SandboxState:
    """Everything a sandbox holds, behind one lock (handlers run on the server's loop, tests
    read from their own thread)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    next_id: int = 100

    def new_id(self) -> str:
        with self.lock:
            self.next_id += 1
            return str(self.next_id)

    def put(self, collection: str, key: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.records.setdefault(collection, {})[key] = record

    def get(self, collection: str, key: str) -> dict[str, Any] | None:
        with self.lock:
            return self.records.get(collection, {}).get(key)

    def find(self, collection: str, field_name: str, value: Any) -> dict[str, Any] | None:
        with self.lock:
            for record in self.records.get(collection, {}).values():
                if record.get(field_name) == value:
                    return record
        return None

    def all(self, collection: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records.get(collection, {}).values())

    def all_records(self) -> list[dict[str, Any]]:
        """Every record, whatever its collection."""
        with self.lock:
            return [record for items in self.records.values() for record in items.values()]

    def count(self, collection: str) -> int:
        with self.lock:
            return len(self.records.get(collection, {}))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            draw: float | None = None
            for fault in self.faults:
                if not fault.matches(method, path):
                    continue
                if fault.rate is None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
                if draw is None:
                    draw = random.random()
                if draw < fault.rate:
                    return fault
                draw -= fault.rate
        return None

    def requests_to(self, method: str, path_prefix: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.requests if s.method == method and s.path.startswith(path_prefix)]


@dataclass(frozen=True)
class Credentials:
    """What the sandbox accepts: OAuth2 client credentials, or Basic user and password."""

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"


class Sandbox:
    """Base of a system's sandbox: subclasses set ``profile``, ``token_path`` (OAuth2) or
    ``basic_auth`` and write ``handlers``, ``error`` and ``unauthorized``."""

    profile: ClassVar[str] = ""
    token_path: ClassVar[str | None] = None
    """Path of the OAuth2 token endpoint; ``None`` for Basic authentication."""
    token_lifetime: ClassVar[int] = 3600
    webhook_secret: str | None = None
    """What it signs the webhooks it plays with (a WMS receipt, a carrier scan), if it sends any."""

    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self.state = SandboxState()

    def connector_options(self) -> dict[str, Any]:
        """Options a connector needs to reach this sandbox (a tenant, a company id), so a stack
        can be wired from the sandbox without importing its module."""
        return {}

    # -- what a profile writes -------------------------------------------------------
    def handlers(self) -> list[BaseRouteHandler]:
        raise NotImplementedError

    def error(self, status: int, message: str, code: str = "") -> Response[Any]:
        """A failure in the system's own error format."""
        return Response({"error": {"code": code or str(status), "message": message}}, status_code=status)

    def unauthorized(self) -> Response[Any]:
        return self.error(401, "invalid credentials", "Unauthorized")

    # -- shared machinery ------------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        if not (
            secrets.compare_digest(client_id, self.credentials.client_id)
            and secrets.compare_digest(client_secret, self.credentials.client_secret)
        ):
            return None
        token = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens.add(token)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime}

    def revoke_tokens(self) -> None:
        """Forget every token issued (an expired or rotated credential), to test re-authentication."""
        with self.state.lock:
            self.state.tokens.clear()

    def authorized(self, request: Request[Any, Any, Any]) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if self.token_path is not None:
            with self.state.lock:
                return scheme.lower() == "bearer" and value in self.state.tokens
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.credentials.client_id) and (
            not password or secrets.compare_digest(password, self.credentials.client_secret)
        )

    async def _before(self, request: Request[Any, Any, Any]) -> Response[Any] | None:
        path, method = request.url.path, request.method
        if path.startswith(CONTROL_PREFIX):
            return None
        seen = Seen(method, path, time.monotonic(), idempotency=request.headers.get("idempotency-key"))
        with self.state.lock:
            self.state.requests.append(seen)
        fault = self.state.take_fault(method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.malformed:
                seen.status = 200
                return Response(b'{"truncated": ', status_code=200, media_type="application/json")
            if fault.status is not None:
                seen.status = fault.status
                response = self.error(fault.status, f"injected fault: {fault.status}", "SANDBOX_FAULT")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = fault.retry_after
                return response
        if path == self.token_path or self.authorized(request):
            return None
        seen.status = 401
        return self.unauthorized()

    def app(self) -> Litestar:
        state = self.state

        @post(f"{CONTROL_PREFIX}/faults", status_code=201)
        async def add_faults(data: JSONBody[list[dict[str, Any]] | dict[str, Any]]) -> dict[str, int]:
            faults = [msgspec.convert(f, Fault) for f in (data if isinstance(data, list) else [data])]
            with state.lock:
                state.faults.extend(faults)
                return {"queued": len(state.faults)}

        @get(f"{CONTROL_PREFIX}/records")
        async def records() -> dict[str, Any]:
            with state.lock:
                return {name: list(items.values()) for name, items in state.records.items()}

        @get(f"{CONTROL_PREFIX}/requests")
        async def requests() -> list[dict[str, Any]]:
            with state.lock:
                return [msgspec.to_builtins(s) for s in state.requests]

        @post(f"{CONTROL_PREFIX}/reset", status_code=204)
        async def reset() -> None:
            with state.lock:
                state.records.clear()
                state.requests.clear()
                state.faults.clear()

        return Litestar(
            [add_faults, records, requests, reset, *self.handlers()],
            before_request=self._before,
            openapi_config=None,
            debug=False,
        )


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_for(sandbox: Sandbox, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(sandbox.app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    )


@contextmanager
def running(sandbox: Sandbox, port: int = 0) -> Iterator[str]:
    """Serve ``sandbox`` on loopback in a thread; yields its base URL."""
    port = port or free_port()
    server = server_for(sandbox, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True, name=f"sandbox-{sandbox.profile}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sandbox {sandbox.profile} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
