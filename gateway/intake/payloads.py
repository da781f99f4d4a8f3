"""Partners' JSON bodies within bounds: checked against their contract at a bounded cost, off
the event loop when the body is large.

A refused payload is explained (its first violations with their pointers, and their count)
by the Python validator, which costs far more than the Rust one deciding; for a body over
:data:`INLINE_BYTES` that runs in a worker thread, a few at a time, so one hostile body
does not stall every other request on the event loop.
"""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
import anyio.to_thread
import msgspec

from gateway.errors import ContractViolation, MalformedRequest
from gateway.registry import Contract, Refusal

T = TypeVar("T")

INLINE_BYTES = 64 * 1024
"""A refused body up to this size is explained on the event loop; a larger one in a thread."""

EXPLAINING_THREADS = 1
"""Worker threads one use case explains refusals in at once; more refusals wait their turn. The
explaining is Python holding the GIL: a second thread would not explain faster, only take more
turns from the event loop."""


def decode_json(body: bytes, type: Any = Any) -> Any:
    """Parse a request body (as ``type`` when given); a 400 that says what is wrong with it."""
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as exc:
        raise MalformedRequest(f"invalid request body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from exc


def violation_of(refusal: Refusal, what: str) -> ContractViolation:
    """The 422 for a refusal: its listed violations, and how many there are in all."""
    count = str(refusal.total) if refusal.exact else f"at least {refusal.total}"
    return ContractViolation(
        f"{count} violation(s) of {what}", refusal.violations, total=refusal.total, exact=refusal.exact
    )


class ContractChecks:
    """Checks payloads against contracts; big refusals are explained in worker threads."""

    def __init__(self) -> None:
        self._threads = anyio.CapacityLimiter(EXPLAINING_THREADS)

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
