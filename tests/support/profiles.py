"""A system profile's connector wired to that system's sandbox over real HTTP, for tests."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from gateway.mapping import MappingCatalog
from gateway.routing import BasicAuth, OAuth2ClientCredentials, TargetSpec
from gateway.runtime import connector_class
from gateway.sandbox import Sandbox, running
from gateway.sdk import Connector, Delivery, Target
from gateway.settings import PROJECT_ROOT

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
TRIES = TargetSpec(base_url="http://sandbox.invalid").tries
"""In-process tries of a call safe to repeat, by default: a fault used this many times on such a
call reaches the runtime, one used fewer times is absorbed by the target's retry."""
ENV = {"TEST_CLIENT_ID": CLIENT_ID, "TEST_CLIENT_SECRET": CLIENT_SECRET}


@functools.cache
def catalog() -> MappingCatalog:
    """Every mapping in the repository, compiled once per test session."""
    return MappingCatalog.load(PROJECT_ROOT / "mappings", PROJECT_ROOT / "contracts")


def target_spec(sandbox: Sandbox, base_url: str, **fields: Any) -> TargetSpec:
    """The target a routing table would give this sandbox: its URL and its kind of credentials."""
    if sandbox.token_path is not None:
        auth: Any = OAuth2ClientCredentials(
            token_url=base_url + sandbox.token_path,
            client_id_env="TEST_CLIENT_ID",
            client_secret_env="TEST_CLIENT_SECRET",
        )
    else:
        auth = BasicAuth(username_env="TEST_CLIENT_ID", password_env="TEST_CLIENT_SECRET")
    return TargetSpec(
        base_url=base_url, auth=auth, timeout_seconds=fields.pop("timeout_seconds", 2.0), **fields
    )


@asynccontextmanager
async def connector_on(
    sandbox: Sandbox, use: str, *, name: str = "system", options: dict[str, Any] | None = None, **target: Any
) -> AsyncIterator[Connector]:
    """Connector ``use`` (``module:Class``) built as ``connector run`` builds it, calling ``sandbox``."""
    with running(sandbox) as base_url:
        client = Target(name, target_spec(sandbox, base_url, **target), environ=ENV)
        connector = connector_class(use)(name, target=client, options=options or {}, mappings=catalog())
        try:
            yield connector
        finally:
            await connector.aclose()


def delivery(message_type: str, payload: dict[str, Any], **fields: Any) -> Delivery:
    """A delivery as the runtime decodes it, with fresh ids unless given."""
    contract, _, version = message_type.rpartition(".")
    values: dict[str, Any] = {
        "message_id": f"msg_{uuid.uuid4().hex}",
        "correlation_id": f"ret_{uuid.uuid4().hex}",
        "contract": contract,
        "version": version,
        "partner": "acme",
        "occurred_at": dt.datetime.now(dt.UTC),
        "payload": payload,
        **fields,
    }
    return msgspec.convert(values, Delivery)
