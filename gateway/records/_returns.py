"""Accepted returns as the gateway knows them: who sent what, and where it stands."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

import msgspec
import redis.asyncio as aioredis

from gateway.auth import Principal
from gateway.errors import NotFound
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import return_record

INITIAL_STATUS = "requested"
_MAX_ID_LENGTH = 64


class ReturnRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted return; written only after the broker confirmed its message."""

    id: str
    partner: str
    external_id: str
    status: str
    contract: str
    contract_version: str
    accepted_at: dt.datetime
    updated_at: dt.datetime
    message_id: str
    request: msgspec.Raw


class ReturnReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What ``POST /v1/returns`` answers: which return it became and where it stands.

    A receipt, not the resource: the request it carried is at ``GET /v1/returns/{id}``, so
    the answer replayed to a retry (kept a day per key) does not hold the body a second time.
    """

    object: str = "return"
    id: str
    partner: str
    external_id: str
    status: str
    contract: str
    contract_version: str
    accepted_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, record: ReturnRecord, **more: Any) -> Self:
        """This view of ``record``; ``more`` fills a subclass's own fields."""
        return cls(
            id=record.id,
            partner=record.partner,
            external_id=record.external_id,
            status=record.status,
            contract=record.contract,
            contract_version=record.contract_version,
            accepted_at=record.accepted_at,
            updated_at=record.updated_at,
            **more,
        )


class ReturnResource(ReturnReceipt, frozen=True, kw_only=True):
    """A return as ``GET /v1/returns/{id}`` shows it: the receipt and the request as accepted."""

    request: msgspec.Raw


_encoder = msgspec.json.Encoder()


def render_receipt(record: ReturnRecord) -> bytes:
    """The JSON ``POST /v1/returns`` answers for an accepted return."""
    return _encoder.encode(ReturnReceipt.of(record))


def render_return(record: ReturnRecord) -> bytes:
    """The API's JSON for a return."""
    return _encoder.encode(ReturnResource.of(record, request=record.request))


class ReturnStore:
    """Reads and writes return records in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._decoder = msgspec.json.Decoder(ReturnRecord)

    def _key(self, return_id: str) -> str:
        return return_record(self._settings, return_id)

    def entry(self, record: ReturnRecord) -> tuple[str, bytes]:
        """The Redis key and value that store ``record``."""
        return self._key(record.id), msgspec.json.encode(record)

    async def get(self, return_id: str) -> ReturnRecord | None:
        """The record, or ``None`` if no return has this id."""
        with redis_errors():
            raw = await self._redis.get(self._key(return_id))
        return None if raw is None else self._decoder.decode(raw)

    async def visible_to(self, principal: Principal, return_id: str) -> ReturnRecord:
        """The caller's return (any return for an operator); another partner's is 404, exactly as
        one that does not exist, so ids of other partners' returns reveal nothing."""
        record = await self.get(return_id) if len(return_id) <= _MAX_ID_LENGTH else None
        if record is None or (record.partner != principal.partner and not principal.is_admin):
            raise NotFound(f"no return '{return_id}' for this partner")
        return record
