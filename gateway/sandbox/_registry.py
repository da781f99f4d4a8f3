"""Which sandbox plays which profile: found by entry point, or named as ``module:Class``.

The platform never imports a profile's module by name in its code; installed profiles
announce their sandboxes in the ``returns_gateway.sandboxes`` entry-point group (see
``pyproject.toml``), and one not installed yet (a scaffolded one) is named directly.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from gateway.errors import GatewayError
from gateway.sandbox._kit import Credentials, Sandbox

ENTRY_POINT_GROUP = "returns_gateway.sandboxes"


class UnknownSandbox(GatewayError, KeyError):
    """No sandbox plays this profile: not registered, not importable, or not a :class:`Sandbox`.

    Also a :class:`KeyError`, which the lookup raised before: read the message from ``args[0]``
    (``str()`` quotes it, as for any KeyError)."""


def sandbox_profiles() -> dict[str, str]:
    """Profile name → ``module:Class`` of every registered sandbox."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_sandbox(profile: str) -> type[Sandbox]:
    """The sandbox class for ``profile`` (a registered name, or ``module:Class``)."""
    registered = sandbox_profiles()
    target = registered.get(profile, profile)
    module_name, colon, class_name = target.partition(":")
    if not colon:
        known = ", ".join(sorted(registered)) or "none"
        raise UnknownSandbox(f"no sandbox for {profile!r} (registered: {known}; or name one as module:Class)")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownSandbox(f"cannot import sandbox {target}: {exc}") from exc
    if not (isinstance(found, type) and issubclass(found, Sandbox)):
        raise UnknownSandbox(f"{target} is not a Sandbox subclass")
    return found


def build_sandbox(profile: str, credentials: Credentials | None = None) -> Sandbox:
    """A sandbox for ``profile`` (see :func:`load_sandbox`), accepting ``credentials``."""
    cls = load_sandbox(profile)
    return cls(credentials) if credentials else cls()
