"""The whole product on one machine: sandboxes for ERP, WMS, carrier and CRM, the gateway,
and a connector runtime per system, all on the local RabbitMQ and Redis.

The demo runs it, and so does the end-to-end test: one way to wire the systems together.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import uvicorn

from gateway.api import create_app
from gateway.auth import KeyStore
from gateway.broker import events_exchange_name, unrouted_name
from gateway.database import open_database, upgrade
from gateway.mapping import MappingCatalog
from gateway.partners.endpoints import generate_key as generate_secrets_key
from gateway.routing import RoutingTable, delete_routing_topology, parse_routing_table
from gateway.runtime import ConnectorRuntime, build_connector, declare_topology
from gateway.sandbox import Credentials, Sandbox, build_sandbox, free_port, running
from gateway.settings import Settings, shipped
from gateway.storage import connect_redis
from gateway.storage.keys import namespace_pattern
from gateway.worker import connector_runtime

#: Which sandbox profile plays each system, and the connector class that talks to it.
SYSTEMS: dict[str, dict[str, str]] = {
    "netsuite": {"role": "erp", "use": "connectors.erp.netsuite:NetSuiteConnector"},
    "business_central": {"role": "erp", "use": "connectors.erp.business_central:BusinessCentralConnector"},
    "extensiv": {"role": "wms", "use": "connectors.wms.extensiv:ExtensivConnector"},
    "easypost": {"role": "carrier", "use": "connectors.carrier.easypost:EasyPostConnector"},
    "salesforce": {"role": "crm", "use": "connectors.crm.salesforce:SalesforceConnector"},
}

#: Extra options per profile (where goods go back, which account and facility...).
OPTIONS: dict[str, dict[str, Any]] = {
    "netsuite": {"return_site": "DC-HAM", "rma_valid_days": 30, "adjustment_account": "1250"},
    "business_central": {
        "return_site": "DC-HAM",
        "rma_valid_days": 30,
        "non_stock_location": "QUARANTINE",
    },
    "extensiv": {
        "customer_id": 1,
        "default_site": "DC-HAM",
        "webhook_secret_env": "RGW_DEMO_WMS_WEBHOOK_SECRET",
    },
    "easypost": {
        "webhook_secret_env": "RGW_DEMO_CARRIER_WEBHOOK_SECRET",
        "default_return_site": "DC-HAM",
        "return_sites": {
            "DC-HAM": {
                "name": "Returns desk",
                "company": "Nordlicht Distribution GmbH",
                "street1": "Am Sandtorkai 50",
                "city": "Hamburg",
                "zip": "20457",
                "country": "DE",
                "phone": "+49 40 555 0100",
            }
        },
        "parcel": {"length": 40, "width": 30, "height": 20, "weight": 112},
    },
    "salesforce": {},
}


def _routes_of(text: str) -> list[tuple[str, str, list[str]]]:
    table = parse_routing_table(text)
    return [(route.id, route.message, list(route.to)) for route in table.routes]


#: The routes of the shipped ``routes.yaml``: the demo wires the systems the way production does.
ROUTES = _routes_of(shipped("routes.yaml").read_text())
#: Connectors that call no system of their own (no sandbox, no target).
INTERNAL_CONNECTORS = {
    "lifecycle": "gateway.lifecycle:Orchestrator",
    "partner-webhooks": "gateway.partners.webhooks:PartnerWebhookConnector",
    "edi-responses": "gateway.edi.responder:X12ResponseConnector",
}


def routing_table(urls: Mapping[str, str], sandboxes: Mapping[str, Sandbox], erp: str) -> str:
    """The routing table for the profiles in ``urls``: connectors named by role."""
    lines = ["connectors:"]
    for profile, url in urls.items():
        role = SYSTEMS[profile]["role"]
        env = role.upper()
        token_path = sandboxes[profile].token_path
        if token_path is not None:
            auth = (
                f"{{type: oauth2_client_credentials, token_url: '{url}{token_path}', "
                f"client_id_env: RGW_DEMO_{env}_CLIENT_ID, client_secret_env: RGW_DEMO_{env}_CLIENT_SECRET}}"
            )
        else:
            auth = (
                f"{{type: basic, username_env: RGW_DEMO_{env}_CLIENT_ID, "
                f"password_env: RGW_DEMO_{env}_CLIENT_SECRET}}"
            )
        options = {**OPTIONS.get(profile, {}), **sandboxes[profile].connector_options()}
        lines += [
            f"  {role}:",
            f"    use: {SYSTEMS[profile]['use']}",
            f"    target: {{base_url: '{url}', timeout_seconds: 5, auth: {auth}}}",
            f"    options: {json.dumps(options)}",
            "    prefetch: 8",
            "    max_attempts: 6",
            "    retry_delays_ms: [500, 1000, 2000, 5000]",
        ]
    for name, use in INTERNAL_CONNECTORS.items():
        lines += [
            f"  {name}:",
            f"    use: {use}",
            "    max_attempts: 6",
            "    retry_delays_ms: [500, 1000, 2000, 5000]",
        ]
    lines.append("routes:")
    for route_id, message, to in ROUTES:
        if message == "disposition.v1" and erp != "netsuite":
            continue  # Business Central's standard API posts no inventory adjustment (see routes.yaml)
        lines.append(f"  - {{id: {route_id}, message: {message}, to: [{', '.join(to)}]}}")
    return "\n".join(lines) + "\n"


def credentials_env(sandboxes: Mapping[str, Sandbox]) -> dict[str, str]:
    """Environment variables the routing table names (by profile), set to what the sandboxes
    accept and sign their webhooks with."""
    env: dict[str, str] = {}
    for profile, sandbox in sandboxes.items():
        secret_env = OPTIONS.get(profile, {}).get("webhook_secret_env")
        if secret_env and sandbox.webhook_secret:
            env[secret_env] = sandbox.webhook_secret
        role = SYSTEMS[profile]["role"].upper()
        env[f"RGW_DEMO_{role}_CLIENT_ID"] = Credentials().client_id
        env[f"RGW_DEMO_{role}_CLIENT_SECRET"] = Credentials().client_secret
    return env


@dataclasses.dataclass
class Stack:
    """A running system; ``gateway_url`` takes partner calls with ``api_key``."""

    settings: Settings
    table: RoutingTable
    table_text: str
    sandboxes: dict[str, Sandbox]
    """By role: erp, wms, carrier, crm."""
    urls: dict[str, str]
    gateway_url: str
    api_key: str
    admin_key: str
    """An operator's key (``admin`` scope): the dead-letter desk."""
    edi_key: str
    """The EDI trading partner ``nordwind``'s key (``edi-partners.yaml``): sends X12 180s."""
    approver_key: str
    """The returns desk's key (tenant ``operations``, ``returns:approve``): what rules send to people."""
    runtimes: dict[str, ConnectorRuntime]
    http: httpx.AsyncClient

    async def submit(self, payload: Mapping[str, Any], idempotency_key: str) -> httpx.Response:
        return await self.http.post(
            f"{self.gateway_url}/v1/returns",
            json=payload,
            headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": idempotency_key},
        )

    async def dead_letters(self, connector: str) -> list[dict[str, Any]]:
        """What waits in ``connector``'s dead-letter queue, as the admin API shows it."""
        response = await self.http.get(
            f"{self.gateway_url}/v1/admin/dead-letters",
            params={"connector": connector},
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        response.raise_for_status()
        return [letter for queue in response.json()["data"] for letter in queue["dead_letters"]]

    async def status(self, return_id: str) -> str:
        """Where the return stands (asked as the operator, who sees every partner's returns)."""
        response = await self.http.get(
            f"{self.gateway_url}/v1/returns/{return_id}",
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        response.raise_for_status()
        return str(response.json()["status"])

    async def timeline(self, return_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(
            f"{self.gateway_url}/v1/returns/{return_id}/timeline",
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        response.raise_for_status()
        return list(response.json()["data"])

    async def approve(self, return_id: str, comment: str) -> httpx.Response:
        """The returns desk approves, as a person would in its tool."""
        return await self.http.post(
            f"{self.gateway_url}/v1/returns/{return_id}/approval",
            json={"decision": "approve", "comment": comment},
            headers={"Authorization": f"Bearer {self.approver_key}"},
        )

    async def send_x12(self, interchange: bytes) -> httpx.Response:
        """The EDI partner's translator posts an interchange; the answer is the 997."""
        return await self.http.post(
            f"{self.gateway_url}/v1/edi/x12",
            content=interchange,
            headers={"Authorization": f"Bearer {self.edi_key}", "Content-Type": "application/edi-x12"},
        )

    async def x12_responses(self, return_id: str) -> list[str]:
        """The 180s the gateway answered the EDI partner's return with."""
        response = await self.http.get(
            f"{self.gateway_url}/v1/edi/x12/returns/{return_id}/responses",
            headers={"Authorization": f"Bearer {self.edi_key}"},
        )
        response.raise_for_status()
        return [r["interchange"] for r in response.json()["data"]]

    async def webhook(self, role: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return await self.http.post(
            f"{self.gateway_url}/v1/webhooks/{role}", content=body, headers={**headers}
        )


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings,
    *,
    erp: str = "netsuite",
    partner: str = "demo",
    gateway_port: int | None = None,
    drop_topology: bool = True,
):  # type: ignore[no-untyped-def]
    """Start everything; stop everything (and delete the namespace's topology) on the way out."""
    profiles = [erp, "extensiv", "easypost", "salesforce"]
    by_profile = {p: build_sandbox(p) for p in profiles}
    sandboxes = {SYSTEMS[p]["role"]: sandbox for p, sandbox in by_profile.items()}
    env = credentials_env(by_profile)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # connectors read credentials from the environment, as in production
    with ExitStack() as threads, tempfile.TemporaryDirectory(prefix="rgw-demo-") as folder:
        urls = {p: threads.enter_context(running(by_profile[p])) for p in profiles}
        text = routing_table(urls, by_profile, erp)
        routes = Path(folder) / "routes.yaml"
        routes.write_text(text)
        # The demo's webhook secrets live as long as it does: a key of its own unless one is set.
        settings = dataclasses.replace(
            settings, routes_file=routes, secrets_key=settings.secrets_key or generate_secrets_key()
        )
        table = parse_routing_table(text)
        async with AsyncExitStack() as stack:
            # The record's schema at this code's revision (a no-op when it is, as in the tests).
            await asyncio.to_thread(upgrade, settings.database)
            await declare_topology(settings, table)
            if drop_topology:
                stack.push_async_callback(_drop_topology, settings, table)
            catalog = MappingCatalog.load(settings.mappings_dir, settings.contracts_dir)  # once, for all
            port = gateway_port or free_port()
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, mappings=catalog), host="127.0.0.1", port=port, log_level="warning"
                )
            )
            serving = asyncio.create_task(server.serve())
            stack.push_async_callback(_stop_server, server, serving)
            while not server.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.02)
            redis = connect_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            database = await open_database(settings)
            stack.push_async_callback(database.close)
            issued = await KeyStore(database, settings).create(
                partner, ["returns:write", "returns:read"], label="demo"
            )
            admin = await KeyStore(database, settings).create(  # it polls every return: a higher limit
                "operations", ["admin", "returns:read"], label="demo operator", rate_limit=1000
            )
            edi = await KeyStore(database, settings).create(
                "nordwind", ["returns:write", "returns:read"], label="demo EDI translator"
            )
            approver = await KeyStore(database, settings).create(
                "operations", ["returns:approve", "returns:read"], label="demo returns desk"
            )
            runtimes: dict[str, ConnectorRuntime] = {}
            for name, spec in table.connectors.items():
                connector = build_connector(name, spec, catalog)
                stack.push_async_callback(connector.aclose)
                runtime = connector_runtime(
                    connector, settings=settings, spec=spec, redis=redis, database=database
                )
                await runtime.start()
                stack.push_async_callback(runtime.stop)
                runtimes[name] = runtime
            stack.callback(_restore, saved)
            http = httpx.AsyncClient(timeout=10)
            stack.push_async_callback(http.aclose)
            yield Stack(
                settings=settings,
                table=table,
                table_text=text,
                sandboxes=sandboxes,
                urls={SYSTEMS[p]["role"]: u for p, u in urls.items()},
                gateway_url=f"http://127.0.0.1:{port}",
                api_key=issued.secret,
                admin_key=admin.secret,
                approver_key=approver.secret,
                edi_key=edi.secret,
                runtimes=runtimes,
                http=http,
            )


def _restore(saved: Mapping[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


async def _stop_server(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    server.should_exit = True
    await serving


async def _drop_topology(settings: Settings, table: RoutingTable) -> None:
    """Leave nothing of the namespace behind: queues, exchanges, Redis keys."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        await delete_routing_topology(channel, settings, table)
        await channel.queue_delete(unrouted_name(settings))
        for exchange in (events_exchange_name(settings), unrouted_name(settings)):
            await channel.exchange_delete(exchange)
    finally:
        await connection.close()
    redis = connect_redis(settings.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=namespace_pattern(settings), count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
