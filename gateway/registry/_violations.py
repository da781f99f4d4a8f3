"""Turn jsonschema errors into violations that each name one JSON pointer.

A client fixes a payload field by field, so each violation points at the value to
change: a missing property points at where it belongs, an unexpected one at itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema.exceptions import ValidationError

from gateway.errors import Violation


def to_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901 pointer for a path of object keys and array indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _unexpected_properties(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return sorted(
        name for name in instance if name not in declared and not any(p.search(name) for p in patterns)
    )


def violations_from(errors: Iterable[ValidationError]) -> Iterator[Violation]:
    """One violation per offending value, in document order of the errors given."""
    for error in errors:
        base = list(error.absolute_path)
        keyword = str(error.validator)
        if keyword == "required" and isinstance(error.instance, dict):
            # jsonschema yields one error per missing name; its message names it, the
            # instance tells us which ones are missing, so rebuild the name safely.
            for name in error.validator_value:
                if name not in error.instance and error.message == f"{name!r} is a required property":
                    yield Violation(to_pointer([*base, name]), f"'{name}' is required", keyword)
                    break
        elif keyword == "additionalProperties" and isinstance(error.instance, dict):
            for name in _unexpected_properties(error.instance, error.schema):
                yield Violation(to_pointer([*base, name]), f"'{name}' is not an allowed property", keyword)
        else:
            yield Violation(to_pointer(base), error.message, keyword)
