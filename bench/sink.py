"""A fast sandbox target for the delivery benchmark: counts effects, can fail on purpose.

A bare ASGI app (no framework) so the target costs as little CPU as possible and the
benchmark measures the connector, not the target. ``POST /records`` applies the message
named by its ``Idempotency-Key`` once (a repeat is counted, not applied again);
``GET /stats`` reports the counts. With ``BENCH_SINK_FAULT_RATE`` (0 to 1) that share of
messages is answered ``503`` on their first attempt, chosen by a hash of the key so a run
is repeatable.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


class Sink:
    """The target's state and its ASGI entry point."""

    def __init__(self, fault_rate: float) -> None:
        self._fault_per_mille = int(fault_rate * 1000)
        self.effects: set[bytes] = set()
        self.faulted: set[bytes] = set()
        self.repeats = 0
        self.requests = 0

    def _reply_for(self, key: bytes) -> int:
        self.requests += 1
        if key not in self.faulted and zlib.crc32(key) % 1000 < self._fault_per_mille:
            self.faulted.add(key)
            return 503
        if key in self.effects:
            self.repeats += 1
            return 200
        self.effects.add(key)
        return 201

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:  # drain the body; its content does not matter here
            more = (await receive()).get("more_body", False)
        if scope["method"] == "GET":
            status = 200
            body = msgspec.json.encode(
                {
                    "effects": len(self.effects),
                    "repeats": self.repeats,
                    "requests": self.requests,
                    "faults": len(self.faulted),
                }
            )
        else:
            key = dict(scope["headers"]).get(b"idempotency-key", b"")
            status = self._reply_for(key)
            body = b"{}"
        await send({"type": "http.response.start", "status": status, "headers": _JSON})
        await send({"type": "http.response.body", "body": body})


def create_app() -> Sink:
    return Sink(float(os.environ.get("BENCH_SINK_FAULT_RATE", "0")))
