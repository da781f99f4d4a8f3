"""Sandboxes: small stateful HTTP servers that speak a system's API, with faults on demand.

Each system profile ships its sandbox beside its connector (``connectors/erp/netsuite_sandbox.py``)
and registers it under the entry-point group ``returns_gateway.sandboxes``;
``returns-gateway sandbox run PROFILE`` serves one, tests and the demo run them in-process.
"""

from gateway.sandbox._kit import (
    CONTROL_PREFIX,
    Credentials,
    Fault,
    Sandbox,
    SandboxState,
    Seen,
    free_port,
    running,
    server_for,
)
from gateway.sandbox._registry import (
    ENTRY_POINT_GROUP,
    UnknownSandbox,
    build_sandbox,
    load_sandbox,
    sandbox_profiles,
)

__all__ = [
    "CONTROL_PREFIX",
    "ENTRY_POINT_GROUP",
    "Credentials",
    "Fault",
    "Sandbox",
    "SandboxState",
    "Seen",
    "UnknownSandbox",
    "build_sandbox",
    "free_port",
    "load_sandbox",
    "running",
    "sandbox_profiles",
    "server_for",
]
