"""A target's shared client: credentials from the environment, failures in our own terms."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.errors import CircuitOpen, PermanentDeliveryFailure, RetryableDeliveryFailure
from gateway.routing import CircuitSpec, TargetSpec, parse_routing_table
from gateway.runtime import TargetCircuit, build_connector
from gateway.sandbox import Fault as SandboxFault
from gateway.sandbox import running
from gateway.sdk import Target, TargetConfigError
from tests.support.profiles import ENV, target_spec
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


async def test_a_call_safe_to_repeat_honours_retry_after_in_process() -> None:
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url))
        try:
            sandbox.faults.append(Fault(429, retry_after="1"))
            response = await target.post("/records", json={}, idempotency_key="k1")
            assert response.status_code == 201
            first, second = sandbox.times_for("k1")
            assert second - first >= 0.95  # the target asked for 1 s; the backoff alone is ~0.1 s
            assert sandbox.effects == {"k1": 1}
        finally:
            await target.aclose()


async def test_its_tries_are_counted_and_a_long_retry_after_is_left_to_the_runtime() -> None:
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url, tries=3, max_retry_after_seconds=2))
        try:
            sandbox.faults.extend([Fault(503)] * 3)
            with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
                await target.post("/records", json={}, idempotency_key="k1")
            assert len(sandbox.times_for("k1")) == 3

            sandbox.faults.append(Fault(503, retry_after="3"))  # longer than it waits in-process
            with pytest.raises(RetryableDeliveryFailure) as caught:
                await target.post("/records", json={}, idempotency_key="k2")
            assert caught.value.retry_after == 3 and len(sandbox.times_for("k2")) == 1
        finally:
            await target.aclose()


async def test_a_post_without_an_idempotency_key_is_not_sent_again_after_a_503() -> None:
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url))
        try:
            sandbox.faults.append(Fault(503))
            with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
                await target.post("/records", json={})
            assert len(sandbox.requests) == 1  # it may have been applied: only the runtime decides
            assert sandbox.effects == {}
        finally:
            await target.aclose()


async def test_a_get_is_tried_again_with_its_token_renewed_as_needed() -> None:
    sandbox = NetSuiteSandbox()
    with running(sandbox) as base_url:
        spec = target_spec(sandbox, base_url)
        target = Target("erp", spec, environ=ENV)
        try:
            token = sandbox.token_path or ""
            sandbox.state.faults.extend(
                [
                    SandboxFault(status=503, path=token),
                    SandboxFault(status=429, retry_after="0", method="GET", times=2),
                ]
            )
            response = await target.get("/services/rest/record/v1/salesOrder/9001")
            assert response.json()["tranId"] == "4500118832"
            assert [(s.method, s.status) for s in sandbox.state.requests] == [
                ("POST", 503),  # the token grant, tried again by itself
                ("POST", 0),
                ("GET", 429),
                ("GET", 429),
                ("GET", 0),
            ]
        finally:
            await target.aclose()


async def test_the_circuit_hears_each_call_once_after_its_tries() -> None:
    spec = CircuitSpec(failure_rate=0.5, minimum_calls=1)
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url, tries=2))
        circuit = TargetCircuit("records", spec)
        target.guard = circuit
        try:
            sandbox.faults.append(Fault(503))
            await target.post("/records", json={}, idempotency_key="k1")  # failed, then answered
            assert circuit.state == "closed"  # one call, and it succeeded (counting tries: 1 of 2 failed)

            sandbox.faults.extend([Fault(503)] * 2)
            with pytest.raises(RetryableDeliveryFailure):
                await target.post("/records", json={}, idempotency_key="k2")
            assert circuit.state == "opened"
            with pytest.raises(CircuitOpen):  # not sent at all while open
                await target.post("/records", json={}, idempotency_key="k3")
            assert sandbox.times_for("k3") == []
        finally:
            await target.aclose()


async def test_no_try_starts_once_the_timeout_has_passed_since_the_first() -> None:
    with running_sandbox() as (base_url, sandbox):
        target = Target("records", TargetSpec(base_url=base_url, timeout_seconds=1, tries=10))
        try:
            sandbox.faults.extend([Fault(503, delay=0.4)] * 10)  # slow failures: 0.4 s each
            started = time.monotonic()
            with pytest.raises(RetryableDeliveryFailure, match="answered 503"):
                await target.post("/records", json={}, idempotency_key="k1")
            assert time.monotonic() - started < 2.0  # within twice the timeout, not ten tries
            assert 2 <= len(sandbox.times_for("k1")) <= 3
        finally:
            await target.aclose()
