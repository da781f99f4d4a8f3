"""Accepted returns as the gateway knows them: who sent what, and where it stands."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

import msgspec

INITIAL_STATUS = "requested"


class ReturnRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted return, as the API shows it (read from PostgreSQL: :class:`ReturnStore`)."""

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
