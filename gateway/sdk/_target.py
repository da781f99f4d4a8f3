"""One target system as a connector sees it: a shared HTTP client and short in-process retries.

Every connector process builds one :class:`Target` per system it calls, so connections are
pooled and timeouts are the operator's (from the routing table), not each handler's guess.
A call that is safe to repeat is tried again here a few times (``target.tries``), honouring
``Retry-After``; any other call only when its connection failed to open (see
:mod:`gateway.sdk._retrying`). Anything longer is the runtime's job, through the retry queues.

The runtime puts its circuit breaker in front of the calls (:attr:`Target.guard`): each try
asks it first, and each call, once its tries are over, tells it how it ended.

The client is httpx's, over httpx-aiohttp's transport: same API, but aiohttp's connection
pool costs about a quarter of the CPU per request of httpx's own. :meth:`Target.request`
builds the request with the client and hands it straight to that transport. Both steps were
measured with ``bench.delivery``: HTTP is most of what bounds a connector process.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

import httpx
from httpx_aiohttp import AiohttpTransport

from gateway.errors import RetryableDeliveryFailure
from gateway.routing import TargetSpec
from gateway.sdk._auth import TargetConfigError, static_headers, token_source
from gateway.sdk._http import ErrorReader, plain_error, raise_for_target, target_errors
from gateway.sdk._retrying import (
    CONNECTION_FAILURES,
    call_retrying,
    repeatable,
    short_retry,
    within,
    worth_another_try,
)

__all__ = ["CONNECTION_FAILURES", "CallGuard", "Target", "TargetConfigError"]


class CallGuard(Protocol):
    """What stands in front of a target's calls: the runtime's circuit breaker."""

    def admit(self) -> int:
        """Raise ``CircuitOpen`` when the target must not be called now; else a ticket that
        :meth:`record` takes back."""
        ...

    def record(self, ticket: int, failure: BaseException | None) -> None:
        """How one call ended, once its tries are over: the exception it raised, or ``None``."""
        ...


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
        self._retrying = call_retrying(spec.tries, spec.max_retry_after_seconds, spec.timeout_seconds)
        self._timeout = spec.timeout_seconds
        self._worth_another_try = worth_another_try(spec.max_retry_after_seconds)
        self._tries = spec.tries
        self._token = token_source(spec, env, name, self._retrying)
        self.read_error: ErrorReader = plain_error
        """How this system's error bodies read; the connector sets its system's reader."""
        self.guard: CallGuard | None = None
        """The circuit breaker the runtime puts in front of the calls, if any."""
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
        supports it can refuse a repeat even if our own record of the effect was lost. Giving
        one also says the call is safe to repeat: a POST or PATCH with a key is tried again
        in-process like a GET (pass one only when the system dedupes the call, by that header
        or by an external id the body carries).
        """
        headers = dict(kwargs.pop("headers", None) or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        again = repeatable(method, idempotency_key) and self._tries > 1
        ticket = self.guard.admit() if self.guard is not None else 0
        started = time.monotonic()
        try:
            try:  # the first try runs outside tenacity: it is the common case
                response = await self._exchange(method, url, headers, kwargs, again)
            except RetryableDeliveryFailure as failure:
                if not (again and self._worth_another_try(failure)):
                    raise
                left = self._timeout - (time.monotonic() - started)
                response = await self._try_again(failure, left, method, url, headers, kwargs)
        except BaseException as exc:
            if self.guard is not None:
                self.guard.record(ticket, exc)
            raise
        if self.guard is not None:
            self.guard.record(ticket, None)
        return response

    async def _try_again(
        self,
        failure: RetryableDeliveryFailure,
        left: float,
        method: str,
        url: str,
        headers: dict[str, str],
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        """The further tries of a call safe to repeat, after its first try failed with ``failure``
        (tenacity's first attempt answers that failure, so it waits as it asked); none starts
        ``left`` seconds or more from now (the target's timeout, less the first try's time)."""
        first: list[RetryableDeliveryFailure] = [failure]

        async def attempt() -> httpx.Response:
            if first:
                raise first.pop()
            if self.guard is not None:
                self.guard.admit()  # opened meanwhile: stop here, the breaker decides
            return await self._exchange(method, url, headers, kwargs, True)

        retrying = self._retrying.copy(stop=within(self._tries, left))
        response: httpx.Response = await retrying(attempt)
        return response

    async def _exchange(
        self, method: str, url: str, headers: dict[str, str], kwargs: dict[str, Any], again: bool
    ) -> httpx.Response:
        """One try: the request sent (its token renewed once if refused), the reply classified.
        A connection that failed to open is tried again here unless the caller tries ``again``."""
        for _ in range(2):  # a refused token is renewed once; a second 401 is the answer
            if self._token is not None:
                headers["Authorization"] = await self._token.header(self.client)
            request = self.client.build_request(method, self._absolute(url), headers=headers, **kwargs)
            with target_errors():
                try:
                    response = await self._send(request)
                except CONNECTION_FAILURES:
                    if again:
                        raise
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
