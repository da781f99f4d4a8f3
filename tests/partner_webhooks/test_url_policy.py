"""The outbound URL policy (no SSRF): hostile URLs refused at registration with the reason, a
name that later resolves to a private address refused at delivery without a call, the
allow-list for internal receivers, redirects not followed.

Names resolve through :class:`Dns`, the policy's injectable resolver: the broker, Redis and
the receiver are real."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from litestar import Response, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from psycopg_pool import AsyncConnectionPool

from gateway.broker.headers import DEAD_REASON
from gateway.errors import InvalidWebhookEndpoint
from gateway.partners.endpoints import (
    EndpointRegistry,
    IPAddress,
    UrlPolicy,
    address_refusal,
    policy_transport,
)
from gateway.partners.webhooks import PartnerWebhookConnector, partner_client, partner_options
from gateway.runtime import Outcome
from gateway.sandbox import running
from gateway.settings import Settings
from tests.conftest import Gateway, KeyFactory
from tests.partner_webhooks.conftest import WEBHOOK_SCOPES, Harness, PartnerReceiver, auth
from tests.support.waiting import wait_until

PUBLIC = "93.184.215.14"
NAME = "hooks.acme.example"


class Dns:
    """Names as a test wants them to resolve, and each lookup made."""

    def __init__(self, **names: list[str]) -> None:
        self.names = {name.replace("_", "."): addresses for name, addresses in names.items()}
        self.lookups: list[str] = []

    def point(self, name: str, *addresses: str) -> None:
        self.names[name] = list(addresses)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.names:
            raise OSError(f"{host}: name or service not known")
        return [ip_address(a) for a in self.names[host]]


def dns() -> Dns:
    resolver = Dns()
    resolver.point("loopback.evil.example", "127.0.0.1")
    resolver.point("v6-loopback.evil.example", "::1")
    resolver.point("metadata.evil.example", "169.254.169.254")
    resolver.point("half.evil.example", PUBLIC, "10.1.2.3")  # every address must pass
    resolver.point("mapped.evil.example", "::ffff:192.168.1.1")
    resolver.point(NAME, PUBLIC)
    return resolver


def resolving(services: Any, resolver: Dns, *, defaults: bool = False) -> None:
    """The gateway's endpoint registry, resolving names with ``resolver`` (on the app's own pool:
    the test client runs the app on a loop of its own); with ``defaults``, the policy
    of a deployment that sets nothing (https only, no allow-list), not these tests' settings."""
    policy = (
        UrlPolicy(resolver=resolver)
        if defaults
        else UrlPolicy.from_settings(services.settings, resolver=resolver)
    )
    services.webhook_endpoints = EndpointRegistry(services.database, services.settings, policy=policy)


#: (url, words the 422's detail must hold)
HOSTILE = [
    ("https://127.0.0.1:6379/", "loopback"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "IPv4-mapped 127.0.0.1, a loopback"),
    ("https://[::ffff:7f00:1]/", "IPv4-mapped 127.0.0.1, a loopback"),
    ("https://[::127.0.0.1]/", "IPv4-compatible 127.0.0.1"),
    ("https://[2002:a00:1::]/", "6to4 address of 10.0.0.1, a private"),
    ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo address of 10.0.0.1"),
    ("https://[64:ff9b::a9fe:a9fe]/", "NAT64 address of 169.254.169.254"),
    ("https://127.1/", "non-standard notation"),
    ("https://2130706433/", "non-standard notation"),
    ("https://0x7f000001/", "non-standard notation"),
    ("https://127.0.0.1./", "non-standard notation"),
    ("https://localhost/", "single-label"),
    ("https://localhost./", "single-label"),
    ("https://api.localhost/", "local name (.localhost)"),
    ("https://metadata.google.internal/computeMetadata/v1/", "local name (.internal)"),
    ("https://redis.default.svc/", "local name (.svc)"),
    ("https://10.0.0.8/", "private"),
    ("https://172.16.4.1/", "private"),
    ("https://172.31.255.254/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://100.64.0.1/", "CGNAT"),
    ("https://[fd00::1]/", "unique local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://[::]/", "unspecified"),
    ("https://240.0.0.1/", "reserved"),
    ("https://255.255.255.255/", "reserved"),
    ("https://a b.example/", "not a valid host name"),
    ("https://loopback.evil.example/", "'loopback.evil.example' resolves to 127.0.0.1, which is a loopback"),
    ("https://v6-loopback.evil.example/", "resolves to ::1, which is a loopback"),
    ("https://metadata.evil.example/", "resolves to 169.254.169.254, which is a link-local"),
    ("https://half.evil.example/", "resolves to 10.1.2.3, which is a private"),
    ("https://mapped.evil.example/", "IPv4-mapped 192.168.1.1, a private"),
    ("http://hooks.acme.example/", "must use https"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
async def test_hostile_urls_are_refused_at_registration(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis, url: str, reason: str
) -> None:
    resolving(gateway.app.state.services, dns(), defaults=True)
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    refused = await gateway.client.post("/v1/webhook-endpoints", json={"url": url}, headers=auth(key))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert reason in refused.json()["detail"], refused.json()["detail"]
    assert (await gateway.client.get("/v1/webhook-endpoints", headers=auth(key))).json()["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        f"https://{PUBLIC}/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        f"https://{NAME}/returns",
        "https://hooks.unknown.example/returns",  # no address yet: checked at each delivery
        "https://bücher.example/hooks",
    ],
)
async def test_public_urls_are_registered(
    gateway: Gateway, make_key: KeyFactory, redis: aioredis.Redis, url: str
) -> None:
    resolving(gateway.app.state.services, dns(), defaults=True)
    key = await make_key("acme", scopes=WEBHOOK_SCOPES)
    created = await gateway.client.post("/v1/webhook-endpoints", json={"url": url}, headers=auth(key))
    assert created.status_code == 201, created.text


async def test_the_allow_list_lets_named_hosts_and_networks_through() -> None:
    resolver = dns()
    resolver.point("erp.corp.example", "10.20.0.5")
    policy = UrlPolicy(allowed_hosts="10.30.0.0/16, erp.corp.example,localhost", resolver=resolver)
    await policy.check("https://10.30.1.2/hook")
    await policy.check("https://erp.corp.example/hook")
    await policy.check("https://localhost:8443/hook")
    assert await policy.addresses("erp.corp.example", 443) == [ip_address("10.20.0.5")]
    with pytest.raises(InvalidWebhookEndpoint, match="private"):
        await policy.check("https://10.31.0.1/hook")
    with pytest.raises(ValueError, match="neither a host name nor a CIDR"):
        UrlPolicy(allowed_hosts="10.0.0.0/33")


def test_every_notation_of_a_refused_address_is_refused() -> None:
    for text in ["127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "2002:7f00:1::", "64:ff9b::7f00:1"]:
        assert address_refusal(ip_address(text)) is not None, text
    for text in [PUBLIC, "2606:4700:4700::1111", "::ffff:93.184.215.14", "2002:5db8:d70e::"]:
        assert address_refusal(ip_address(text)) is None, text


def test_the_partner_client_follows_no_redirect_and_no_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    connector = PartnerWebhookConnector("partner-webhooks", options={})
    client = partner_client(partner_options(connector), UrlPolicy())
    assert client.follow_redirects is False
    assert not client._mounts  # no proxy transport taken from the environment


# Delivery: the same policy on every connection.


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Dns:
    """What the connector's policy resolves names with (set before the harness starts it)."""
    names = dns()
    monkeypatch.setattr(PartnerWebhookConnector, "resolver", names)
    return names


@pytest.fixture
async def harness(resolver: Dns, harness: Harness, redis: aioredis.Redis) -> AsyncIterator[Harness]:
    """The harness, its gateway registering through the same names."""
    resolving(harness.client.app.state.services, resolver)
    yield harness


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


async def test_a_name_is_posted_to_at_the_address_it_was_checked_at(
    harness: Harness, resolver: Dns, receiver: tuple[PartnerReceiver, str]
) -> None:
    sandbox, base_url = receiver
    resolver.point(NAME, "127.0.0.1")  # allowed by the tests' RGW_WEBHOOK_ALLOWED_HOSTS
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(key, f"http://{NAME}:{_port(base_url)}/acme/1")
    resolver.lookups.clear()
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the delivery")

    [received] = sandbox.received("/acme/1")
    assert received["headers"]["host"] == f"{NAME}:{_port(base_url)}"  # the name, not the address
    # Resolved once, checked, and that address connected to: the system's DNS knows no such name.
    assert resolver.lookups == [NAME]


@pytest.mark.parametrize(("address", "reason"), [("127.0.0.2", "loopback"), ("10.0.0.7", "private")])
async def test_a_name_that_now_resolves_to_a_private_address_is_dead_and_never_called(
    harness: Harness, resolver: Dns, receiver: tuple[PartnerReceiver, str], address: str, reason: str
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"http://{NAME}:{_port(base_url)}/acme/1")  # public then
    resolver.point(NAME, address)
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")

    [dead] = await harness.dead_letters()
    why = msgspec.json.decode((dead.headers or {})[DEAD_REASON])
    assert why["error"] == "PermanentDeliveryFailure" and why["attempts"] == 1
    assert endpoint["id"] in why["detail"]
    assert f"'{NAME}' resolves to {address}, which is a {reason}" in why["detail"]
    assert harness.runtime.outcomes[Outcome.RETRY] == 0
    assert sandbox.state.requests == []


async def test_an_endpoint_stored_before_the_policy_is_refused_at_delivery(
    harness: Harness, database: AsyncConnectionPool, settings: Settings
) -> None:
    await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    lax = UrlPolicy(allowed_hosts="0.0.0.0/0")  # as if registered before the policy existed
    endpoint = await EndpointRegistry(database, harness.settings, policy=lax).create(
        "acme", "https://169.254.169.254/latest/meta-data/"
    )
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")
    [dead] = await harness.dead_letters()
    why = msgspec.json.decode((dead.headers or {})[DEAD_REASON])
    assert why["error"] == "PermanentDeliveryFailure"
    assert endpoint.id in why["detail"] and "169.254.169.254 is a link-local" in why["detail"]


class RedirectingReceiver(PartnerReceiver):
    """A receiver whose ``/moved/...`` answers 307 to a path it would take."""

    def handlers(self) -> list[BaseRouteHandler]:
        @post("/moved/{rest:path}", status_code=307)
        async def moved(rest: FromPath[str]) -> Response[None]:
            return Response(None, status_code=307, headers={"Location": "/acme/elsewhere"})

        return [moved, *super().handlers()]


@pytest.fixture
def redirecting() -> Iterator[tuple[RedirectingReceiver, str]]:
    sandbox = RedirectingReceiver()
    with running(sandbox) as base_url:
        yield sandbox, base_url


async def test_a_redirect_is_the_answer_not_followed(
    harness: Harness, redirecting: tuple[RedirectingReceiver, str]
) -> None:
    sandbox, base_url = redirecting
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(key, f"{base_url}/moved/1")
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")
    [dead] = await harness.dead_letters()
    why: dict[str, Any] = msgspec.json.decode((dead.headers or {})[DEAD_REASON])
    assert why["status_code"] == 307
    assert sandbox.received("/acme/elsewhere") == [] and sandbox.calls("/acme/elsewhere") == []


def _certificate(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and its key, as PEM files."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_tls_is_verified_against_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    served_as, other = _certificate(NAME, tmp_path), _certificate("other.example", tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*served_as)
    names: list[str | None] = []
    server_tls.sni_callback = lambda _socket, name, _context: names.append(name)  # type: ignore[func-returns-value]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    resolver = dns()
    resolver.point(NAME, "127.0.0.1")
    policy = UrlPolicy(allowed_hosts="127.0.0.1", resolver=resolver)
    limits = httpx.Limits(max_connections=1)
    try:
        for trusted, works in [(served_as, True), (other, False)]:
            verify = ssl.create_default_context(cafile=str(trusted[0]))
            async with httpx.AsyncClient(
                transport=policy_transport(policy, limits=limits, verify=verify)
            ) as client:
                if works:
                    assert (await client.post(f"https://{NAME}:{port}/hook")).status_code == 204
                else:  # a certificate for another name than the URL's: refused, address or not
                    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                        await client.post(f"https://{NAME}:{port}/hook")
    finally:
        server.close()
        await server.wait_closed()
    assert names and set(names) == {NAME}  # SNI is the name, though the connection went to 127.0.0.1


async def test_a_name_that_does_not_resolve_in_time_is_not_found_not_refused() -> None:
    async def slow(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return [ip_address(PUBLIC)]

    policy = UrlPolicy(resolver=slow, resolve_timeout=5)
    with pytest.raises(OSError, match=r"longer than 0\.05 s"):
        await policy.addresses(NAME, 443, within=0.05)  # a delivery's connect timeout: retried later
    await UrlPolicy(resolver=slow, resolve_timeout=0.05).check(f"https://{NAME}/")  # checked at delivery
