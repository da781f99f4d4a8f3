"""The connector SDK's public face (``gateway.sdk``): what it exports, that profiles import nothing
else of the platform, message-type dispatch declared with ``@handler``, and the ``Receiver`` role
that alone takes webhooks."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aio_pika.abc import AbstractRobustConnection
from litestar.testing import AsyncTestClient

import gateway.sdk
from gateway.api import create_app
from gateway.registry import ContractRegistry
from gateway.runtime import connector_class
from gateway.sdk import (
    Connector,
    Delivery,
    Emitted,
    Inbound,
    PermanentDeliveryFailure,
    Receiver,
    handler,
)
from gateway.settings import PROJECT_ROOT, Settings
from tests.support.broker import delete_routing_topology
from tests.support.profiles import delivery

EXPECTED = {
    "Connector",
    "handler",
    "Receiver",
    "Delivery",
    "Emitted",
    "Inbound",
    "RuntimeContext",
    "WebhookRejected",
    "Target",
    "TargetConfigError",
    "TargetError",
    "ErrorReader",
    "raise_for_target",
    "reply_json",
    "plain_error",
    "retry_after_seconds",
    "target_errors",
    "RETRYABLE_STATUSES",
    "DeliveryFailed",
    "RetryableDeliveryFailure",
    "PermanentDeliveryFailure",
    "hmac_hex",
    "timestamped_signature",
    "verify_signature",
    "webhook_secret",
    "MappingCatalog",
    "MappingFailure",
    "NotReadyYet",
}
PROFILES = {
    "connectors.erp.netsuite:NetSuiteConnector": False,
    "connectors.erp.business_central:BusinessCentralConnector": False,
    "connectors.wms.extensiv:ExtensivConnector": True,
    "connectors.carrier.easypost:EasyPostConnector": True,
    "connectors.crm.salesforce:SalesforceConnector": False,
    "gateway.lifecycle:Orchestrator": False,
    "gateway.partners.webhooks:PartnerWebhookConnector": False,
    "gateway.edi.responder:X12ResponseConnector": False,
    "gateway.builtin.webhook:WebhookConnector": False,
}
"""Every connector in the tree, and whether its system calls it back (a receiver)."""


# -- the public face ---------------------------------------------------------------------------
def _isort_style(name: str) -> tuple[int, str]:
    """The order ruff keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_sdk_exports_exactly_what_a_profile_author_needs() -> None:
    exported = gateway.sdk.__all__
    assert exported == sorted(exported, key=_isort_style)
    assert len(exported) == len(set(exported))
    assert set(exported) == EXPECTED
    for name in exported:
        assert getattr(gateway.sdk, name) is not None, name


def _gateway_imports(path: Path) -> list[str]:
    """Every ``gateway`` module ``path`` imports (``from gateway import sdk`` as ``gateway.sdk``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == "gateway":
                found += [f"gateway.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return [name for name in found if name == "gateway" or name.startswith("gateway.")]


def test_profiles_import_only_the_sdk_and_the_sandbox_kit_of_the_platform() -> None:
    modules = sorted((PROJECT_ROOT / "connectors").rglob("*.py"))
    assert any(path.name == "netsuite.py" for path in modules)
    for path in modules:
        imported = set(_gateway_imports(path))
        assert imported <= {"gateway.sdk", "gateway.sandbox"}, (path, imported)


# -- dispatch ----------------------------------------------------------------------------------
def emitted(tag: str) -> Emitted:
    return Emitted(contract="tag", version="v1", payload={"tag": tag}, message_id=tag)


class Erp(Connector):
    @handler("return-request.v1")
    async def request(self, delivery: Delivery) -> Sequence[Emitted]:
        return [emitted(f"request:{delivery.message_id}")]

    @handler("credit-memo.v1", "supplier-claim.v1")
    async def money(self, delivery: Delivery) -> None:
        return None


class ErpWithDispositions(Erp):
    @handler("disposition.v1")
    async def disposition(self, delivery: Delivery) -> Sequence[Emitted]:
        return [emitted("disposition")]

    async def request(self, delivery: Delivery) -> Sequence[Emitted]:  # overridden, not redeclared
        return [emitted("overridden")]


class ErpWithOwnCredits(Erp):
    @handler("credit-memo.v1")
    async def credit(self, delivery: Delivery) -> Sequence[Emitted]:
        return [emitted("own credit")]


async def test_a_declared_type_reaches_its_method_and_its_answer_comes_back() -> None:
    erp = Erp("erp")
    message = delivery("return-request.v1", {})
    assert await erp.handle(message) == [emitted(f"request:{message.message_id}")]
    assert await erp.handle(delivery("credit-memo.v1", {})) is None
    assert await erp.handle(delivery("supplier-claim.v1", {})) is None


def test_handles_is_derived_from_the_declarations() -> None:
    assert Erp.handles == {"return-request.v1", "credit-memo.v1", "supplier-claim.v1"}
    erp = Erp("erp")
    assert erp.takes("credit-memo.v1") and not erp.takes("disposition.v1")
    assert not erp.takes("credit-memo.v2")


async def test_a_type_without_a_method_is_refused_never_acknowledged() -> None:
    with pytest.raises(PermanentDeliveryFailure, match=r"erp does not handle disposition\.v1"):
        await Erp("erp").handle(delivery("disposition.v1", {}))
    with pytest.raises(PermanentDeliveryFailure):
        await Connector("bare").handle(delivery("return-request.v1", {}))


async def test_a_subclass_extends_its_bases_table() -> None:
    assert ErpWithDispositions.handles == Erp.handles | {"disposition.v1"}
    erp = ErpWithDispositions("erp")
    assert await erp.handle(delivery("disposition.v1", {})) == [emitted("disposition")]
    assert await erp.handle(delivery("credit-memo.v1", {})) is None
    # A method overridden without a declaration keeps its types.
    assert await erp.handle(delivery("return-request.v1", {})) == [emitted("overridden")]
    assert Erp.handles == {"return-request.v1", "credit-memo.v1", "supplier-claim.v1"}  # untouched


async def test_a_subclass_may_declare_a_type_again() -> None:
    erp = ErpWithOwnCredits("erp")
    assert ErpWithOwnCredits.handles == Erp.handles
    assert await erp.handle(delivery("credit-memo.v1", {})) == [emitted("own credit")]
    assert await erp.handle(delivery("supplier-claim.v1", {})) is None


async def test_a_connector_that_declares_nothing_takes_whatever_its_routes_send() -> None:
    class Everything(Connector):
        async def handle(self, delivery: Delivery) -> Sequence[Emitted]:
            return [emitted(delivery.message_type)]

    everything = Everything("all")
    assert Everything.handles is None and everything.takes("anything.v7")
    assert await everything.handle(delivery("receipt.v1", {})) == [emitted("receipt.v1")]
    builtin = connector_class("gateway.builtin.webhook:WebhookConnector")
    assert builtin.handles is None


def test_handles_set_beside_declarations_is_refused() -> None:
    with pytest.raises(TypeError, match="sets handles"):

        class Both(Connector):
            handles: ClassVar[frozenset[str] | None] = frozenset({"return-request.v1"})

            @handler("credit-memo.v1")
            async def credit(self, delivery: Delivery) -> None: ...

    with pytest.raises(TypeError, match="sets handles"):

        class Narrowed(Erp):
            handles: ClassVar[frozenset[str] | None] = frozenset({"return-request.v1"})


def test_a_type_declared_twice_in_one_class_is_refused() -> None:
    with pytest.raises(TypeError, match=r"declares credit-memo\.v1 twice"):

        class Twice(Connector):
            @handler("credit-memo.v1")
            async def one(self, delivery: Delivery) -> None: ...

            @handler("return-request.v1", "credit-memo.v1")
            async def other(self, delivery: Delivery) -> None: ...

    with pytest.raises(TypeError, match="twice"):
        handler("credit-memo.v1", "credit-memo.v1")


def test_a_declaration_needs_message_types_and_an_async_method() -> None:
    with pytest.raises(TypeError):
        handler()
    with pytest.raises(TypeError, match="not a message type"):
        handler("credit-memo")

    def synchronous(self: Any, delivery: Delivery) -> None: ...

    with pytest.raises(TypeError, match="async"):
        handler("credit-memo.v1")(synchronous)


def test_every_connector_in_the_tree_declares_its_types_or_takes_all() -> None:
    for use in PROFILES:
        cls = connector_class(use)
        if use == "gateway.builtin.webhook:WebhookConnector":
            assert cls.handles is None
        else:
            assert cls.handles, use
            for message_type in cls.handles:
                assert callable(getattr(cls, cls._handlers[message_type])), (use, message_type)


# -- receivers ---------------------------------------------------------------------------------
def test_only_receivers_have_receive() -> None:
    assert not hasattr(Connector, "receive")
    for use, receives in PROFILES.items():
        cls = connector_class(use)
        assert issubclass(cls, Receiver) is receives, use
        assert hasattr(cls, "receive") is receives, use


def test_a_receiver_must_write_receive() -> None:
    class Deaf(Connector, Receiver):
        pass

    with pytest.raises(TypeError, match="receive"):
        Deaf("deaf")


class Echo(Connector, Receiver):
    """A receiver that makes nothing of what it is sent."""

    async def receive(self, inbound: Inbound) -> Sequence[Emitted]:
        return []


class Unbuildable(Connector):
    """Not a receiver: the HTTP edge must never build it."""

    @handler("return-request.v1")
    async def request(self, delivery: Delivery) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connector that takes no webhooks was built by the HTTP edge")


TABLE = """
connectors:
  echo: {use: "tests.test_sdk:Echo"}
  plain: {use: "tests.test_sdk:Unbuildable"}
"""


@asynccontextmanager
async def gateway_with(
    tmp_path: Path, settings: Settings, registry: ContractRegistry, amqp: AbstractRobustConnection
) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    path = tmp_path / "routes.yaml"
    path.write_text(TABLE)
    try:
        app = create_app(dataclasses.replace(settings, routes_file=path), registry)
        async with AsyncTestClient(app) as client:
            yield client
    finally:
        await delete_routing_topology(amqp, settings, TABLE)


async def test_a_connector_that_is_not_a_receiver_is_404_on_its_webhook_path_like_an_unknown_one(
    tmp_path: Path, settings: Settings, registry: ContractRegistry, amqp: AbstractRobustConnection
) -> None:
    async with gateway_with(tmp_path, settings, registry, amqp) as client:
        received = await client.post("/v1/webhooks/echo", content=b"{}")
        plain = await client.post("/v1/webhooks/plain", content=b"{}")
        unknown = await client.post("/v1/webhooks/nobody", content=b"{}")
    assert received.status_code == 202, received.text
    assert received.json() == {"accepted": [], "duplicates": []}
    assert plain.status_code == unknown.status_code == 404
    assert plain.headers["content-type"] == unknown.headers["content-type"] == "application/problem+json"
    assert plain.json()["type"] == "urn:returns-gateway:problem:unknown-connector"
    assert plain.text.replace("plain", "nobody") == unknown.text
