"""Idempotency keys, with Stripe's semantics and the IETF ``Idempotency-Key`` draft's status codes.

A key is scoped to its partner and kept ``idempotency_ttl_seconds``. Its record lives in
one Redis hash, and every transition is one Lua script, so two gateway replicas racing on
the same key cannot both win:

* first request claims the key (state ``in_flight``, with a lease) and gets fresh ids;
* same key, same payload, finished → the stored response is replayed;
* same key, different payload → 422; same key still in flight → 409;
* a request that failed before the broker confirmed releases the key (state ``failed``)
  so the client can retry it;
* a retry of a failed request, or of one in flight past its lease (the gateway died
  mid-request), takes the key over *keeping its ids*: if the broker did get the first
  publish after all (a confirm lost with the connection), the second carries the same
  message id and consumers deduplicate it.

The claim also reserves the partner's ``external_id``, so the same return submitted under
two different keys still becomes one return. Given the request's rate-limit
:class:`~gateway.intake.ratelimit.Admission`, the claim's script counts the request first, in the
same round trip, and touches no key when the partner is over its limit.

Redis is the fast path, not the record: for return requests, PostgreSQL keeps every key and
its answer too, and decides what Redis forgot (:class:`gateway.records.ReturnStore`); a flushed
Redis costs a round trip to the database, never an answer or a second return.
"""

from __future__ import annotations

import hashlib
import re

import msgspec
import redis.asyncio as aioredis

from gateway.errors import DuplicateReturn, IdempotencyKeyInFlight, IdempotencyKeyReused, MalformedRequest
from gateway.intake.batching import ScriptBatcher
from gateway.intake.ratelimit import Admission
from gateway.settings import Settings
from gateway.storage import redis_errors
from gateway.storage.keys import external_id_owner, idempotency_key

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_SYNTAX = re.compile(r"^[\x21-\x7e]{1,255}$")

_CLAIM = """
local count = 0
if KEYS[3] then  -- limits' fixed window (incr_expire.lua): the first request of a window starts its expiry
  count = redis.call('INCRBY', KEYS[3], 1)
  if count == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8])) end
  if count > tonumber(ARGV[7]) then return {count, 'throttled'} end
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local return_id, message_id = ARGV[3], ARGV[4]
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then
  local r = {}
  for i = 1, #h, 2 do r[h[i]] = h[i + 1] end
  if r.fingerprint ~= ARGV[1] then return {count, 'mismatch'} end
  if r.state == 'done' then return {count, 'replay', r.status, r.body, r.headers} end
  if r.state == 'in_flight' and tonumber(r.lease_until) > now_ms then return {count, 'in_flight'} end
  return_id, message_id = r.return_id, r.message_id
end
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= return_id then return {count, 'duplicate', owner} end
redis.call('SET', KEYS[2], return_id)
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'fingerprint', ARGV[1], 'token', ARGV[2],
  'return_id', return_id, 'message_id', message_id, 'lease_until', now_ms + tonumber(ARGV[5]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {count, 'claimed', return_id, message_id}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[1], 'state', 'failed')
redis.call('HDEL', KEYS[1], 'token', 'lease_until')
return 1
"""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'headers', ARGV[4])
redis.call('HDEL', KEYS[1], 'token', 'lease_until')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1
"""


class Claim(msgspec.Struct, frozen=True):
    """This request owns the key: it may publish under these ids."""

    return_id: str
    message_id: str
    token: str
    key: str
    external_key: str


class StoredResponse(msgspec.Struct, frozen=True):
    """The first response to a key, replayed to every retry with the same payload."""

    status_code: int
    body: bytes
    headers: dict[str, str]


def fingerprint(payload: object) -> str:
    """The payload's identity, independent of key order and whitespace."""
    return hashlib.sha256(msgspec.json.encode(payload, order="sorted")).hexdigest()


def parse_key(value: str | None) -> str:
    """The client's idempotency key, or a 400 explaining what is wrong with it."""
    if value is None:
        raise MalformedRequest(f"the '{HEADER}' header is required on this request")
    if not _KEY_SYNTAX.match(value):
        raise MalformedRequest(f"'{HEADER}' must be 1-255 visible ASCII characters")
    return value


class IdempotencyStore:
    """Claims, completes and releases idempotency keys in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._complete = redis.register_script(_COMPLETE)
        # Concurrent requests share round trips.
        self._scripts = ScriptBatcher(redis, linger_seconds=settings.redis_batch_linger_ms / 1000)

    async def aclose(self) -> None:
        """Close the connection claims and completions share."""
        await self._scripts.aclose()

    def _keys(self, partner: str, key: str, external_id: str) -> tuple[str, str]:
        return (
            idempotency_key(self._settings, partner, key),
            external_id_owner(self._settings, partner, external_id),
        )

    async def holder(self, partner: str, external_id: str) -> str | None:
        """The return id holding the partner's ``external_id`` (submitted, or being submitted), if
        any; a read that claims nothing."""
        with redis_errors():
            owner = await self._redis.get(external_id_owner(self._settings, partner, external_id))
        return None if owner is None else owner.decode()

    async def claim(
        self,
        *,
        partner: str,
        key: str,
        payload_fingerprint: str,
        external_id: str,
        new_ids: tuple[str, str],
        admission: Admission | None = None,
    ) -> Claim | StoredResponse:
        """Own ``key`` for this request, or get the response to replay; raises 409/422 otherwise.

        With an ``admission`` not counted yet, the request is counted against its partner's rate
        limit in the same script, first: over the limit, nothing is claimed and
        :class:`~gateway.errors.RateLimited` (429) is raised.
        """
        idem_key, external_key = self._keys(partner, key, external_id)
        token = new_ids[1]
        keys = [idem_key, external_key]
        args: list[str | int] = [
            payload_fingerprint,
            token,
            new_ids[0],
            new_ids[1],
            self._settings.idempotency_lease_seconds * 1000,
            self._settings.idempotency_ttl_seconds,
        ]
        counting = admission if admission is not None and admission.pending else None
        if counting is not None:
            counter = counting.counter
            keys.append(counter.key)
            args += [counter.limit, counter.window_seconds]
        with redis_errors():
            result = await self._scripts.run(self._claim, keys, args)
        if counting is not None:
            counting.counted(result[0])
        outcome = result[1].decode()
        if outcome == "claimed":
            return Claim(result[2].decode(), result[3].decode(), token, idem_key, external_key)
        if outcome == "replay":
            return StoredResponse(int(result[2]), bytes(result[3]), msgspec.json.decode(result[4]))
        if outcome == "mismatch":
            raise IdempotencyKeyReused(
                f"idempotency key '{key}' was already used with a different payload; use a new key"
            )
        if outcome == "in_flight":
            raise IdempotencyKeyInFlight(
                f"a request with idempotency key '{key}' is still in progress; retry shortly",
                headers={"Retry-After": "1"},
            )
        raise DuplicateReturn(
            f"external_id '{external_id}' was already submitted as return {result[2].decode()}",
            extensions={"return_id": result[2].decode()},
        )

    async def release(self, claim: Claim) -> None:
        """Mark a claim failed, so the client can retry with the same key (and the same ids)."""
        with redis_errors():
            await self._release(keys=[claim.key, claim.external_key], args=[claim.token, claim.return_id])

    async def complete(self, claim: Claim, response: StoredResponse, *, resource: tuple[str, bytes]) -> bool:
        """Store the response to replay and the resource it describes, in one atomic step.

        ``resource`` is the Redis key and value of what the request created; writing it in
        the same script means a replayable response never points at a missing resource.
        Returns ``False`` when the claim was taken over meanwhile (nothing is written then).
        """
        with redis_errors():
            written = await self._scripts.run(
                self._complete,
                [claim.key, resource[0]],
                [
                    claim.token,
                    response.status_code,
                    response.body,
                    msgspec.json.encode(response.headers),
                    self._settings.idempotency_ttl_seconds,
                    resource[1],
                ],
            )
        return bool(written)
