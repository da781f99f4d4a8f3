"""A loaded contract: one schema version with its compiled validator and its status."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema.protocols import Validator

from gateway.errors import LISTED_VIOLATIONS, Violation
from gateway.registry._violations import DETAIL_CHARS, excerpt, to_pointer, violations_from

COUNTED_VIOLATIONS = 10_000
"""Counting a refusal's violations stops here; beyond, the total is "at least" this many."""


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a payload was refused, explained within bounds."""

    violations: tuple[Violation, ...]
    """The first violations found (at most the ``listed`` asked for), in document order."""

    total: int
    """How many violations were counted."""

    exact: bool
    """False when counting stopped at its ceiling: there are at least ``total``."""


def _document_order(violation: Violation) -> list[tuple[int, int | str]]:
    """Sort key: where the error was found (a missing or unexpected property: in its object)."""
    segments = violation.pointer.split("/")
    if violation.keyword in ("required", "additionalProperties"):
        segments.pop()
    return [(0, int(p)) if p.isdigit() else (1, p) for p in segments]


@dataclass(frozen=True, kw_only=True)
class Example:
    """An example shipped beside a contract; invalid ones carry the pointers they must produce."""

    name: str
    payload: Any
    description: str = ""
    expected_pointers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Contract:
    """One version of a canonical contract."""

    name: str
    """Contract name, the folder name (``return-request``)."""

    version: str
    """Version folder name (``v1``)."""

    schema: dict[str, Any]
    """The JSON Schema as written."""

    validator: Validator = field(repr=False)
    """Python validator compiled once at load time; explains refusals with JSON pointers."""

    fast_validator: Any = field(repr=False)
    """jsonschema-rs validator for the same schema: decides acceptance in microseconds."""

    deprecated_on: dt.date | None = None
    """Set when the schema says ``"deprecated": true``; from its ``x-deprecated-on``."""

    sunset_on: dt.date | None = None
    """Last day the version is served, from ``x-sunset``."""

    valid_examples: tuple[Example, ...] = ()
    invalid_examples: tuple[Example, ...] = ()
    source: Path | None = None

    @property
    def id(self) -> str:
        """The schema's ``$id``."""
        return str(self.schema["$id"])

    @property
    def status(self) -> str:
        """``active`` or ``deprecated``."""
        return "deprecated" if self.deprecated_on else "active"

    def conforms(self, payload: Any) -> bool:
        """Whether ``payload`` conforms: the compiled Rust validator decides, in microseconds."""
        return bool(self.fast_validator.is_valid(payload))

    def check(
        self, payload: Any, *, listed: int = LISTED_VIOLATIONS, ceiling: int = COUNTED_VIOLATIONS
    ) -> Refusal | None:
        """``None`` when ``payload`` conforms, else why not (see :meth:`explain`)."""
        return None if self.conforms(payload) else self.explain(payload, listed=listed, ceiling=ceiling)

    def explain(
        self, payload: Any, *, listed: int = LISTED_VIOLATIONS, ceiling: int = COUNTED_VIOLATIONS
    ) -> Refusal:
        """Why a refused ``payload`` breaks this contract: its first ``listed`` violations, and
        how many there are, counted up to ``ceiling``.

        The Rust validator decides (about 250x faster on a return request); only a refused
        payload pays for the Python validator, whose errors carry our pointer rules. Its
        errors are taken lazily: details for the first ``listed``, then only counted, so a
        hostile payload costs bounded work and memory. Should the two validators ever
        disagree, the refusal stands, reported with the Rust error.
        """
        found: list[Violation] = []
        total = 0
        for violation in itertools.islice(violations_from(self.validator.iter_errors(payload)), ceiling + 1):
            total += 1
            if total <= listed:
                found.append(violation)
        if not total:
            return Refusal(violations=(self._rust_explanation(payload),), total=1, exact=False)
        found.sort(key=_document_order)
        return Refusal(violations=tuple(found), total=min(total, ceiling), exact=total <= ceiling)

    def violations(self, payload: Any, *, listed: int = LISTED_VIOLATIONS) -> list[Violation]:
        """The first ``listed`` ways ``payload`` breaks this contract (see :meth:`check`); empty
        when it conforms."""
        refusal = self.check(payload, listed=listed, ceiling=listed)
        return list(refusal.violations) if refusal else []

    def _rust_explanation(self, payload: Any) -> Violation:
        try:
            self.fast_validator.validate(payload)
        except jsonschema_rs.ValidationError as exc:
            return Violation(to_pointer(exc.instance_path), excerpt(exc.message, DETAIL_CHARS), None)
        return Violation("", "the payload does not conform to the contract", None)
