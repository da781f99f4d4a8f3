"""Answers to EDI trading partners: when a return that came by EDI is authorized, partly
authorized or denied, the partner gets an X12 180 (``BGN01`` 11, ``RDR01`` RA / PA / RD,
``N9*RA`` with the RMA number, each line's authorized quantity), or a UN/EDIFACT RETINS for a
return announced by RETANN, through the broker like any connector's delivery: retries, dead
letters, replay.

It takes every ``return-authorization.v1`` and answers only those of returns the EDI intake
recorded (others are acknowledged untouched). The interchange is built once per message and
kept (``GET /v1/edi/x12/returns/{id}/responses``), so a retry posts the same control number.
It is posted to the partner's ``responses.url`` from ``edi-partners.yaml`` (``application/edi-x12``,
with a bearer token from ``responses.token_env``); a partner without one fetches it over the API.

    edi-responses:
      use: gateway.edi.responder:X12ResponseConnector
      options: {timeout_seconds: 10}
"""

from __future__ import annotations

import logging
import os

import httpx
import msgspec

from gateway.edi._origin import read_origin
from gateway.edi._partners import PartnerDirectory, ResponseEndpoint
from gateway.edi._responses import EdiResponse, ResponseStore
from gateway.edi.edifact_retins import build_retins
from gateway.edi.x12_180_response import build_180_response
from gateway.errors import (
    DatabaseUnavailable,
    PermanentDeliveryFailure,
    RetryableDeliveryFailure,
    StoreUnavailable,
)
from gateway.partners.webhooks import partner_client, partner_error, partner_options
from gateway.records import ReturnStore
from gateway.sdk import Connector, Delivery, RuntimeContext, handler, raise_for_target, target_errors
from gateway.settings import Settings

log = logging.getLogger(__name__)
#: How each standard answers a decided return, and the media type it travels as.
_BUILDERS = {"x12": build_180_response, "edifact": build_retins}
_MEDIA_TYPES = {"x12": "application/edi-x12", "edifact": "application/edifact"}


class X12ResponseConnector(Connector):
    _settings: Settings | None = None

    def attach(self, context: RuntimeContext) -> None:
        self._settings = context.settings
        self._redis = context.redis
        self._responses = ResponseStore(context.redis, context.settings)
        self._returns = ReturnStore(context.database, context.settings)
        self._partners = PartnerDirectory.load(context.settings.edi_partners_file)
        self._client = partner_client(partner_options(self))

    @handler("return-authorization.v1")
    async def _answer(self, delivery: Delivery) -> None:
        if self._settings is None:
            raise TypeError(f"connector {self.name} was not attached to a runtime")
        authorization = delivery.payload
        return_id = str(authorization["return_id"])
        try:
            origin = await read_origin(self._redis, self._settings, return_id)
            if origin is None:
                return  # not an EDI return: the partner hears through its own channels
            record = await self._returns.get(return_id)
        except (StoreUnavailable, DatabaseUnavailable) as exc:
            raise RetryableDeliveryFailure(str(exc)) from exc
        if record is None:
            raise RetryableDeliveryFailure(f"return {return_id} is not recorded yet")
        request = msgspec.json.decode(record.request)
        try:
            response = await self._responses.issue(
                message_id=delivery.message_id,
                return_id=return_id,
                partner=origin.partner,
                decision=authorization["decision"],
                build=lambda control, now: _BUILDERS[origin.standard](
                    origin, authorization, request, control=control, now=now
                ),
            )
        except StoreUnavailable as exc:
            raise RetryableDeliveryFailure(str(exc)) from exc
        partner = self._partners.get(origin.partner)
        if partner is None or partner.responses is None:
            log.info("%s: 180 %s kept for %s to fetch", self.name, response.id, origin.partner)
            return
        await self._post(partner.responses, response, _MEDIA_TYPES[origin.standard])

    async def _post(self, endpoint: ResponseEndpoint, response: EdiResponse, media_type: str) -> None:
        headers = {"Content-Type": media_type, "RGW-Response-Id": response.id}
        if endpoint.token_env:
            token = os.environ.get(endpoint.token_env)
            if not token:
                raise PermanentDeliveryFailure(f"{endpoint.token_env} is not set: no token for the partner")
            headers["Authorization"] = f"Bearer {token}"
        with target_errors():
            answer = await self._client.post(
                endpoint.url, content=response.interchange.encode(), headers=headers
            )
        raise_for_target(answer, partner_error)

    async def aclose(self) -> None:
        client: httpx.AsyncClient | None = getattr(self, "_client", None)
        if client is not None:
            await client.aclose()
        await super().aclose()
