"""Load every contract folder, compile each validator once, refuse anything unresolvable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from gateway.errors import ContractRegistryError
from gateway.registry._contract import Contract, Example
from gateway.registry._violations import ExplainingValidator

SCHEMA_FILE = "schema.json"
_FORMAT_CHECKER = FormatChecker()


def _read_json(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise ContractRegistryError(f"{path}: cannot read JSON: {exc}") from exc


def _parse_date(value: Any, path: Path, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ContractRegistryError(f"{path}: {key} must be a date (YYYY-MM-DD), got {value!r}") from exc


def _deprecation(schema: dict[str, Any], path: Path) -> tuple[dt.date | None, dt.date | None]:
    if not schema.get("deprecated"):
        return None, None
    if "x-deprecated-on" not in schema:
        raise ContractRegistryError(f"{path}: a deprecated contract needs 'x-deprecated-on' (YYYY-MM-DD)")
    deprecated_on = _parse_date(schema["x-deprecated-on"], path, "x-deprecated-on")
    sunset = schema.get("x-sunset")
    return deprecated_on, (_parse_date(sunset, path, "x-sunset") if sunset is not None else None)


def _examples(folder: Path, *, invalid: bool) -> tuple[Example, ...]:
    kind = "invalid" if invalid else "valid"
    found = []
    for path in sorted((folder / "examples" / kind).glob("*.json")):
        document = _read_json(path)
        if invalid:
            if not isinstance(document, dict) or "payload" not in document or "errors" not in document:
                raise ContractRegistryError(f"{path}: an invalid example is {{description, payload, errors}}")
            found.append(
                Example(
                    name=path.stem,
                    payload=document["payload"],
                    description=str(document.get("description", "")),
                    expected_pointers=tuple(document["errors"]),
                )
            )
        else:
            found.append(Example(name=path.stem, payload=document))
    return tuple(found)


def _discover(root: Path) -> list[tuple[str, str, Path, dict[str, Any]]]:
    if not root.is_dir():
        raise ContractRegistryError(f"contracts folder {root} does not exist")
    found = []
    for schema_path in sorted(root.glob(f"*/*/{SCHEMA_FILE}")):
        schema = _read_json(schema_path)
        if not isinstance(schema, dict) or not isinstance(schema.get("$id"), str):
            raise ContractRegistryError(f"{schema_path}: a contract is a JSON object with a string $id")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ContractRegistryError(f"{schema_path}: not a valid 2020-12 schema: {exc.message}") from exc
        found.append((schema_path.parent.parent.name, schema_path.parent.name, schema_path, schema))
    if not found:
        raise ContractRegistryError(f"no contracts found under {root}")
    return found


def _check_refs_resolve(schema: Any, resolver: Any, path: Path) -> None:
    """Walk every ``$ref`` now, so a typo fails at start-up instead of on a request."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable as exc:
                raise ContractRegistryError(f"{path}: $ref {ref!r} does not resolve") from exc
        for value in schema.values():
            _check_refs_resolve(value, resolver, path)
    elif isinstance(schema, list):
        for value in schema:
            _check_refs_resolve(value, resolver, path)


def _fast_validator(schema: dict[str, Any], registry: jsonschema_rs.Registry, path: Path) -> Any:
    try:
        return jsonschema_rs.validator_for(schema, validate_formats=True, registry=registry, offline=True)
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        raise ContractRegistryError(f"{path}: cannot compile: {exc}") from exc


def load_contracts(root: Path) -> tuple[Registry, dict[tuple[str, str], Contract]]:
    """Load ``root/<name>/<version>/schema.json`` files into compiled contracts."""
    discovered = _discover(root)
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012))
        for _, _, _, schema in discovered
    )
    fast_registry = jsonschema_rs.Registry([(schema["$id"], schema) for _, _, _, schema in discovered])
    contracts: dict[tuple[str, str], Contract] = {}
    for name, version, path, schema in discovered:
        resolver = registry.resolver(base_uri=schema["$id"])
        _check_refs_resolve(schema, resolver, path)
        deprecated_on, sunset_on = _deprecation(schema, path)
        contracts[(name, version)] = Contract(
            name=name,
            version=version,
            schema=schema,
            validator=ExplainingValidator(schema, registry=registry, format_checker=_FORMAT_CHECKER),
            fast_validator=_fast_validator(schema, fast_registry, path),
            deprecated_on=deprecated_on,
            sunset_on=sunset_on,
            valid_examples=_examples(path.parent, invalid=False),
            invalid_examples=_examples(path.parent, invalid=True),
            source=path,
        )
    return registry, contracts
