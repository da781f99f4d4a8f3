"""Where the gateway may post partners' webhooks: public https hosts only (no SSRF).

A partner chooses the URL, so without a policy it could make the gateway call Redis on
loopback, the cloud's metadata service (169.254.169.254) or anything else on our private
network. :class:`UrlPolicy` refuses, with a reason:

* a scheme other than https (``RGW_WEBHOOK_ALLOW_HTTP`` adds http), credentials, a fragment;
* a host that is not a plain DNS name or a standard IP literal (``a b``, ``127.1``,
  ``2130706433``, ``0x7f000001``: numeric hosts only in dotted-quad or bracketed IPv6);
* local names: one label (resolved through search domains), ``localhost``, ``.local``,
  ``.internal`` (``metadata.google.internal``), ``.home.arpa``, ``.svc``...;
* any address that is not public unicast: loopback, private (RFC 1918), link-local, shared
  (CGNAT 100.64/10), unique local, site-local, multicast, unspecified, reserved,
  documentation, benchmarking; and IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo
  addresses whose embedded IPv4 address is any of those.

A name is resolved as the HTTP client would (``getaddrinfo``) and *every* address it gives
must pass. The check runs when an endpoint is registered and again on every connection at
delivery (DNS can change): :func:`policy_transport` resolves once, checks, and connects to
the very address it checked, so a DNS rebinding between check and connect cannot win. TLS
still verifies the certificate against the name.

``RGW_WEBHOOK_ALLOWED_HOSTS`` lets a deployment reach an internal receiver on purpose: host
names (trusted with whatever they resolve to) and CIDRs (addresses allowed whatever they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from gateway.errors import InvalidWebhookEndpoint
from gateway.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""``(host, port) -> addresses``; raises ``OSError`` (``socket.gaierror``) when the name does not
resolve. Injectable so tests can make a name resolve where they need it."""

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5.0

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
#: IPv4 ranges that are not public unicast, with the reason a partner reads.
_REFUSED_V4: tuple[tuple[IPNetwork, str], ...] = (
    (_V4("0.0.0.0/8"), "an unspecified ('this network') address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("169.254.0.0/16"), "a link-local address (cloud metadata lives there)"),
    (_V4("100.64.0.0/10"), "a shared (CGNAT) address"),
    (_V4("192.0.0.0/24"), "a reserved (IETF protocol) address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("192.88.99.0/24"), "a reserved (6to4 relay) address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)
_REFUSED_V6: tuple[tuple[IPNetwork, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("fc00::/7"), "a unique local (private) address"),
    (_V6("ff00::/8"), "a multicast address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("2001:db8::/32"), "a documentation address"),
)
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_V4_COMPATIBLE = _V6("::/96")

#: Names that only mean something inside a network (RFC 6761, 6762, 8375, ICANN's .internal)
#: or a cluster (Kubernetes services): never a partner's public endpoint.
_LOCAL_SUFFIXES = ("localhost", "localdomain", "local", "internal", "home.arpa", "arpa", "svc", "lan")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or ``None`` if it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            kind, v4 = embedded
            reason = address_refusal(v4)
            return None if reason is None else f"{kind} {v4}, {reason}"
        refused = _REFUSED_V6
    else:
        refused = _REFUSED_V4
    for network, reason in refused:
        if address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "a reserved address"
    if not address.is_global:  # whatever else Python's registry of special ranges knows
        return "not a public address"
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 one carries (and routes to), with how it carries it."""
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "a 6to4 address of", address.sixtofour
    if address.teredo is not None:
        return "a Teredo address of", address.teredo[1]
    if address in _NAT64:
        return "a NAT64 address of", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V4_COMPATIBLE and int(address) > 1:  # ::a.b.c.d (:: and ::1 are themselves)
        return "an IPv4-compatible", ipaddress.IPv4Address(int(address))
    return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses ``getaddrinfo`` gives, as the HTTP client would look them up, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _refused(detail: str) -> InvalidWebhookEndpoint:
    return InvalidWebhookEndpoint(f"the url is not allowed: {detail}")


class UrlPolicy:
    """Which URLs partners' webhooks may be posted to; see the module's docstring."""

    def __init__(
        self,
        *,
        allow_http: bool = False,
        allowed_hosts: str | Iterable[str] = (),
        resolver: Resolver | None = None,
        resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS,
    ) -> None:
        self.allow_http = allow_http
        entries = allowed_hosts.replace(",", " ").split() if isinstance(allowed_hosts, str) else allowed_hosts
        self._allowed_names: set[str] = set()
        self._allowed_networks: list[IPNetwork] = []
        for entry in entries:
            try:
                self._allowed_networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                name = entry.strip().lower().rstrip(".")
                if not name or not all(_LABEL.match(label) for label in name.split(".")):
                    raise ValueError(
                        f"RGW_WEBHOOK_ALLOWED_HOSTS: {entry!r} is neither a host name nor a CIDR"
                    ) from None
                self._allowed_names.add(name)
        self._resolve = resolver or system_resolver
        self._resolve_timeout = resolve_timeout

    @classmethod
    def from_settings(cls, settings: Settings, *, resolver: Resolver | None = None) -> UrlPolicy:
        return cls(
            allow_http=settings.webhook_allow_http,
            allowed_hosts=settings.webhook_allowed_hosts,
            resolver=resolver,
        )

    def check_url(self, url: str) -> httpx.URL:
        """``url`` parsed as the HTTP client will, if nothing short of DNS forbids it;
        :class:`InvalidWebhookEndpoint` (422) says why not."""
        if len(url) > MAX_URL_LENGTH:
            raise InvalidWebhookEndpoint(f"the url is longer than {MAX_URL_LENGTH} characters")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise InvalidWebhookEndpoint(f"not a valid URL: {exc}") from exc
        allowed = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in allowed:
            raise InvalidWebhookEndpoint(f"the url must use {' or '.join(allowed)}, not '{parsed.scheme}'")
        if not parsed.host:
            raise InvalidWebhookEndpoint("the url has no host")
        if parsed.userinfo:
            raise InvalidWebhookEndpoint("the url must not carry credentials; events are signed instead")
        if parsed.fragment:
            raise InvalidWebhookEndpoint("the url must not have a fragment")
        self.check_host(parsed.raw_host.decode("ascii"))
        return parsed

    def check_host(self, host: str) -> None:
        """Refuse a host (as the client connects to it: IDNA-encoded, IPv6 unbracketed) that is
        not a public name or address, unless the allow-list names it."""
        literal = _ip_literal(host)
        if literal is not None:
            self._check_address(literal, str(literal))
            return
        name = host.lower().rstrip(".")
        if name in self._allowed_names:
            return
        labels = name.split(".")
        if not all(_LABEL.match(label) for label in labels):
            raise _refused(f"'{host}' is not a valid host name")
        if _NUMERIC_LABEL.match(labels[-1]):  # 127.1, 2130706433, 0x7f000001, 0177.0.0.1
            raise _refused(f"'{host}' is an IP address in a non-standard notation")
        if len(labels) == 1:
            raise _refused(f"'{host}' is a single-label name, resolved inside our network")
        for suffix in _LOCAL_SUFFIXES:
            if name == suffix or name.endswith("." + suffix):
                raise _refused(f"'{host}' is a local name (.{suffix}), not a public host")

    def _check_address(self, address: IPAddress, shown: str) -> None:
        """Refuse ``address`` (``shown`` so in the reason) unless it is public or allowed."""
        if any(address in network for network in self._allowed_networks):
            return
        reason = address_refusal(address)
        if reason is not None:
            raise _refused(f"{shown} is {reason}")

    async def addresses(self, host: str, port: int, *, within: float | None = None) -> list[IPAddress]:
        """Where to connect for ``host``: every address it resolves to, each one checked
        (:class:`InvalidWebhookEndpoint` if any is refused); ``OSError`` if it does not resolve
        (within ``within`` seconds, or the policy's own resolve timeout, whichever is shorter)."""
        self.check_host(host)
        literal = _ip_literal(host)
        if literal is not None:
            return [literal]
        limit = self._resolve_timeout if within is None else min(within, self._resolve_timeout)
        try:
            async with asyncio.timeout(limit):
                resolved = await self._resolve(host, port)
        except TimeoutError as exc:
            raise OSError(f"resolving {host} took longer than {limit} s") from exc
        if not resolved:
            raise OSError(f"{host} resolves to no address")
        if host.lower().rstrip(".") not in self._allowed_names:
            for address in resolved:
                self._check_address(address, f"'{host}' resolves to {address}, which")
        return resolved

    async def check(self, url: str) -> httpx.URL:
        """:meth:`check_url`, then every address the host resolves to. A name that does not
        resolve (yet) passes: each delivery resolves and checks it again before connecting."""
        parsed = self.check_url(url)
        with contextlib.suppress(OSError):
            await self.addresses(parsed.raw_host.decode("ascii"), parsed.port or _default_port(parsed))
        return parsed


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to an address the policy
    resolved and checked, in that same step."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._policy.addresses(host, port, within=timeout)  # the connect timeout
        except OSError as exc:  # not refused, just not found (now): a connection failure
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never posted to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PolicyTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over :class:`_CheckedBackend` (same pool, TLS and HTTP/1.1)."""

    def __init__(self, policy: UrlPolicy, *, limits: httpx.Limits, verify: ssl.SSLContext | bool) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx builds its connection pool without a way to pass a network backend: build the
        # same pool with ours (the pool is httpx's only state; tests/partner_webhooks pins this).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(policy),
        )


def policy_transport(
    policy: UrlPolicy, *, limits: httpx.Limits, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncBaseTransport:
    """A transport that connects only where ``policy`` allows (and never through a proxy)."""
    return _PolicyTransport(policy, limits=limits, verify=verify)
