"""The sandbox kit's fault injection over real HTTP: counted faults, and faults by rate."""

from __future__ import annotations

import collections

import httpx

from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.sandbox import CONTROL_PREFIX, running

ORDERS = "/services/rest/record/v1/salesOrder/9001"
TOKEN = NetSuiteSandbox.token_path or ""
FAULTS = f"{CONTROL_PREFIX}/faults"


def _token(client: httpx.Client) -> str:
    reply = client.post(
        TOKEN, data={"grant_type": "client_credentials"}, auth=("sandbox-client", "sandbox-secret")
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def test_a_counted_fault_is_used_its_times_then_gone() -> None:
    sandbox = NetSuiteSandbox()
    with running(sandbox) as base_url, httpx.Client(base_url=base_url) as client:
        bearer = {"Authorization": f"Bearer {_token(client)}"}
        assert client.post(FAULTS, json={"status": 503, "method": "GET", "times": 2}).status_code == 201
        assert [client.get(ORDERS, headers=bearer).status_code for _ in range(3)] == [503, 503, 200]
        assert client.get(FAULTS).json() == []


def test_a_rate_fault_lasts_until_removed() -> None:
    sandbox = NetSuiteSandbox()
    with running(sandbox) as base_url, httpx.Client(base_url=base_url) as client:
        bearer = {"Authorization": f"Bearer {_token(client)}"}
        client.post(FAULTS, json={"status": 429, "retry_after": "1", "rate": 1.0, "path": ORDERS})
        replies = [client.get(ORDERS, headers=bearer) for _ in range(5)]
        assert [r.status_code for r in replies] == [429] * 5
        assert {r.headers["retry-after"] for r in replies} == {"1"}
        assert [f["rate"] for f in client.get(FAULTS).json()] == [1.0]

        assert client.delete(FAULTS).json() == {"removed": 1}
        assert client.get(ORDERS, headers=bearer).status_code == 200


def test_rate_faults_share_one_draw_and_reach_every_call_the_token_endpoints_too() -> None:
    sandbox = NetSuiteSandbox()
    sandbox.state.rng.seed(19)
    with running(sandbox) as base_url, httpx.Client(base_url=base_url) as client:
        bearer = {"Authorization": f"Bearer {_token(client)}"}
        client.post(
            FAULTS,
            json=[
                {"status": 503, "retry_after": "1", "rate": 0.15},
                {"status": 429, "retry_after": "1", "rate": 0.15},
            ],
        )
        form = {"grant_type": "client_credentials"}
        auth = ("sandbox-client", "sandbox-secret")
        statuses = collections.Counter(client.get(ORDERS, headers=bearer).status_code for _ in range(600))
        tokens = collections.Counter(client.post(TOKEN, data=form, auth=auth).status_code for _ in range(200))

    faulted = statuses[503] + statuses[429]
    assert set(statuses) == {200, 503, 429}
    assert 0.24 <= faulted / 600 <= 0.36  # 30 % together; the two never add up to more
    assert statuses[503] > 50 and statuses[429] > 50
    assert set(tokens) == {200, 503, 429} and 0.2 <= (tokens[503] + tokens[429]) / 200 <= 0.4
