"""Credentials for a target: a static header (bearer token, Basic), or OAuth2 client
credentials with the token cached until shortly before it expires.

The client credentials grant is one form POST and a cache; it runs on the target's own
pooled client, so a connector keeps one HTTP stack rather than a second OAuth client's. The
grant is safe to repeat (it only issues a token), so a failed one is tried again like the
target's idempotent calls, while the requests waiting for the token wait for that one fetch.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Mapping

import httpx
from tenacity import AsyncRetrying

from gateway.errors import ConfigurationError
from gateway.routing import BasicAuth, OAuth2ClientCredentials, TargetSpec
from gateway.sdk._http import raise_for_target, reply_json, target_errors


class TargetConfigError(ConfigurationError):
    """A target's settings cannot be used (a missing credential, say)."""


def _secret(environ: Mapping[str, str], name: str, target: str) -> str:
    value = environ.get(name)
    if not value:
        raise TargetConfigError(f"target {target}: environment variable {name} is not set")
    return value


class ClientCredentialsToken:
    """A bearer token from an OAuth2 token endpoint, fetched on first use and before expiry."""

    #: Renew this long before the token's stated expiry, so no request carries a dying token.
    EARLY_SECONDS = 60.0

    def __init__(
        self,
        spec: OAuth2ClientCredentials,
        environ: Mapping[str, str],
        target: str,
        retrying: AsyncRetrying | None = None,
    ) -> None:
        self._spec = spec
        self._retrying = retrying
        self._client_id = _secret(environ, spec.client_id_env, target)
        self._client_secret = _secret(environ, spec.client_secret_env, target)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0
        """Tokens fetched so far (a test, or an operator, can see re-authentication happen)."""

    async def header(self, client: httpx.AsyncClient) -> str:
        if self._token is None or time.monotonic() >= self._expires_at:
            async with self._lock:  # one fetch however many requests are waiting for it
                if self._token is None or time.monotonic() >= self._expires_at:
                    if self._retrying is None:
                        await self._fetch(client)
                    else:
                        await self._retrying.copy()(self._fetch, client)
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """The target refused the token (revoked, rotated): fetch a new one next time."""
        self._token = None

    async def _fetch(self, client: httpx.AsyncClient) -> None:
        form = {"grant_type": "client_credentials"}
        if self._spec.scope:
            form["scope"] = self._spec.scope
        auth: httpx.Auth | None = None
        if self._spec.client_auth == "body":
            form |= {"client_id": self._client_id, "client_secret": self._client_secret}
        else:
            auth = httpx.BasicAuth(self._client_id, self._client_secret)
        with target_errors():
            response = await client.post(self._spec.token_url, data=form, auth=auth)
        raise_for_target(response)
        body = reply_json(response)
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 3600))
        self._expires_at = time.monotonic() + max(lifetime - self.EARLY_SECONDS, lifetime / 2)
        self.fetched += 1


def static_headers(spec: TargetSpec, environ: Mapping[str, str], target: str) -> dict[str, str]:
    """Headers every request carries: a bearer token from ``token_env``, or Basic credentials."""
    if spec.token_env:
        return {"Authorization": f"Bearer {_secret(environ, spec.token_env, target)}"}
    if isinstance(spec.auth, BasicAuth):
        user = _secret(environ, spec.auth.username_env, target)
        password = _secret(environ, spec.auth.password_env, target) if spec.auth.password_env else ""
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


def token_source(
    spec: TargetSpec, environ: Mapping[str, str] | None, target: str, retrying: AsyncRetrying | None = None
) -> ClientCredentialsToken | None:
    """The token fetcher of a target with OAuth2 client credentials; ``retrying`` is the policy a
    failed grant is tried again under (none: the failure is the caller's at once)."""
    if isinstance(spec.auth, OAuth2ClientCredentials):
        return ClientCredentialsToken(spec.auth, os.environ if environ is None else environ, target, retrying)
    return None
