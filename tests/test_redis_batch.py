"""Script calls coalesced per event-loop turn, straight against the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.intake.batching import MAX_BATCH, ScriptBatcher
from gateway.settings import Settings
from tests.support.server import free_port

# Appends ARGV[1] to a list and answers the list's length and the value, or fails on 'boom'.
APPEND = """
if ARGV[1] == 'boom' then return redis.error_reply('refused ' .. ARGV[1]) end
return {redis.call('RPUSH', KEYS[1], ARGV[1]), ARGV[1]}
"""


@pytest.fixture
async def batcher(redis: aioredis.Redis) -> AsyncIterator[ScriptBatcher]:
    batcher = ScriptBatcher(redis)
    yield batcher
    await batcher.aclose()


@pytest.fixture
def append(redis: aioredis.Redis) -> AsyncScript:
    return redis.register_script(APPEND)


def _fresh_script(redis: aioredis.Redis) -> AsyncScript:
    """A script Redis has never seen (a unique comment gives it its own SHA)."""
    return redis.register_script(f"-- {uuid.uuid4().hex}\n{APPEND}")


async def test_concurrent_calls_share_one_connection_and_each_gets_its_own_reply(
    settings: Settings, redis: aioredis.Redis
) -> None:
    name = f"batch-{uuid.uuid4().hex[:12]}"
    named = aioredis.Redis.from_url(settings.redis_url, client_name=name)
    batcher = ScriptBatcher(named)
    try:
        script = named.register_script(APPEND)
        await redis.script_load(APPEND)  # known to Redis, without a connection of the named client
        key = settings.key("batch")
        values = [f"v{n}" for n in range(MAX_BATCH + 22)]  # more than one round trip's worth
        replies = await asyncio.gather(*(batcher.run(script, [key], [v]) for v in values))
        connections = [c for c in await redis.client_list() if c["name"] == name]
    finally:
        await batcher.aclose()
        await named.aclose()
    assert [reply[1].decode() for reply in replies] == values
    assert sorted(reply[0] for reply in replies) == list(range(1, len(values) + 1))
    assert [v.decode() for v in await redis.lrange(key, 0, -1)] == values
    # The batcher's own connection, opened with the client's settings (its name among them).
    assert len(connections) == 1, connections


async def test_a_lost_connection_fails_one_round_trip_at_most_then_reconnects(
    settings: Settings, redis: aioredis.Redis
) -> None:
    name = f"batch-{uuid.uuid4().hex[:12]}"
    named = aioredis.Redis.from_url(settings.redis_url, client_name=name)
    batcher = ScriptBatcher(named)
    script = named.register_script(APPEND)
    key = settings.key("reconnect")
    try:
        await redis.script_load(APPEND)
        assert await batcher.run(script, [key], ["before"]) == [1, b"before"]
        (connection,) = [c for c in await redis.client_list() if c["name"] == name]
        assert await redis.client_kill_filter(_id=connection["id"]) == 1
        outcomes: list[object] = []
        for attempt in ("first", "second"):
            try:
                outcomes.append(await asyncio.wait_for(batcher.run(script, [key], [attempt]), timeout=5))
            except RedisConnectionError as exc:
                outcomes.append(exc)
    finally:
        await batcher.aclose()
        await named.aclose()
    stored = [v.decode() for v in await redis.lrange(key, 0, -1)]
    if isinstance(outcomes[0], RedisConnectionError):  # the dead connection failed its round trip
        assert outcomes[1] == [2, b"second"] and stored == ["before", "second"], outcomes
    else:  # or the loss was noticed before writing, and the call went out on a new connection
        assert outcomes == [[2, b"first"], [3, b"second"]] and stored == ["before", "first", "second"]


async def test_a_silent_redis_is_a_timeout_not_a_hang() -> None:
    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
    batcher = ScriptBatcher(silent)
    try:
        script = silent.register_script(APPEND)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(batcher.run(script, ["k"], [str(n)]) for n in range(3)), return_exceptions=True),
            timeout=5,
        )
    finally:
        await batcher.aclose()
        await silent.aclose()
        server.close()
        await server.wait_closed()
    assert all(isinstance(outcome, RedisTimeoutError) for outcome in outcomes), outcomes


async def test_one_callers_script_error_leaves_the_others_alone(
    settings: Settings, batcher: ScriptBatcher, append: AsyncScript
) -> None:
    script = append
    key = settings.key("errors")
    outcomes = await asyncio.gather(
        batcher.run(script, [key], ["a"]),
        batcher.run(script, [key], ["boom"]),
        batcher.run(script, [key], ["b"]),
        return_exceptions=True,
    )
    assert outcomes[0] == [1, b"a"]
    assert isinstance(outcomes[1], ResponseError) and "refused boom" in str(outcomes[1])
    assert outcomes[2] == [2, b"b"]


async def test_a_script_redis_does_not_know_is_loaded_and_run_once(
    settings: Settings, redis: aioredis.Redis, batcher: ScriptBatcher
) -> None:
    script = _fresh_script(redis)
    key = settings.key("unknown")
    replies = await asyncio.gather(*(batcher.run(script, [key], [f"v{n}"]) for n in range(5)))
    assert sorted(reply[1] for reply in replies) == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert await redis.llen(key) == 5  # each call ran exactly once, NOSCRIPT or not


async def test_a_caller_that_gave_up_before_it_was_sent_sends_nothing(
    settings: Settings, redis: aioredis.Redis, batcher: ScriptBatcher, append: AsyncScript
) -> None:
    script = append
    key = settings.key("cancelled")
    abandoned = asyncio.create_task(batcher.run(script, [key], ["never"]))
    await asyncio.sleep(0)  # queued; its sender has not run yet
    abandoned.cancel()
    kept = await batcher.run(script, [key], ["kept"])
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert kept == [1, b"kept"]
    assert await redis.lrange(key, 0, -1) == [b"kept"]


async def test_an_unreachable_redis_fails_every_caller_of_the_round_trip() -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    batcher = ScriptBatcher(unreachable)
    try:
        script = unreachable.register_script(APPEND)
        outcomes = await asyncio.gather(
            *(batcher.run(script, ["k"], [str(n)]) for n in range(3)), return_exceptions=True
        )
    finally:
        await batcher.aclose()
        await unreachable.aclose()
    assert all(isinstance(outcome, RedisConnectionError) for outcome in outcomes), outcomes


async def test_calls_waiting_behind_a_stopped_sender_are_not_left_hanging(
    settings: Settings, batcher: ScriptBatcher, append: AsyncScript
) -> None:
    script = append
    key = settings.key("stopped")
    first = asyncio.create_task(batcher.run(script, [key], ["first"]))
    await asyncio.sleep(0)  # the sender starts with "first" and sends it
    await asyncio.sleep(0)
    behind = asyncio.create_task(batcher.run(script, [key], ["behind"]))
    await asyncio.sleep(0)  # queued while the first batch is out
    sender = batcher._sender
    assert sender is not None
    sender.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(first, behind, return_exceptions=True), timeout=5)
    assert isinstance(outcomes[1], asyncio.CancelledError), outcomes
    assert isinstance(outcomes[0], asyncio.CancelledError) or outcomes[0] == [1, b"first"], outcomes
    assert await batcher.run(script, [key], ["after"]) is not None  # a new sender takes over


LINGER = 0.5


async def test_under_load_a_batch_lingers_so_later_calls_share_its_round_trip(
    settings: Settings, redis: aioredis.Redis, append: AsyncScript
) -> None:
    batcher = ScriptBatcher(redis, linger_seconds=LINGER)
    key = settings.key("linger")
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(batcher.run(append, [key], [v]) for v in ("a", "b")))  # load: 2 calls
        started = loop.time()
        early = asyncio.create_task(batcher.run(append, [key], ["early"]))
        await asyncio.sleep(LINGER / 5)
        assert not early.done()  # held back while the batch lingers...
        late = asyncio.create_task(batcher.run(append, [key], ["late"]))
        done = await asyncio.wait_for(asyncio.gather(early, late), timeout=5)
        elapsed = loop.time() - started
    finally:
        await batcher.aclose()
    # ...so the late call rode with it: one linger in all, not one per call.
    assert [reply[1] for reply in done] == [b"early", b"late"]
    assert LINGER * 0.9 <= elapsed < LINGER * 1.8, elapsed


async def test_a_lone_call_does_not_linger(
    settings: Settings, redis: aioredis.Redis, append: AsyncScript
) -> None:
    batcher = ScriptBatcher(redis, linger_seconds=LINGER)
    key = settings.key("lone")
    loop = asyncio.get_running_loop()
    try:
        await batcher.run(append, [key], ["first"])  # a batch of one: no load
        started = loop.time()
        assert await batcher.run(append, [key], ["second"]) == [2, b"second"]
        elapsed = loop.time() - started
    finally:
        await batcher.aclose()
    assert elapsed < LINGER / 2, elapsed
