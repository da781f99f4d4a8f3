"""What an outbound 180 will need about a return that came by EDI, kept per return id.

When the return is decided, the 180 response goes back to the same trading partner with
the ids swapped, quoting the partner's reference (``BGN02``) and each line's item ids and
quantities. This records that at intake; :func:`read_origin` reads it back.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis

from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import edi_origin


class OriginLine(msgspec.Struct, frozen=True, kw_only=True):
    """One BLI as the partner sent it."""

    line_number: int
    item_ids: dict[str, str]
    sku: str
    quantity: float
    unit: str


class EdiOrigin(msgspec.Struct, frozen=True, kw_only=True):
    """Where a return came from, in EDI terms."""

    partner: str
    sender_qualifier: str
    sender: str
    receiver_qualifier: str
    receiver: str
    group_sender: str
    group_receiver: str
    version: str
    """GS08 of the request, for answering in the same version."""
    interchange: str
    transaction: str
    reference: str
    """BGN02: the partner's return reference, quoted in the response's BGN06/N9."""
    lines: list[OriginLine]
    standard: str = "x12"
    """``x12`` (answered with a 180) or ``edifact`` (answered with a RETINS)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EdiOrigin)


def origin_key(settings: Settings, return_id: str) -> str:
    return edi_origin(settings, return_id)


async def record_origin(redis: aioredis.Redis, settings: Settings, return_id: str, origin: EdiOrigin) -> None:
    """Keep ``origin`` for ``return_id`` (as long as the return itself: no expiry)."""
    with redis_errors():
        await redis.set(origin_key(settings, return_id), _encoder.encode(origin))


async def read_origin(redis: aioredis.Redis, settings: Settings, return_id: str) -> EdiOrigin | None:
    """The EDI origin of ``return_id``, or ``None`` for a return that did not come by EDI."""
    with redis_errors():
        raw = await redis.get(origin_key(settings, return_id))
    return None if raw is None else _decoder.decode(raw)
