"""Load every mapping file once, compile it, check it, and find it by profile and name.

Layout, one folder per system profile::

    mappings/<profile>/<contract>.<version>.<direction>.yaml    the field map
    mappings/<profile>/schemas/*.json                           the system's payloads
    mappings/<profile>/tables/*.yaml                            code tables shared by its mappings
    mappings/<profile>/fixtures/<mapping name>/<case>.yaml      input → expected output

``outbound`` maps a canonical message to the system's request; ``inbound`` maps what the
system answers or sends (a reply, a webhook) to a canonical message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from gateway.errors import Violation
from gateway.mapping._compile import STANDARD_VARIABLES, Scope, build_function, compile_expression
from gateway.mapping._errors import MappingDefinitionError, MappingFailure
from gateway.mapping._schemas import Located, SchemaIndex
from gateway.mapping._source import LineDict, line_of, read_yaml

DIRECTIONS = ("outbound", "inbound")
_KEYS = {"description", "input", "output", "variables", "tables", "map"}


@dataclass(frozen=True)
class Fixture:
    """One case shipped with a mapping: input, variables, and the output it must give."""

    name: str
    source: Path
    input: Any
    expected: Any
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledMapping:
    """A compiled mapping. ``apply`` is the one call a connector makes."""

    profile: str
    name: str
    source: Path
    description: str
    function: Any = field(repr=False)
    validator: Any = field(repr=False)
    fixtures: tuple[Fixture, ...] = ()

    @property
    def direction(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def apply(self, data: Any, variables: Mapping[str, Any] | None = None) -> Any:
        """Map ``data``; the result conforms to the output schema or :class:`MappingFailure` says why."""
        try:
            result = self.function(data, variables or {})
        except MappingFailure as exc:
            raise MappingFailure(f"{self.profile}/{self.name}: {exc.detail}") from None
        except (AttributeError, TypeError) as exc:  # the input is not shaped like its schema
            raise MappingFailure(
                f"{self.profile}/{self.name}: input does not fit the mapping ({exc})"
            ) from exc
        if self.validator is not None and not self.validator.is_valid(result):
            problems = "; ".join(
                f"{'/' + '/'.join(map(str, e.instance_path))}: {e.message}"
                for e in list(self.validator.iter_errors(result))[:5]
            )
            raise MappingFailure(f"{self.profile}/{self.name}: output breaks its schema: {problems}")
        return result

    def violations(self, data: Any) -> list[Violation]:
        """Where ``data`` breaks the output schema (for fixture reports)."""
        if self.validator is None:
            return []
        return [
            Violation("/" + "/".join(map(str, e.instance_path)), e.message)
            for e in self.validator.iter_errors(data)
        ]


class MappingCatalog:
    """Every mapping under a folder, compiled; refuses to exist if any of them is broken."""

    def __init__(self, mappings: dict[tuple[str, str], CompiledMapping]) -> None:
        self._mappings = mappings

    @classmethod
    def load(
        cls, mappings_dir: Path, contracts_dir: Path, *, profiles: Collection[str] | None = None
    ) -> MappingCatalog:
        """Compile every mapping (or only those of ``profiles``); raise listing every problem."""
        if not mappings_dir.is_dir():
            raise MappingDefinitionError([f"mappings folder {mappings_dir} does not exist"])
        index = SchemaIndex(contracts_dir)
        registry = jsonschema_rs.Registry([(uri, doc) for uri, doc in index.documents().items()])
        problems: list[str] = []
        mappings: dict[tuple[str, str], CompiledMapping] = {}
        for path in sorted(mappings_dir.glob("*/*.yaml")):
            if profiles is not None and path.parent.name not in profiles:
                continue
            loaded = _load_one(path, index, registry, problems)
            if loaded is not None:
                mappings[(loaded.profile, loaded.name)] = loaded
        if problems:
            raise MappingDefinitionError(problems)
        return cls(mappings)

    def get(self, profile: str, name: str) -> CompiledMapping:
        try:
            return self._mappings[(profile, name)]
        except KeyError:
            known = ", ".join(n for p, n in sorted(self._mappings) if p == profile) or "none"
            raise MappingDefinitionError(
                [f"no mapping {profile}/{name} (that profile has: {known})"]
            ) from None

    def has(self, profile: str, name: str) -> bool:
        return (profile, name) in self._mappings

    def __iter__(self) -> Iterator[CompiledMapping]:
        return iter(self._mappings.values())

    def __len__(self) -> int:
        return len(self._mappings)


def _schema_spec(spec: Any, folder: Path, index: SchemaIndex) -> Located | str:
    """``return-request.v1`` (a contract), ``schemas/x.json`` (a system payload), or a mapping
    of names to either (an object holding each); a string explains what is wrong."""
    if isinstance(spec, str):
        if spec.endswith(".json"):
            path = folder / spec
            return index.file(path) if path.is_file() else f"no schema file {spec}"
        found = index.contract(spec)
        return found if found is not None else f"no contract {spec} (write it as name.version)"
    if isinstance(spec, dict) and spec:
        properties: dict[str, Any] = {}
        for name, part in spec.items():
            located = _schema_spec(part, folder, index)
            if isinstance(located, str):
                return located
            properties[name] = {"$ref": located.base}
        return Located({"type": "object", "required": sorted(properties), "properties": properties}, "")
    return "expected a contract name, a schema file, or a mapping of names to those"


def _tables(spec: Any, folder: Path, source: str, problems: list[str]) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for name, table in (spec or {}).items():
        if isinstance(table, str):
            path = folder / table
            if not path.is_file():
                problems.append(f"{source}:{line_of(spec, name)}: table {name}: no file {table}")
                continue
            table = read_yaml(path)
        if not isinstance(table, dict):
            problems.append(f"{source}:{line_of(spec, name)}: table {name} must map codes to values")
            continue
        tables[name] = {str(key): value for key, value in table.items()}
    return tables


def _load_one(
    path: Path, index: SchemaIndex, registry: jsonschema_rs.Registry, problems: list[str]
) -> CompiledMapping | None:
    folder, source = path.parent, str(path)
    name = path.name.removesuffix(".yaml")
    try:
        document = read_yaml(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(exc, 'problem', exc)}"
        )
        return None
    if not isinstance(document, LineDict):
        problems.append(f"{source}:1: a mapping file is a YAML mapping")
        return None
    before = len(problems)
    if name.rsplit(".", 1)[-1] not in DIRECTIONS:
        problems.append(f"{source}:1: the file name ends with .outbound.yaml or .inbound.yaml")
    for key in sorted(document.keys() - _KEYS):
        problems.append(f"{source}:{line_of(document, key)}: unknown key {key!r}")
    for key in ("input", "output", "map"):
        if key not in document:
            problems.append(f"{source}:{document.line}: missing {key!r}")
    if len(problems) > before:
        return None
    located: dict[str, Located] = {}
    for key in ("input", "output"):
        found = _schema_spec(document[key], folder, index)
        if isinstance(found, str):
            problems.append(f"{source}:{line_of(document, key)}: {key}: {found}")
        else:
            located[key] = found
    if len(problems) > before:
        return None
    scope = Scope(
        root=located["input"],
        index=index,
        variables=STANDARD_VARIABLES | frozenset(document.get("variables") or ()),
        tables=_tables(document.get("tables"), folder, source, problems),
        errors=problems,
        source=source,
    )
    body = compile_expression(document["map"], scope, line_of(document, "map"), located["output"])
    if len(problems) > before:
        return None
    output = index.resolve(located["output"]).schema
    mapping = CompiledMapping(
        profile=folder.name,
        name=name,
        source=path,
        description=str(document.get("description", "")).strip(),
        function=build_function(body, scope),
        validator=jsonschema_rs.validator_for(output, registry=registry, base_uri=located["output"].base),
        fixtures=tuple(_fixtures(folder / "fixtures" / name, problems)),
    )
    if not mapping.fixtures:
        problems.append(
            f"{source}:1: no fixtures in fixtures/{name}/: every mapping ships input → output cases"
        )
    return mapping


def _fixtures(folder: Path, problems: list[str]) -> Iterator[Fixture]:
    for path in sorted(folder.glob("*.yaml")):
        case = read_yaml(path)
        if not isinstance(case, dict) or "input" not in case or "expected" not in case:
            problems.append(f"{path}:1: a fixture has 'input' and 'expected' (and optional 'variables')")
            continue
        yield Fixture(
            name=path.stem,
            source=path,
            input=_plain(case["input"]),
            expected=_plain(case["expected"]),
            variables=_plain(case.get("variables") or {}),
        )


def _plain(value: Any) -> Any:
    """Line-tracking containers back to plain dicts and lists (for comparison and JSON)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def fixture_problems(mapping: CompiledMapping, fixture: Fixture) -> list[str]:
    """Why ``fixture`` fails (empty when it passes): the output differs, or breaks its schema."""
    try:
        actual = mapping.function(fixture.input, fixture.variables)
    except MappingFailure as exc:
        return [f"raised: {exc.detail}"]
    problems = [f"output {v.pointer or '/'}: {v.detail}" for v in mapping.violations(actual)]
    problems += [
        f"{pointer}: expected {want!r}, got {got!r}"
        for pointer, want, got in _differences(fixture.expected, actual)
    ]
    return problems


def _differences(expected: Any, actual: Any, pointer: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(expected.keys() | actual.keys()):
            yield from _differences(expected.get(key), actual.get(key), f"{pointer}/{key}")
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for position, (want, got) in enumerate(zip(expected, actual, strict=True)):
            yield from _differences(want, got, f"{pointer}/{position}")
    elif expected != actual or type(expected) is not type(actual):
        yield pointer or "/", expected, actual
