"""180 responses the gateway issued, kept so a partner can fetch them again over the API and so
a retried delivery sends the very same interchange (same control number) rather than a new one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec
import redis.asyncio as aioredis

from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import edi_response, edi_response_control, edi_responses

_CONTROL_MODULUS = 1_000_000_000  # ISA13 has nine digits


class EdiResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One outbound interchange answering a partner's return."""

    id: str
    return_id: str
    partner: str
    decision: str
    control: int
    created_at: dt.datetime
    interchange: str


_decoder = msgspec.json.Decoder(EdiResponse)


class ResponseStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings

    def _key(self, response_id: str) -> str:
        return edi_response(self._settings, response_id)

    def _of_return(self, return_id: str) -> str:
        return edi_responses(self._settings, return_id)

    async def issue(
        self,
        *,
        message_id: str,
        return_id: str,
        partner: str,
        decision: str,
        build: Callable[[int, dt.datetime], str],
    ) -> EdiResponse:
        """The response to the message ``message_id``: built once (with a fresh control number),
        the same one every time after."""
        response_id = f"edr_{message_id}"[:200]
        with redis_errors():
            held = await self._redis.get(self._key(response_id))
            if held is not None:
                return _decoder.decode(held)
            control = int(await self._redis.incr(edi_response_control(self._settings, partner)))
            control = control % _CONTROL_MODULUS or 1
            now = dt.datetime.now(dt.UTC)
            response = EdiResponse(
                id=response_id,
                return_id=return_id,
                partner=partner,
                decision=decision,
                control=control,
                created_at=now,
                interchange=build(control, now),
            )
            if await self._redis.set(self._key(response_id), msgspec.json.encode(response), nx=True):
                await self._redis.rpush(self._of_return(return_id), response_id)
                return response
            return _decoder.decode(await self._redis.get(self._key(response_id)))  # a concurrent try won

    async def get(self, response_id: str) -> EdiResponse | None:
        with redis_errors():
            raw = await self._redis.get(self._key(response_id))
        return None if raw is None else _decoder.decode(raw)

    async def for_return(self, return_id: str) -> list[EdiResponse]:
        with redis_errors():
            ids = await self._redis.lrange(self._of_return(return_id), 0, -1)
            keys = [self._key(i.decode() if isinstance(i, bytes) else i) for i in ids]
            raws = await self._redis.mget(keys) if keys else []
        return [_decoder.decode(raw) for raw in raws if raw is not None]
