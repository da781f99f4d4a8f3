"""Read a mapping file as YAML while remembering the line of every key, so every error
about a mapping can name the file and line an engineer has to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class LineDict(dict[str, Any]):
    """A YAML mapping that knows the line of each of its keys."""

    line: int = 0
    lines: dict[str, int]


class LineList(list[Any]):
    """A YAML sequence that knows its own line."""

    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def read_yaml(path: Path) -> Any:
    """The document in ``path``; mappings are :class:`LineDict`, sequences :class:`LineList`."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


def line_of(container: Any, key: str | None = None) -> int:
    """Line of ``key`` in ``container`` (or of the container itself); 0 when unknown."""
    if isinstance(container, LineDict):
        return container.lines.get(key, container.line) if key is not None else container.line
    return getattr(container, "line", 0)
