"""One exception tree: every error class of ``gateway`` and ``connectors`` is a ``GatewayError``,
drawn at its place in the docstring of ``gateway/errors.py``."""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType

import pytest

import connectors
import gateway
from gateway import errors
from gateway.errors import GatewayError, ProblemError
from gateway.sandbox import UnknownSandbox, load_sandbox

# A line of the drawing: four spaces, the branches above it, then its own branch and the name.
_DRAWN = re.compile(r"^    (?:[│ ]   )*(?:[├└]── )?(?P<name>\w+)(?:\s+(?P<says>.*))?$")


def _cannot_import(name: str) -> None:
    raise ImportError(f"cannot import {name}")


def _all_modules() -> list[ModuleType]:
    """Every module of the platform and the profiles (``__main__`` would run a command)."""
    modules: list[ModuleType] = []
    for package in (gateway, connectors):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}.", onerror=_cannot_import):
            if found.name.rpartition(".")[2] != "__main__":
                modules.append(importlib.import_module(found.name))
    return modules


def _ours(cls: type) -> bool:
    return cls.__module__.partition(".")[0] in {"gateway", "connectors"}


def _drawing() -> list[tuple[int, str, str]]:
    """(depth, class name, what the line says) for each line of the drawing."""
    doc = errors.__doc__ or ""
    start = doc.index("::\n\n") + len("::\n\n")
    lines = doc[start:].split("\n\n", 1)[0].splitlines()
    drawn: list[tuple[int, str, str]] = []
    for line in lines:
        match = _DRAWN.match(line)
        assert match, f"not a line of the drawing: {line!r}"
        column = match.start("name") - 4
        assert column % 4 == 0, f"misaligned: {line!r}"
        drawn.append((column // 4, match["name"], match["says"] or ""))
    return drawn


def _drawn_pairs() -> set[tuple[str, str]]:
    """(class, parent) for each class the drawing shows under another."""
    pairs: set[tuple[str, str]] = set()
    path: list[str] = []
    for depth, name, _ in _drawing():
        assert depth <= len(path), f"{name} is drawn deeper than the line above allows"
        path[depth:] = [name]
        if depth:
            pairs.add((name, path[depth - 1]))
    return pairs


def _defined_pairs() -> set[tuple[str, str]]:
    """(class, parent) for each GatewayError subclass the code defines (not the tests')."""
    pairs: set[tuple[str, str]] = set()

    def walk(parent: type) -> None:
        for child in parent.__subclasses__():
            if _ours(child):
                pairs.add((child.__name__, parent.__name__))
                walk(child)

    walk(GatewayError)
    return pairs


def _subclasses(cls: type) -> list[type]:
    found = [sub for sub in cls.__subclasses__() if _ours(sub)]
    return found + [deeper for sub in found for deeper in _subclasses(sub)]


@pytest.fixture(scope="module")
def modules() -> list[ModuleType]:
    return _all_modules()


def test_every_error_class_is_a_gateway_error(modules: list[ModuleType]) -> None:
    strays = sorted(
        f"{obj.__module__}.{obj.__qualname__}"
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseException) and _ours(obj)
        if not issubclass(obj, GatewayError)
    )
    assert strays == []


def test_the_drawing_shows_every_error_under_its_parent(modules: list[ModuleType]) -> None:
    drawn = [name for _, name, _ in _drawing()]
    assert len(drawn) == len(set(drawn)), "a class is drawn twice"
    assert drawn[0] == "GatewayError"
    defined = _defined_pairs()
    names = [name for name, _ in defined]
    assert len(names) == len(set(names)), "two error classes share a name (or a class has two parents)"
    assert sorted(defined - _drawn_pairs()) == [], "defined but not drawn there (class, parent)"
    assert sorted(_drawn_pairs() - defined) == [], "drawn but not defined so (class, parent)"


def test_the_drawing_gives_each_problem_its_status(modules: list[ModuleType]) -> None:
    classes = {cls.__name__: cls for cls in _subclasses(ProblemError)}
    for _, name, says in _drawing():
        if name in classes:
            assert says.split()[0] == str(classes[name].status_code), name


def test_the_drawing_parser_catches_a_misplaced_class(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = errors.__doc__ or ""
    misplaced = doc.replace("│   │   ├── CircuitOpen   ", "│   ├── CircuitOpen       ", 1)
    assert misplaced != doc
    monkeypatch.setattr(errors, "__doc__", misplaced)
    assert ("CircuitOpen", "DeliveryFailed") in _drawn_pairs()
    assert ("CircuitOpen", "RetryableDeliveryFailure") not in _drawn_pairs()


def test_an_unknown_sandbox_is_still_a_key_error() -> None:
    with pytest.raises(KeyError) as caught:
        load_sandbox("no-such-profile")
    assert isinstance(caught.value, UnknownSandbox)
    assert caught.value.args[0].startswith("no sandbox for 'no-such-profile'")
