"""Partners' JSON bodies within bounds: decoded to a bounded depth, and checked against their
contract at a bounded cost, off the event loop when the body is large.

Every JSON body the edge reads goes through :func:`decode_json`: nesting deeper than
:data:`MAX_DEPTH` is a 400 before any parser recurses into it (msgspec would raise
``RecursionError`` near a thousand levels, and the Python validator recurses too).

A refused payload is explained (its first violations with their pointers, and their count)
by the Python validator, which costs far more than the Rust one deciding; for a body over
:data:`INLINE_BYTES` that runs in a worker thread, so one hostile body does not stall every
other request on the event loop.

Even bounded, decoding a megabyte of JSON costs about 20 ms of the one core the event loop
has, and a client can send such bodies back to back. So a body over :data:`INLINE_BYTES` is
decoded and checked in a lane of its own (one per use case), one at a time, and after refusing
one the lane rests :data:`REST_FACTOR` times as long as the refused body took (the refused
client's answer waits out the rest too): refused large bodies get at most a tenth of the
gateway's time, however fast and however many they come, while bodies of ordinary size never
wait for the lane.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import accumulate
from typing import Any

import anyio
import anyio.to_thread
import msgspec

from gateway.errors import ContractViolation, MalformedRequest
from gateway.registry import Contract, Refusal

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON body (a return request uses 5)."""

INLINE_BYTES = 64 * 1024
"""A refused body up to this size is explained on the event loop; a larger one in a thread."""

REST_FACTOR = 9
"""After refusing a large body, its lane rests this many times as long as the body took."""

EXPLAINING_THREADS = 1
"""Worker threads one use case explains refusals in at once; more refusals wait their turn. The
explaining is Python holding the GIL: a second thread would not explain faster, only take more
turns from the event loop."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(range(256)).translate(None, b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")], _STEP[ord("]")] = 1, -1


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count);
    for a truncated text, how deep it got. Linear in the body, at C speed for most of it."""
    brackets = _STRING.sub(b"", body).translate(_SQUARE, _NOT_A_BRACKET)
    peeled = 0  # each pass removes the innermost pairs, one level everywhere
    while brackets:
        inner = brackets.replace(b"[]", b"")
        if len(inner) > len(brackets) * 3 // 4:  # few leaves left: count the rest bracket by bracket
            break
        brackets, peeled = inner, peeled + 1
    return peeled + max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def too_deep(body: bytes) -> bool:
    """Whether ``body`` nests deeper than :data:`MAX_DEPTH` (cheap for every normal body)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:  # every normal body: no scan at all
        return False
    return nesting_depth(body) > MAX_DEPTH


def decode_json(body: bytes, type: Any = Any) -> Any:
    """Parse a request body (as ``type`` when given); a 400 that says what is wrong with it."""
    if too_deep(body):
        raise MalformedRequest(f"the body is not acceptable JSON: it nests deeper than {MAX_DEPTH} levels")
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as exc:
        raise MalformedRequest(f"invalid request body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # cannot happen under MAX_DEPTH; never a 500 if it does
        raise MalformedRequest("the body is not acceptable JSON: it nests too deep") from exc


def violation_of(refusal: Refusal, what: str) -> ContractViolation:
    """The 422 for a refusal: its listed violations, and how many there are in all."""
    count = str(refusal.total) if refusal.exact else f"at least {refusal.total}"
    return ContractViolation(
        f"{count} violation(s) of {what}", refusal.violations, total=refusal.total, exact=refusal.exact
    )


class ContractChecks:
    """Checks payloads against contracts; large bodies are read in a lane of their own, and
    their refusals explained in a worker thread."""

    def __init__(self) -> None:
        self._threads = anyio.CapacityLimiter(EXPLAINING_THREADS)
        self._lane = anyio.Lock()

    @asynccontextmanager
    async def admitted(self, size: int) -> AsyncIterator[None]:
        """Where a body of ``size`` bytes is decoded and checked: an ordinary one at once, a large
        one in the lane, which rests after a refusal (:class:`MalformedRequest` or
        :class:`ContractViolation` raised inside)."""
        if size <= INLINE_BYTES:
            yield
            return
        async with self._lane:
            started = time.monotonic()
            try:
                yield
            except (MalformedRequest, ContractViolation):
                await anyio.sleep(REST_FACTOR * (time.monotonic() - started))
                raise

    async def check(self, contract: Contract, payload: object, *, size: int) -> Refusal | None:
        """``contract.check(payload)``; ``size`` is the body's, which decides where it runs."""
        if contract.conforms(payload):
            return None
        if size <= INLINE_BYTES:
            return contract.explain(payload)
        return await anyio.to_thread.run_sync(contract.explain, payload, limiter=self._threads)

    async def require(self, contract: Contract, payload: object, *, size: int) -> None:
        """Raise :class:`ContractViolation` unless ``payload`` conforms to ``contract``."""
        refusal = await self.check(contract, payload, size=size)
        if refusal is not None:
            raise violation_of(refusal, f"{contract.name} {contract.version}")
