"""A target's shared client: credentials from the environment, failures in our own terms."""

from __future__ import annotations

import httpx
import pytest

from gateway.errors import PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.routing import TargetSpec, parse_routing_table
from gateway.runtime import build_connector
from gateway.sdk import Target, TargetConfigError
from tests.support.sandbox import Fault, running_sandbox
from tests.support.server import free_port


def test_a_token_is_read_from_the_environment_never_the_table() -> None:
    spec = TargetSpec(base_url="http://erp.example", token_env="RGW_TEST_ERP_TOKEN")
    with pytest.raises(TargetConfigError, match="RGW_TEST_ERP_TOKEN is not set"):
        Target("erp", spec, environ={})
    target = Target("erp", spec, environ={"RGW_TEST_ERP_TOKEN": "s3cret"})
    assert target.client.headers["Authorization"] == "Bearer s3cret"


async def test_replies_become_delivery_failures_over_real_http() -> None:
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url))
        try:
            sandbox.faults.extend([Fault(429, retry_after="7"), Fault(422)])
            with pytest.raises(RetryableDeliveryFailure) as throttled:
                await target.post("/records", json={}, idempotency_key="k1")
            assert throttled.value.status_code == 429 and throttled.value.retry_after == 7
            with pytest.raises(PermanentDeliveryFailure) as refused:
                await target.post("/records", json={}, idempotency_key="k1")
            assert refused.value.status_code == 422
            response = await target.post("/records", json={"a": 1}, idempotency_key="k1")
            assert response.status_code == 201
            assert [key for _, key in sandbox.requests] == ["k1"] * 3  # the key goes out every time
        finally:
            await target.aclose()


async def test_a_refused_connection_is_retried_briefly_then_retryable() -> None:
    target = Target("down", TargetSpec(base_url=f"http://127.0.0.1:{free_port()}", connect_timeout_seconds=1))
    try:
        with pytest.raises(RetryableDeliveryFailure, match="unreachable"):
            await target.post("/records", json={}, idempotency_key="k")
    finally:
        await target.aclose()


def test_the_routing_table_names_the_connector_class_and_its_target() -> None:
    table = parse_routing_table(
        "connectors: {crm: {use: 'gateway.builtin.webhook:WebhookConnector', "
        "target: {base_url: 'http://crm.example'}, options: {path: /cases}}}"
    )
    connector = build_connector("crm", table.connectors["crm"])
    assert connector.name == "crm" and connector.options == {"path": "/cases"}
    assert connector.target.client.base_url == httpx.URL("http://crm.example")
    for bad in ("gateway.builtin.webhook:Nope", "gateway.settings:Settings"):
        with pytest.raises(TargetConfigError):
            build_connector(
                "crm", parse_routing_table(f"connectors: {{crm: {{use: '{bad}'}}}}").connectors["crm"]
            )
