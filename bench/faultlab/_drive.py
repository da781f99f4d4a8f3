"""The partner: submits returns through the API at a steady pace and, like a well-behaved
client, sends a refused one again with the same ``Idempotency-Key`` until it is accepted."""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import time
import uuid
from typing import Any

import httpx

from bench.faultlab._documents import RETURNS_PER_GROUP, seed_documents
from bench.faultlab._stack import FaultStack
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT

REQUESTED_DATE = "2024-02-20"
"""15 days after the seeded shipment: inside every window of the default policy, so each return
is authorized by rule and travels on without a person."""
RETRY_PAUSE_SECONDS = 0.5
"""A refused submission is sent again after ``Retry-After``, at most this long."""

_EXAMPLE = ContractRegistry.from_folder(PROJECT_ROOT / "contracts").require("return-request", "v1")


def return_request(tag: str, references: dict[str, Any]) -> dict[str, Any]:
    """A valid return request (the contract's first example) with an ``external_id`` of its own,
    against ``references`` (see :func:`seed_documents`)."""
    payload = copy.deepcopy(_EXAMPLE.valid_examples[0].payload)
    payload["external_id"] = f"FLT-{tag}"
    payload["requested_date"] = REQUESTED_DATE
    payload["references"] = copy.deepcopy(references)
    return payload


@dataclasses.dataclass
class Submission:
    idempotency_key: str
    payload: dict[str, Any]
    return_id: str | None = None
    """Set once the gateway answered 202."""
    refusals: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    """Answers before the 202 (status code or transport error)."""


class Driver:
    """Submits ``count`` returns, ``rate`` a second, at most ``concurrency`` in flight."""

    def __init__(
        self, stack: FaultStack, *, rate: float, concurrency: int = 16, give_up_seconds: float = 120.0
    ) -> None:
        self._stack = stack
        self._rate = rate
        self._slots = asyncio.Semaphore(concurrency)
        self._give_up = give_up_seconds
        self.submissions: list[Submission] = []
        self.accepted = 0
        self.sent = 0
        """Submissions started (the first try of each)."""
        self.started = 0.0
        self.finished = 0.0

    @property
    def return_ids(self) -> list[str]:
        return [s.return_id for s in self.submissions if s.return_id is not None]

    def refusals(self) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for submission in self.submissions:
            total.update(submission.refusals)
        return total

    async def run(self, count: int) -> None:
        """Submit every return; returns once each was accepted or given up on."""
        run = uuid.uuid4().hex[:8]
        groups = seed_documents(self._stack.sandboxes["erp"], count, int(run, 16))
        self.submissions = [
            Submission(uuid.uuid4().hex, return_request(f"{run}-{i:05d}", groups[i // RETURNS_PER_GROUP]))
            for i in range(count)
        ]
        self.started = time.monotonic()
        tasks = []
        for index, submission in enumerate(self.submissions):
            due = self.started + index / self._rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))  # the partner's pace
            await self._slots.acquire()
            self.sent += 1
            tasks.append(asyncio.create_task(self._submit(submission)))
        await asyncio.gather(*tasks)
        self.finished = time.monotonic()

    async def _submit(self, submission: Submission) -> None:
        try:
            deadline = time.monotonic() + self._give_up
            while time.monotonic() < deadline:
                pause = RETRY_PAUSE_SECONDS
                try:
                    response = await self._stack.http.post(
                        f"{self._stack.gateway_url}/v1/returns",
                        json=submission.payload,
                        headers={**self._stack.headers(), "Idempotency-Key": submission.idempotency_key},
                    )
                except httpx.TransportError as exc:
                    submission.refusals[type(exc).__name__] += 1
                else:
                    if response.status_code == 202:
                        submission.return_id = str(response.json()["id"])
                        self.accepted += 1
                        return
                    submission.refusals[str(response.status_code)] += 1
                    if response.status_code < 500 and response.status_code not in (401, 409, 429):
                        return  # refused for good (a 401 may be a key lost with Redis's data)
                    pause = min(pause, _seconds(response.headers.get("retry-after"), pause))
                await asyncio.sleep(pause)
        finally:
            self._slots.release()


def _seconds(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default
