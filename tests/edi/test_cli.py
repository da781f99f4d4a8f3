"""``returns-gateway edi validate`` offline, and ``edi submit`` against a running gateway."""

from __future__ import annotations

import uuid
from pathlib import Path

from aio_pika.abc import AbstractRobustConnection
from typer.testing import CliRunner

from gateway.broker import unrouted_name
from gateway.cli import app
from gateway.settings import Settings
from tests.conftest import AMQP_URL, REDIS_URL, KeyFactory
from tests.edi.edifact import edifact, retann
from tests.edi.x12 import interchange, reference, return_set
from tests.support.server import running_gateway
from tests.support.waiting import wait_until

runner = CliRunner()
BAD_UNIT = [["BLI", "VN", "SSD-SAM-PM893-1T92", "1", "ZZ", "CON", "1"]]


def _file(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def test_validate_reports_each_set_and_prints_the_997(tmp_path: Path) -> None:
    good = _file(tmp_path, "good.x12", interchange([[return_set("RQ-GOOD")]], newline="\n"))
    result = runner.invoke(app, ["edi", "validate", str(good)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "partner nordwind" in result.output and "RQ-GOOD" in result.output and "accepted" in result.output
    assert "AK5*A~" in result.output and "AK9*A*1*1*1~" in result.output

    bad = _file(tmp_path, "bad.x12", interchange([[return_set(), return_set(lines=BAD_UNIT)]]))
    result = runner.invoke(app, ["edi", "validate", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "invalid code value" in result.output and "AK4*4*355*7*ZZ~" in result.output
    assert "AK9*P*2*2*1~" in result.output


def test_validate_an_unusable_file_exits_2(tmp_path: Path) -> None:
    truncated = _file(tmp_path, "cut.x12", interchange([[return_set()]])[:-20])
    result = runner.invoke(app, ["edi", "validate", str(truncated)])
    assert result.exit_code == 2
    assert "truncated" in result.output


async def test_submit_sends_each_file_with_its_997_summary(
    tmp_path: Path, settings: Settings, make_key: KeyFactory, redis, amqp: AbstractRobustConnection
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    good = _file(tmp_path, "good.x12", interchange([[return_set(), return_set()]]))
    mixed = _file(tmp_path, "mixed.x12", interchange([[return_set(), return_set(lines=BAD_UNIT)]]))
    announced = _file(tmp_path, "announced.edi", edifact([retann(reference())]))  # EDIFACT, told by UNA
    env = {
        "RGW_NAMESPACE": settings.namespace,
        "RGW_REDIS_URL": REDIS_URL,
        "RGW_AMQP_URL": AMQP_URL,
        "RGW_AUTH_CACHE_SECONDS": "0",
    }
    with running_gateway(env) as url:
        first = runner.invoke(
            app, ["edi", "submit", str(good), str(mixed), str(announced), "--url", url, "--key", key]
        )
        again = runner.invoke(app, ["edi", "submit", str(good), "--url", url, "--key", key])
    assert first.exit_code == 1, first.output  # one set of mixed.x12 was rejected
    assert "AK9*A*2*2*2" in first.output and "AK9*P*2*2*1" in first.output
    assert "UCI 7 UCM 7" in first.output
    assert again.exit_code == 0, again.output
    assert "(replayed)" in again.output

    channel = await amqp.channel()
    queue = await channel.declare_queue(unrouted_name(settings), passive=True)

    async def four_returns() -> bool:
        declared = await channel.declare_queue(unrouted_name(settings), passive=True)
        return declared.declaration_result.message_count == 4

    await wait_until(four_returns, what="four returns (three by X12, one by EDIFACT) in the unrouted queue")
    assert queue.name == unrouted_name(settings)


def test_validate_tells_edifact_from_x12_and_prints_the_contrl(tmp_path: Path) -> None:
    bad_unit = [
        ["LIN", "1", "", ["SSD-SAM-PM893-1T92", "VN"]],
        ["QTY", ["61", "1", "ZZ"]],
        ["PRI", ["AAA", "1"]],
    ]
    body = edifact([retann("RQ-GOOD"), retann("RQ-BAD", lines=bad_unit)], newline="\n", una=False)
    path = _file(tmp_path, "returns.edi", b"\xef\xbb\xbf\n" + body)
    result = runner.invoke(app, ["edi", "validate", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "EDIFACT interchange" in result.output and "partner nordwind" in result.output
    assert "RQ-GOOD" in result.output and "unit 'ZZ' is not agreed" in result.output
    assert "UCM+1+RETANN:D:01B:UN+7'" in result.output and "UCD+12+1:3'" in result.output

    good = _file(tmp_path, "good.edi", edifact([retann("RQ-GOOD")]))
    result = runner.invoke(app, ["edi", "validate", str(good)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output

    cut = _file(tmp_path, "cut.edi", edifact([retann("RQ-GOOD")])[:-4])
    result = runner.invoke(app, ["edi", "validate", str(cut)])
    assert result.exit_code == 2 and "unusable interchange" in result.output


async def test_submit_reports_a_reused_control_number_as_refused_and_a_test_run_as_such(
    tmp_path: Path, settings: Settings, make_key: KeyFactory
) -> None:
    key = await make_key("nordwind")
    control = uuid.uuid4().int % 999_999_999 + 1
    good = _file(tmp_path, "good.x12", interchange([[return_set()]], control=control))
    reused = _file(tmp_path, "reused.x12", interchange([[return_set(lines=BAD_UNIT)]], control=control))
    ic_reference = "IC" + reference()[3:]
    good_edi = _file(tmp_path, "good.edi", edifact([retann(reference())], control=ic_reference))
    reused_edi = _file(tmp_path, "reused.edi", edifact([retann("RQ-OTHER")], control=ic_reference))
    test_run = _file(tmp_path, "test.x12", interchange([[return_set("RQ-WOULD-BE")]], usage="T"))
    env = {
        "RGW_NAMESPACE": settings.namespace,
        "RGW_REDIS_URL": REDIS_URL,
        "RGW_AMQP_URL": AMQP_URL,
        "RGW_AUTH_CACHE_SECONDS": "0",
    }
    wide = {"COLUMNS": "400"}
    with running_gateway(env) as url:
        sent = runner.invoke(app, ["edi", "submit", str(good), str(good_edi), "--url", url, "--key", key])
        refused = runner.invoke(app, ["edi", "submit", str(reused), "--url", url, "--key", key], env=wide)
        refused_edi = runner.invoke(
            app, ["edi", "submit", str(reused_edi), "--url", url, "--key", key], env=wide
        )
        replayed = runner.invoke(app, ["edi", "submit", str(good), "--url", url, "--key", key])
        tested = runner.invoke(app, ["edi", "submit", str(test_run), "--url", url, "--key", key], env=wide)
    assert sent.exit_code == 0, sent.output
    for result in (refused, refused_edi):
        assert result.exit_code == 1, result.output
        assert "409" in result.output and "refused (edi-control-number-reused)" in result.output
        assert "replayed" not in result.output and "AK9" not in result.output and "UCI" not in result.output
    assert replayed.exit_code == 0 and "(replayed)" in replayed.output
    assert tested.exit_code == 0, tested.output
    assert "AK9*A*1*1*1 (test: nothing submitted; would create 0001=RQ-WOULD-BE)" in tested.output
