"""``/v1/webhook-endpoints``: register, list, delete, rotate; each partner only its own."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient
from psycopg_pool import AsyncConnectionPool

from gateway.api import create_app
from gateway.errors import InvalidWebhookEndpoint
from gateway.partners.endpoints import MAX_ENDPOINTS, EndpointRegistry, check_url
from gateway.registry import ContractRegistry
from gateway.settings import Settings
from tests.conftest import Gateway, KeyFactory
from tests.partner_webhooks.conftest import WEBHOOK_SCOPES, auth

PATH = "/v1/webhook-endpoints"
URL = "https://hooks.acme.example/returns"


async def test_register_answers_the_secret_once(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    created = await gateway.client.post(PATH, json={"url": URL}, headers=auth(key))
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    endpoint = created.json()
    assert endpoint["object"] == "webhook_endpoint"
    assert endpoint["id"].startswith("we_") and endpoint["url"] == URL and endpoint["enabled"] is True
    assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) > 40

    listed = await gateway.client.get(PATH, headers=auth(key))
    assert listed.status_code == 200
    assert listed.json()["data"] == [{k: v for k, v in endpoint.items() if k != "secret"}]
    assert endpoint["secret"] not in listed.text


async def test_delete_removes_it(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = (await gateway.client.post(PATH, json={"url": URL}, headers=auth(key))).json()
    assert (await gateway.client.delete(f"{PATH}/{endpoint['id']}", headers=auth(key))).status_code == 204
    assert (await gateway.client.get(PATH, headers=auth(key))).json()["data"] == []
    again = await gateway.client.delete(f"{PATH}/{endpoint['id']}", headers=auth(key))
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"


async def test_rotation_changes_the_secret(
    gateway: Gateway, make_key: KeyFactory, database: AsyncConnectionPool
) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = (await gateway.client.post(PATH, json={"url": URL}, headers=auth(key))).json()
    rotated = await gateway.client.post(f"{PATH}/{endpoint['id']}/rotate-secret", headers=auth(key))
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    assert rotated.json()["id"] == endpoint["id"]
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != endpoint["secret"]
    stored = await EndpointRegistry(database, gateway.settings).get("acme", endpoint["id"])
    assert stored is not None and stored.secret == rotated.json()["secret"]
    assert stored.secret not in repr(stored)  # never in a log line


async def test_another_partners_endpoint_is_404(gateway: Gateway, make_key: KeyFactory) -> None:
    acme = await make_key("acme", scopes=WEBHOOK_SCOPES)
    globex = await make_key("globex", scopes=WEBHOOK_SCOPES)
    endpoint = (await gateway.client.post(PATH, json={"url": URL}, headers=auth(acme))).json()
    theirs = f"{PATH}/{endpoint['id']}"
    unknown = f"{PATH}/we_000000000000000000000000"
    for method, suffix in [("DELETE", ""), ("POST", "/rotate-secret")]:
        taken = await gateway.client.request(method, theirs + suffix, headers=auth(globex))
        missing = await gateway.client.request(method, unknown + suffix, headers=auth(globex))
        assert taken.status_code == missing.status_code == 404, (method, taken.text)
        assert taken.json()["title"] == missing.json()["title"]  # indistinguishable: ids leak nothing
    assert (await gateway.client.get(PATH, headers=auth(globex))).json()["data"] == []
    assert [e["id"] for e in (await gateway.client.get(PATH, headers=auth(acme))).json()["data"]] == [
        endpoint["id"]
    ]


async def test_scope_and_key_are_required(gateway: Gateway, make_key: KeyFactory) -> None:
    reader = await make_key("acme", scopes=("returns:read", "returns:write"))
    for method, path in [
        ("POST", PATH),
        ("GET", PATH),
        ("DELETE", f"{PATH}/we_x"),
        ("POST", f"{PATH}/we_x/rotate-secret"),
    ]:
        forbidden = await gateway.client.request(method, path, json={"url": URL}, headers=auth(reader))
        assert forbidden.status_code == 403, (method, path, forbidden.text)
        assert "webhooks:manage" in forbidden.json()["detail"]
        anonymous = await gateway.client.request(method, path, json={"url": URL})
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"url": "ftp://hooks.acme.example/"}, 422),
        ({"url": "https://user:pass@hooks.acme.example/"}, 422),
        ({"url": "https:///no-host"}, 422),
        ({"url": "not a url"}, 422),
        ({"url": ""}, 400),
        ({"url": URL, "events": ["all"]}, 400),
        ({}, 400),
    ],
)
async def test_invalid_registrations_are_problems(
    gateway: Gateway, make_key: KeyFactory, body: dict[str, object], status: int
) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    refused = await gateway.client.post(PATH, json=body, headers=auth(key))
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await gateway.client.get(PATH, headers=auth(key))).json()["data"] == []


async def test_body_must_be_json(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    as_text = await gateway.client.post(
        PATH, content=URL, headers={**auth(key), "Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    broken = await gateway.client.post(
        PATH, content=b'{"url": ', headers={**auth(key), "Content-Type": "application/json"}
    )
    assert broken.status_code == 400


async def test_a_partner_has_a_limited_number_of_endpoints(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    for n in range(MAX_ENDPOINTS):
        created = await gateway.client.post(PATH, json={"url": f"{URL}/{n}"}, headers=auth(key))
        assert created.status_code == 201
    refused = await gateway.client.post(PATH, json={"url": URL}, headers=auth(key))
    assert refused.status_code == 422 and str(MAX_ENDPOINTS) in refused.json()["detail"]


async def test_http_needs_the_setting(
    settings: Settings, registry: ContractRegistry, redis: aioredis.Redis, make_key: KeyFactory
) -> None:
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    strict = dataclasses.replace(settings, webhook_allow_http=False)
    async with AsyncTestClient(create_app(strict, registry)) as client:
        refused = await client.post(PATH, json={"url": "http://127.0.0.1:9/hook"}, headers=auth(key))
        assert refused.status_code == 422 and "https" in refused.json()["detail"]
        assert (await client.post(PATH, json={"url": URL}, headers=auth(key))).status_code == 201


def test_check_url() -> None:
    loopback = "http://127.0.0.1:8000/hook"
    assert check_url(loopback, allow_http=True, allowed_hosts="127.0.0.1") == loopback
    with pytest.raises(InvalidWebhookEndpoint):
        check_url(loopback, allow_http=True)  # loopback, unless the allow-list names it
    with pytest.raises(InvalidWebhookEndpoint):
        check_url(loopback, allow_http=False, allowed_hosts="127.0.0.1")
    with pytest.raises(InvalidWebhookEndpoint):
        check_url(URL + "#part", allow_http=False)
