"""One target system as a connector sees it: a shared HTTP client and a short in-process retry.

Every connector process builds one :class:`Target` per system it calls, so connections are
pooled and timeouts are the operator's (from the routing table), not each handler's guess.
A failure to open or reuse a connection is retried here for a moment; anything longer is
the runtime's job, through the retry queues.

The client is httpx's, over httpx-aiohttp's transport: same API, but aiohttp's connection
pool costs about a quarter of the CPU per request of httpx's own. :meth:`Target.request`
builds the request with the client and hands it straight to that transport. Both steps were
measured with ``bench.delivery``: HTTP is most of what bounds a connector process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gateway.routing import TargetSpec
from gateway.sdk._auth import TargetConfigError, static_headers, token_source
from gateway.sdk._http import ErrorReader, plain_error, raise_for_target, target_errors

__all__ = ["CONNECTION_FAILURES", "Target", "TargetConfigError"]

log = logging.getLogger(__name__)

#: Connection failures (refused, reset, dropped while idle in the pool): worth another try
#: at once. Safe even if the request had left: it carries its idempotency key.
CONNECTION_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: The short in-process retry after a first failed try: two more within about half a second.
short_retry = AsyncRetrying(
    retry=retry_if_exception_type(CONNECTION_FAILURES),
    stop=stop_after_attempt(2),
    wait=wait_exponential_jitter(multiplier=0.05, max=0.3, jitter=0.05),
    before_sleep=before_sleep_log(log, logging.WARNING),
    reraise=True,
)


class Target:
    """A target system: name, shared ``httpx.AsyncClient``, and the call that classifies replies."""

    def __init__(
        self,
        name: str,
        spec: TargetSpec,
        *,
        environ: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        env = os.environ if environ is None else environ
        headers = {"User-Agent": "returns-gateway", **static_headers(spec, env, name)}
        self._token = token_source(spec, env, name)
        self.read_error: ErrorReader = plain_error
        """How this system's error bodies read; the connector sets its system's reader."""
        limits = httpx.Limits(
            max_connections=spec.max_connections, max_keepalive_connections=spec.max_connections
        )
        self._transport = transport or AiohttpTransport(limits=limits)
        self._resolved: dict[str, httpx.URL] = {}
        self.client = httpx.AsyncClient(
            base_url=spec.base_url,
            headers=headers,
            timeout=httpx.Timeout(spec.timeout_seconds, connect=spec.connect_timeout_seconds),
            transport=self._transport,
        )

    async def request(
        self, method: str, url: str, *, idempotency_key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; a non-2xx reply or a transport failure raises our delivery failures.

        ``idempotency_key`` goes out as the ``Idempotency-Key`` header, so a target that
        supports it can refuse a repeat even if our own record of the effect was lost.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        for _ in range(2):  # a refused token is renewed once; a second 401 is the answer
            if self._token is not None:
                headers["Authorization"] = await self._token.header(self.client)
            request = self.client.build_request(method, self._absolute(url), headers=headers, **kwargs)
            with target_errors():
                try:
                    response = await self._send(request)
                except CONNECTION_FAILURES:  # the first try runs outside tenacity: it is the common case
                    response = await short_retry.copy()(self._send, request)
            if response.status_code != 401 or self._token is None:
                break
            self._token.invalidate()
        raise_for_target(response, self.read_error)
        return response

    def _absolute(self, url: str) -> httpx.URL:
        """``url`` resolved against the base URL, remembered: connectors call a few paths often."""
        resolved = self._resolved.get(url)
        if resolved is None:
            resolved = self.client.build_request("GET", url).url
            if len(self._resolved) < 1024:  # paths with ids in them would otherwise grow it forever
                self._resolved[url] = resolved
        return resolved

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Straight to the pooled transport: a target call needs none of the client's cookie,
        redirect or auth handling, and skipping them is a fifth of a delivery's CPU."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        await response.aread()
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def aclose(self) -> None:
        await self.client.aclose()
