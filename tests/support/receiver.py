"""A partner's HTTP inbox (webhooks, EDI): takes any POST and keeps what it was sent."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath

from gateway.sandbox import Sandbox


class PartnerReceiver(Sandbox):
    """A partner's webhook receiver: takes any POST and keeps its headers and raw body, per
    path (``/<partner>/<n>``); faults are queued on ``state.faults`` as for any sandbox."""

    profile = "partner-receiver"

    def authorized(self, request: Request[Any, Any, Any]) -> bool:
        return True  # our requests are signed, not authenticated

    def handlers(self) -> list[BaseRouteHandler]:
        state = self.state

        @post("/{rest:path}", status_code=204)
        async def receive(request: Request[Any, Any, Any], rest: FromPath[str]) -> None:
            body = await request.body()
            state.put(request.url.path, state.new_id(), {"headers": dict(request.headers), "body": body})

        return [receive]

    def received(self, path: str) -> list[dict[str, Any]]:
        """What reached ``path`` and was answered 2xx, in order."""
        return self.state.all(path)

    def calls(self, path: str) -> list[float]:
        """When ``path`` was called, faulted calls included."""
        return [seen.at for seen in self.state.requests_to("POST", path)]
