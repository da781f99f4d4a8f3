"""Turn jsonschema errors into violations that each name one JSON pointer.

A client fixes a payload field by field, so each violation points at the value to
change: a missing property points at where it belongs, an unexpected one at itself.

A refused payload can be hostile (100,000 empty lines, a megabyte of one string), so the
explanation is bounded: the validator explaining it does not descend into an array longer
than its ``maxItems`` (the array is refused as too long, its items are not explained), and
no detail or pointer repeats more than an excerpt of an offending value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

from gateway.errors import Violation

EXCERPT_CHARS = 80
"""The most of an offending value (a property name, a string, a repr) a violation repeats."""

DETAIL_CHARS = 400
"""The longest detail a violation carries (the schema's own words included)."""


def to_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901 pointer for a path of object keys and array indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` itself when short, else its first characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pointer(path: Iterable[str | int]) -> str:
    """The pointer to a violation; a segment taken from a hostile key is shortened to an excerpt."""
    return to_pointer(excerpt(part) if isinstance(part, str) else part for part in path)


def _detail(error: ValidationError) -> str:
    """The error's message, with the offending value it quotes cut to an excerpt."""
    message = error.message
    if len(message) <= EXCERPT_CHARS:
        return message
    quoted = repr(error.instance)  # jsonschema's messages quote the instance with repr()
    if len(quoted) > EXCERPT_CHARS and quoted in message:
        message = message.replace(quoted, excerpt(quoted))
    return excerpt(message, DETAIL_CHARS)


def _unexpected_properties(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return sorted(
        name for name in instance if name not in declared and not any(p.search(name) for p in patterns)
    )


def violations_from(errors: Iterable[ValidationError]) -> Iterator[Violation]:
    """One violation per offending value, in the order of the errors given (lazily: a caller
    that has enough stops iterating, and the rest of the payload is never examined)."""
    for error in errors:
        base = list(error.absolute_path)
        keyword = str(error.validator)
        if keyword == "required" and isinstance(error.instance, dict):
            # jsonschema yields one error per missing name; its message names it, the
            # instance tells us which ones are missing, so rebuild the name safely.
            for name in error.validator_value:
                if name not in error.instance and error.message == f"{name!r} is a required property":
                    yield Violation(_pointer([*base, name]), f"'{name}' is required", keyword)
                    break
        elif keyword == "additionalProperties" and isinstance(error.instance, dict):
            for name in _unexpected_properties(error.instance, error.schema):
                yield Violation(
                    _pointer([*base, name]), f"'{excerpt(name)}' is not an allowed property", keyword
                )
        else:
            yield Violation(_pointer(base), _detail(error), keyword)


_STANDARD = Draft202012Validator.VALIDATORS


def _over_maximum(instance: Any, schema: dict[str, Any]) -> bool:
    maximum = schema.get("maxItems")
    return isinstance(instance, list) and isinstance(maximum, int) and len(instance) > maximum


def _items(validator: Any, items: Any, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """``items``, not judged on an array already too long: it is refused whole (``maxItems``),
    and what is wrong in its items is explained once it has a length it may have."""
    if not _over_maximum(instance, schema):
        yield from _STANDARD["items"](validator, items, instance, schema)


def _max_items(
    validator: Any, maximum: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """``maxItems`` saying how long the array is, not quoting all of it."""
    if validator.is_type(instance, "array") and len(instance) > maximum:
        yield ValidationError(f"has {len(instance)} items, more than the {maximum} allowed")


def _unique_items(
    validator: Any, unique: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """``uniqueItems``, not judged on an array already too long (comparing its items is quadratic)."""
    if not _over_maximum(instance, schema):
        yield from _STANDARD["uniqueItems"](validator, unique, instance, schema)


ExplainingValidator: Any = extend(
    Draft202012Validator,
    validators={"items": _items, "maxItems": _max_items, "uniqueItems": _unique_items},
)
"""Draft 2020-12 as the contracts are written, with the bounds above; it refuses exactly the
payloads the standard validator refuses (``tests/registry`` checks it against the Rust one)."""
