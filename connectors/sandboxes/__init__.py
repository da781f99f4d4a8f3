"""Sandboxes: small stateful HTTP servers speaking each system's API shape, with faults on demand.

``returns-gateway sandbox run PROFILE`` serves one; tests and the demo run them in-process.
"""

from connectors.sandboxes._kit import (
    Credentials,
    Fault,
    Sandbox,
    SandboxState,
    Seen,
    free_port,
    running,
    server_for,
)

#: Profile name → ``module:Class`` of its sandbox.
SANDBOXES: dict[str, str] = {
    "netsuite": "connectors.sandboxes.netsuite:NetSuiteSandbox",
    "business_central": "connectors.sandboxes.business_central:BusinessCentralSandbox",
    "extensiv": "connectors.sandboxes.extensiv:ExtensivSandbox",
    "easypost": "connectors.sandboxes.easypost:EasyPostSandbox",
    "salesforce": "connectors.sandboxes.salesforce:SalesforceSandbox",
}

__all__ = [
    "SANDBOXES",
    "Credentials",
    "Fault",
    "Sandbox",
    "SandboxState",
    "Seen",
    "free_port",
    "running",
    "server_for",
]
