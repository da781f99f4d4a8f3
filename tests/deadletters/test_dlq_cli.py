"""``returns-gateway dlq`` as an operator runs it: a real process against RabbitMQ and Redis."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from gateway.broker.headers import DEAD_REASON, REPLAY_OF
from gateway.deadletters import AuditLog, corrected_message_id
from tests.conftest import AMQP_URL, REDIS_URL
from tests.deadletters.conftest import DeadLetters, envelope
from tests.support.server import cli


@pytest.fixture
def env(topology: DeadLetters, redis: aioredis.Redis) -> dict[str, str]:
    assert topology.settings.routes_file is not None
    return {
        "RGW_NAMESPACE": topology.settings.namespace,
        "RGW_AMQP_URL": AMQP_URL,
        "RGW_REDIS_URL": REDIS_URL,
        "RGW_ROUTES_FILE": str(topology.settings.routes_file),
        "RGW_DATABASE_URL": topology.settings.database,
    }


def _run(env: dict[str, str], *args: str) -> str:
    """Run the CLI and insist it succeeded; called off the event loop (``asyncio.to_thread``)."""
    result = cli(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_replay_all_moves_every_dead_letter_once(
    topology: DeadLetters, env: dict[str, str], database: AsyncConnectionPool
) -> None:
    sent = [(await topology.publish("records"))["message_id"] for _ in range(30)]
    await topology.publish("crm")  # another connector's dead letters stay where they are

    result = await asyncio.to_thread(cli, env, "dlq", "replay", "records", "--all", "--note", "ERP back up")
    assert result.returncode == 0, result.stderr
    assert "replayed 30 of 30 dead letter(s) of records" in result.stdout
    assert "Traceback" not in result.stderr

    copies = await topology.drain(topology.queue("records"))
    assert [c.message_id for c in copies] == sent
    assert all(DEAD_REASON not in (c.headers or {}) and (c.headers or {})[REPLAY_OF] for c in copies)
    assert await topology.depth(topology.dlq("records")) == 0
    assert await topology.depth(topology.dlq("crm")) == 1
    assert await topology.drain(topology.queue("crm")) == []

    entries = await AuditLog(database, topology.settings).recent(100)
    assert len(entries) == 30
    assert {e.actor for e in entries} == {f"cli:{getpass.getuser()}"}
    assert {e.note for e in entries} == {"ERP back up"}
    assert sorted(e.message_id for e in entries) == sorted(sent)


async def test_list_show_replay_with_a_correction_and_discard(
    topology: DeadLetters, env: dict[str, str], tmp_path: Path
) -> None:
    fixed, dropped, poison = envelope(), envelope(), envelope()
    await topology.publish("records", fixed, detail="target answered 422: unknown SKU")
    await topology.publish("records", dropped)
    await topology.poison("records", poison)

    listed = await asyncio.to_thread(_run, env, "dlq", "list")
    assert "records: 3 dead letter(s)" in listed and "crm: 0 dead letter(s)" in listed
    for message_id in (fixed["message_id"], dropped["message_id"], poison["message_id"]):
        assert message_id in listed
    assert "DeliveryLimitExceeded" in listed and "PermanentDeliveryFailure" in listed

    shown = json.loads(
        await asyncio.to_thread(_run, env, "dlq", "show", "records", fixed["message_id"], "--json")
    )
    assert shown["envelope"] == fixed and shown["reason"]["detail"] == "target answered 422: unknown SKU"
    human = await asyncio.to_thread(_run, env, "dlq", "show", "records", poison["message_id"])
    assert "DeliveryLimitExceeded" in human and "broker" in human
    assert await topology.depth(topology.dlq("records")) == 3  # browsing took nothing

    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**fixed["payload"], "lines": []}))
    refused = await asyncio.to_thread(
        cli, env, "dlq", "replay", "records", fixed["message_id"], "--payload", str(invalid)
    )
    assert refused.returncode == 1 and "/lines" in refused.stderr
    assert await topology.depth(topology.dlq("records")) == 3

    corrected = {**fixed["payload"], "notes": "SKU corrected by ops"}
    good = tmp_path / "corrected.json"
    good.write_text(json.dumps(corrected))
    replayed = await asyncio.to_thread(
        _run, env, "dlq", "replay", "records", fixed["message_id"], "--payload", str(good), "--note", "SKU"
    )
    new_id = corrected_message_id(fixed["message_id"], corrected)
    assert f"replayed {fixed['message_id']} as {new_id}" in replayed
    (copy,) = await topology.drain(topology.queue("records"))
    assert copy.message_id == new_id and msgspec.json.decode(copy.body)["payload"] == corrected

    no_reason = await asyncio.to_thread(cli, env, "dlq", "discard", "records", dropped["message_id"])
    assert no_reason.returncode != 0 and "Traceback" not in no_reason.stderr
    assert await topology.depth(topology.dlq("records")) == 2
    discarded = await asyncio.to_thread(
        _run,
        env,
        "dlq",
        "discard",
        "records",
        dropped["message_id"],
        poison["message_id"],
        "--reason",
        "dupes",
    )
    assert (
        f"discarded {dropped['message_id']}" in discarded and f"discarded {poison['message_id']}" in discarded
    )
    assert await topology.depth(topology.dlq("records")) == 0

    audit = await asyncio.to_thread(_run, env, "dlq", "audit")
    assert audit.count("discard") == 2 and "replay (corrected)" in audit and new_id in audit


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "replay", "records"),  # neither ids nor --all
        ("dlq", "replay", "records", "msg_x", "--all"),
        ("dlq", "replay", "records", "--all", "--payload", "pyproject.toml"),
        ("dlq", "show", "nope", "msg_x"),
        ("dlq", "show", "records", "msg_missing"),
        ("dlq", "discard", "records", "msg_missing", "--reason", "x"),
    ],
)
async def test_bad_input_fails_clearly(env: dict[str, str], args: tuple[str, ...]) -> None:
    result = await asyncio.to_thread(cli, env, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
