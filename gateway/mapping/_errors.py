"""Errors of the mapping layer: a broken mapping file, and a message a mapping cannot map."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import ConfigurationError, PermanentDeliveryFailure


class MappingDefinitionError(ConfigurationError):
    """Mapping files that cannot work; each problem is ``file:line: what``. Refuses start-up."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid mappings:\n  " + "\n  ".join(self.problems))


class MappingFailure(PermanentDeliveryFailure):
    """This message cannot be mapped (a code missing from a table, a reply the schema refuses):
    retrying cannot help, so it is dead-lettered with this reason until the data or the
    mapping is fixed and the message replayed."""
