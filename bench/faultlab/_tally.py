"""What a run ended with, counted from the outside: the API's statuses, the sandboxes'
records and requests, and the broker's queues.

* **delivered** per system: returns with their posting there (ERP RMA, WMS receiver, carrier
  label bought, CRM case);
* **duplicates**: returns with more than one such record in a system; **strays**: records for a
  return id the partner was never given (the same return accepted twice, one id lost);
* **replays**: repeats the system's own idempotency refused (a second create of an RMA or a
  receiver, a second label purchase): harmless, but each is a posting tried again;
* **missing**: returns without a posting and without a visible exception;
* **dead letters** per connector, and those of returns that show no exception (**silent**);
* **unexpected**: returns neither at the expected status nor at a visible exception (an
  exception status, or a dead letter on their timeline);
* **left**: messages still in a work queue once every connector was stopped: what was never
  acknowledged, or never drained.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

from bench.faultlab._broker import DeadLetterSeen
from gateway.demo._watch import return_ids_in
from gateway.sandbox import Sandbox

EXPECTED_STATUS = "label_issued"
"""Where a return the policy authorizes stands once the ERP, WMS, carrier and CRM have it and
no parcel has moved yet: the end of the road a run drives."""
EXCEPTION_STATUSES = frozenset({"posting_failed", "validation_failed", "on_hold"})
SYSTEMS = ("erp", "wms", "carrier", "crm")


@dataclasses.dataclass(frozen=True)
class Posting:
    """What one system holds for a return once it was posted there."""

    collection: str
    posted: Callable[[dict[str, Any]], bool] = lambda record: True
    create: tuple[str, Callable[[str], bool]] | None = None
    """Method and path test of the request that creates it, to count refused repeats."""


POSTINGS = {
    "erp": Posting(
        "returnAuthorization",
        create=("POST", lambda path: path == "/services/rest/record/v1/returnAuthorization"),
    ),
    "wms": Posting("receivers", create=("POST", lambda path: path == "/inventory/receivers")),
    "carrier": Posting(
        "shipments",
        posted=lambda record: bool(record.get("tracker")),  # its label bought
        create=("POST", lambda path: path.startswith("/v2/shipments/") and path.endswith("/buy")),
    ),
    "crm": Posting("Case"),  # an upsert by the return id: repeats are updates by design
}


@dataclasses.dataclass
class Tally:
    scenario: str
    asked: int
    accepted: int
    refusals: dict[str, int]
    """Answers a submission got before its 202 (status or transport error), summed."""
    statuses: dict[str, int]
    delivered: dict[str, int]
    duplicates: dict[str, int]
    replays: dict[str, int]
    strays: dict[str, int]
    """Postings for returns the partner was never given (see :class:`Postings`)."""
    missing: dict[str, int]
    faulted: dict[str, int]
    """Calls each sandbox answered with an injected fault (429 or 5xx)."""
    dead_letters: dict[str, int]
    silent_dead_letters: int
    dead_letter_reasons: dict[str, int]
    """``<connector> <message type>: <why>`` → how many."""
    unexpected: dict[str, str]
    """Return id → status, for returns neither where expected nor at a visible exception."""
    drained: bool
    drain_seconds: float
    """From the last accepted submission until the queues were quiet (or the deadline)."""
    left: dict[str, int]
    """Work queue → messages found there once every connector was stopped."""
    events: list[str] = dataclasses.field(default_factory=list)
    """What the scenario did, with the time since submissions started."""

    def problems(self) -> list[str]:
        """Every way the run falls short of the contract; empty when it met it."""
        found = []
        if self.accepted != self.asked:
            found.append(f"{self.asked - self.accepted} of {self.asked} returns never accepted")
        if self.unexpected:
            sample = dict(list(self.unexpected.items())[:5])
            found.append(
                f"{len(self.unexpected)} returns neither {EXPECTED_STATUS} nor at a visible exception, "
                f"e.g. {sample}"
            )
        for system in SYSTEMS:
            if self.duplicates.get(system):
                found.append(f"{self.duplicates[system]} returns posted more than once to {system}")
            if self.strays.get(system):
                found.append(f"{self.strays[system]} postings in {system} for returns the partner never got")
            if self.missing.get(system):
                found.append(f"{self.missing[system]} returns missing from {system} without an exception")
        if self.silent_dead_letters:
            found.append(f"{self.silent_dead_letters} dead letters of returns that show no exception")
        if not self.drained:
            found.append(f"queues not drained after {self.drain_seconds:.0f} s")
        if any(self.left.values()):
            found.append(f"messages left once the connectors stopped: {self.without_zeros(self.left)}")
        return found

    @staticmethod
    def without_zeros(counts: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in counts.items() if v}


@dataclasses.dataclass
class Postings:
    """What the sandboxes hold for a run's returns, per system."""

    delivered: dict[str, set[str]]
    """The returns posted there."""
    duplicates: dict[str, int]
    """Returns posted there more than once."""
    replays: dict[str, int]
    """Repeated creates the system refused."""
    strays: dict[str, int]
    """Postings for returns the partner was never given an id for: a return accepted twice
    (under two ids), one of them lost to the partner."""


def count_postings(sandboxes: dict[str, Sandbox], return_ids: Iterable[str]) -> Postings:
    """Count what each system holds for ``return_ids`` (a stack's sandboxes hold one run's)."""
    wanted = set(return_ids)
    counted = Postings(delivered={}, duplicates={}, replays={}, strays={})
    for system in SYSTEMS:
        posting, state = POSTINGS[system], sandboxes[system].state
        records = collections.Counter[str]()
        posted: set[str] = set()
        strays = 0
        for record in state.all(posting.collection):
            mentioned = set(return_ids_in(record))
            strays += bool(mentioned) and not mentioned & wanted
            for owner in mentioned & wanted:
                records[owner] += 1
                if posting.posted(record):
                    posted.add(owner)
        counted.delivered[system] = posted
        counted.duplicates[system] = sum(1 for n in records.values() if n > 1)
        counted.strays[system] = strays
        if posting.create is not None:
            method, path_test = posting.create
            with state.lock:
                creates = sum(
                    1 for s in state.requests if s.method == method and s.status == 0 and path_test(s.path)
                )
            counted.replays[system] = max(0, creates - sum(records.values()) - strays)
    return counted


Get = Callable[[str], Awaitable[httpx.Response]]
"""``GET`` a gateway path as the partner."""


@dataclasses.dataclass(frozen=True)
class ReturnSeen:
    status: str
    """As ``GET /v1/returns/{id}`` answers it (``?`` if it does not)."""
    exception: bool
    """Whether it shows what went wrong: an exception status, or a dead letter on its timeline."""


async def read_returns(get: Get, return_ids: list[str], *, concurrency: int = 16) -> dict[str, ReturnSeen]:
    """Each return's status, and for those not at :data:`EXPECTED_STATUS` whether they show
    an exception."""
    slots = asyncio.Semaphore(concurrency)
    seen: dict[str, ReturnSeen] = {}

    async def one(return_id: str) -> None:
        async with slots:
            response = await get(f"/v1/returns/{return_id}")
            status = str(response.json()["status"]) if response.status_code == 200 else "?"
            exception = status in EXCEPTION_STATUSES
            if status != EXPECTED_STATUS and not exception:
                timeline = await get(f"/v1/returns/{return_id}/timeline")
                exception = timeline.status_code == 200 and any(
                    entry.get("dead_letter") for entry in timeline.json()["data"]
                )
            seen[return_id] = ReturnSeen(status, exception)

    await asyncio.gather(*(one(r) for r in return_ids))
    return seen


def injected_faults(sandboxes: dict[str, Sandbox]) -> dict[str, int]:
    """Per system, the calls its sandbox answered with an injected 429 or 5xx."""
    counts = {}
    for system in SYSTEMS:
        state = sandboxes[system].state
        with state.lock:
            counts[system] = sum(1 for s in state.requests if s.status == 429 or s.status >= 500)
    return counts


def dead_letter_counts(letters: list[DeadLetterSeen], connectors: Iterable[str]) -> dict[str, int]:
    counts = {name: 0 for name in connectors}
    for letter in letters:
        counts[letter.connector] = counts.get(letter.connector, 0) + 1
    return counts


_RETURN_ID = re.compile(r"ret_[0-9a-f]{32}")


def dead_letter_reasons(letters: list[DeadLetterSeen]) -> dict[str, int]:
    """How many dead letters per connector, message type and reason (return ids left out)."""
    reasons = collections.Counter(
        f"{d.connector} {d.message_type}: {_RETURN_ID.sub('ret_…', d.reason)}" for d in letters
    )
    return dict(reasons.most_common())
