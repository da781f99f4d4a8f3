"""A loaded contract: one schema version with its compiled validator and its status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema.protocols import Validator

from gateway.errors import Violation
from gateway.registry._violations import to_pointer, violations_from


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

    def violations(self, payload: Any) -> list[Violation]:
        """Every way ``payload`` breaks this contract; empty when it conforms.

        The compiled Rust validator decides (about 250x faster on a return request); only a
        refused payload pays for the Python validator, whose errors carry our pointer rules.
        Should the two ever disagree, the refusal stands, reported with the Rust errors.
        """
        if self.fast_validator.is_valid(payload):
            return []
        errors = sorted(self.validator.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path)))
        found = list(violations_from(errors))
        if not found:
            found = [
                Violation(to_pointer(e.instance_path), e.message, None)
                for e in self.fast_validator.iter_errors(payload)
            ]
        return found
