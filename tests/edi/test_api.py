"""POST /v1/edi/x12 on the real broker and Redis: each good 180 one return, once; a 997 for all."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from gateway.broker import events_exchange_name
from gateway.edi import check_interchange
from gateway.edi._origin import read_origin
from tests.conftest import Gateway, KeyFactory
from tests.edi.x12 import expected_request, interchange, reference, return_set, segments_of
from tests.support.broker import capture
from tests.support.record_reads import published_returns
from tests.support.waiting import wait_until

X12 = "application/edi-x12"


@pytest.fixture
async def events(gateway: Gateway, amqp):  # type: ignore[no-untyped-def]
    return await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": X12}


def _payloads(events) -> list[dict]:  # type: ignore[no-untyped-def]
    return [msgspec.json.decode(m.body)["payload"] for m in events.messages]


async def test_each_set_becomes_one_return_and_the_997_accepts_them(
    gateway: Gateway, make_key: KeyFactory, events, redis
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    first, second = reference(), reference()
    body = interchange([[return_set(first), return_set(second)]], newline="\r\n")
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(X12)
    ack = segments_of(response.text)
    gs06 = next(s[6] for s in segments_of(body.decode()) if s[0] == "GS")
    assert ack[0][0] == "ISA" and ack[0][6].strip() == "RGWDIST" and ack[0][8].strip() == "NORDWIND"
    assert [s for s in ack if s[0] in ("AK1", "AK2", "AK5", "AK9")] == [
        ["AK1", "AN", gs06],
        ["AK2", "180", "0001"],
        ["AK5", "A"],
        ["AK2", "180", "0002"],
        ["AK5", "A"],
        ["AK9", "A", "2", "2", "2"],
    ]
    await wait_until(lambda: len(events.messages) >= 2, what="both returns on the broker")
    payloads = sorted(_payloads(events), key=lambda p: p["external_id"])
    assert payloads == sorted(
        [expected_request(first), expected_request(second)], key=lambda p: p["external_id"]
    )
    assert {m.headers["x-partner"] for m in events.messages} == {"nordwind"}

    # The 997 is recorded and fetched again; the return knows where it came from.
    location = response.headers["location"]
    again = await gateway.client.get(location, headers=_headers(key))
    assert again.status_code == 200 and again.text == response.text
    return_id = msgspec.json.decode(events.messages[0].body)["correlation_id"]
    origin = await read_origin(redis, gateway.settings, return_id)
    assert origin is not None and origin.sender == "NORDWIND" and origin.receiver == "RGWDIST"
    assert origin.reference in (first, second)
    assert [(line.line_number, line.item_ids, line.quantity) for line in origin.lines] == [
        (1, {"VN": "SSD-SAM-PM893-1T92"}, 2),
        (2, {"BP": "NW-4711"}, 1),
    ]


async def test_a_resent_interchange_gets_the_first_997_and_submits_nothing(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    body = interchange([[return_set()]])
    first = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    again = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert first.status_code == again.status_code == 200
    assert again.text == first.text
    assert again.headers["idempotent-replayed"] == "true"
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 2, what="the marker return")
    assert len(events.messages) == 2  # the re-sent interchange published nothing


async def test_a_bad_set_is_rejected_while_the_good_ones_go_through(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    good = reference()
    bad_code = return_set(lines=[["BLI", "VN", "SSD-1", "2", "XX", "CON", "10"]])  # unit not in the table
    unknown_item = return_set(lines=[["BLI", "BP", "NOT-KNOWN", "1", "EA", "CON", "10"]])
    body = interchange([[bad_code, return_set(good), unknown_item]])
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    ack = [s for s in segments_of(response.text) if s[0].startswith("AK")]
    assert ack[1:] == [
        ["AK2", "180", "0001"],
        ["AK3", "BLI", "11", "BLI", "8"],
        ["AK4", "4", "355", "7", "XX"],
        ["AK5", "R", "5"],
        ["AK2", "180", "0002"],
        ["AK5", "A"],
        ["AK2", "180", "0003"],
        ["AK3", "BLI", "11", "BLI", "8"],
        ["AK4", "2", "234", "7", "NOT-KNOWN"],
        ["AK5", "R", "5"],
        ["AK9", "P", "3", "3", "1"],
    ]
    await wait_until(lambda: len(events.messages) >= 1, what="the good return")
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 2, what="the marker return")
    assert _payloads(events)[0]["external_id"] == good
    assert len(events.messages) == 2


async def test_a_return_reference_already_held_is_rejected_not_duplicated(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    ref = reference()
    first = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set(ref)]]), headers=_headers(key)
    )
    second = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set(ref)]]), headers=_headers(key)
    )
    assert first.status_code == second.status_code == 200
    assert ["AK5", "R", "5"] in segments_of(second.text)
    assert ["AK3", "BGN", "2", "", "8"] in [s + [""] * (5 - len(s)) for s in segments_of(second.text)]
    await wait_until(lambda: len(events.messages) >= 1, what="the first return")
    assert len(events.messages) == 1


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"", 400, "edi-interchange-unusable"),
        (b"GS*AN*X*Y~", 400, "edi-interchange-unusable"),
        (b"ISA*00*", 400, "edi-interchange-unusable"),
        (interchange([[return_set()]])[:-30], 400, "edi-interchange-unusable"),  # truncated: no IEA
        (interchange([[return_set()]]).replace(b"IEA*1*", b"IEA*1*1"), 400, "edi-interchange-unusable"),
        (interchange([[return_set()]], sender="SOMEONEELSE"), 403, "edi-sender-not-allowed"),
        (interchange([[return_set()]], sender="BALTICPARTS"), 403, "edi-sender-not-allowed"),
        (interchange([[return_set()]], receiver="NOTUS"), 400, "edi-interchange-unusable"),
    ],
    ids=[
        "empty",
        "no-isa",
        "cut-isa",
        "truncated",
        "iea-mismatch",
        "unknown-sender",
        "other-partner",
        "not-us",
    ],
)
async def test_unusable_interchanges_are_problems_never_500(
    gateway: Gateway, make_key: KeyFactory, body: bytes, status: int, slug: str
) -> None:
    key = await make_key("nordwind")
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:returns-gateway:problem:{slug}"


async def test_auth_scope_and_media_type(gateway: Gateway, make_key: KeyFactory) -> None:
    body = interchange([[return_set()]])
    anonymous = await gateway.client.post("/v1/edi/x12", content=body, headers={"Content-Type": X12})
    assert anonymous.status_code == 401
    reader = await make_key("nordwind", scopes=("returns:read",))
    assert (
        await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(reader))
    ).status_code == 403
    writer = await make_key("nordwind")
    wrong = await gateway.client.post(
        "/v1/edi/x12", content=body, headers={**_headers(writer), "Content-Type": "text/plain"}
    )
    assert wrong.status_code == 415
    no_profile = await make_key("acme")
    assert (
        await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(no_profile))
    ).status_code == 403
    other = await gateway.client.get("/v1/edi/x12/NORDWIND.000000001/ack", headers=_headers(writer))
    assert other.status_code == 404


async def test_the_997_it_answers_is_a_valid_997(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key("nordwind")
    body = interchange([[return_set(), return_set(lines=[["BLI", "VN", "X", "1", "ZZ", "CON", "1"]])]])
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    checked = check_interchange(response.content)
    assert [g.functional_id for g in checked.groups] == ["FA"]
    assert all(s.accepted for s in checked.groups[0].sets), checked.groups[0].sets


async def test_a_copy_in_flight_is_told_to_come_back(
    gateway: Gateway, make_key: KeyFactory, redis, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    body = interchange([[return_set()]], control=424242)
    await redis.set(gateway.settings.key("edi", "interchange", "nordwind", "NORDWIND.000424242"), b"")
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == 409
    assert response.headers["retry-after"] == str(gateway.settings.retry_after_seconds)
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 1, what="the marker return")
    assert len(events.messages) == 1  # the copy in flight published nothing


async def test_another_partners_997_is_not_found(gateway: Gateway, make_key: KeyFactory) -> None:
    nordwind, baltic = await make_key("nordwind"), await make_key("baltic")
    sent = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(nordwind)
    )
    assert sent.status_code == 200
    assert (await gateway.client.get(sent.headers["location"], headers=_headers(nordwind))).status_code == 200
    assert (await gateway.client.get(sent.headers["location"], headers=_headers(baltic))).status_code == 404


async def _returns(settings, *external_ids: str) -> list[str]:  # type: ignore[no-untyped-def]
    return await published_returns(settings.database, "nordwind", external_ids)


async def test_a_test_interchange_is_acknowledged_and_names_its_returns_but_creates_none(
    gateway: Gateway, make_key: KeyFactory, events, redis
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    first, second = reference(), reference()
    bad_unit = return_set(lines=[["BLI", "VN", "SSD-1", "2", "XX", "CON", "10"]])
    body = interchange([[return_set(first), return_set(second), bad_unit]], usage="T", control=770001)
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    ack = segments_of(response.text)
    assert ack[0][15] == "T"  # the 997 answers a test with a test
    assert [s for s in ack if s[0] in ("AK2", "AK5", "AK9")] == [
        ["AK2", "180", "0001"],
        ["AK5", "A"],
        ["AK2", "180", "0002"],
        ["AK5", "A"],
        ["AK2", "180", "0003"],
        ["AK5", "R", "5"],
        ["AK9", "P", "3", "3", "2"],
    ]
    assert response.headers["rgw-test-interchange"] == "true"
    assert response.headers["rgw-test-returns"] == f"0001={first},0002={second}"
    assert "rgw-returns" not in response.headers
    location = response.headers["location"]
    assert location == "/v1/edi/x12/NORDWIND.000770001.test/ack"
    again = await gateway.client.get(location, headers=_headers(key))
    assert again.status_code == 200 and again.text == response.text
    replay = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["rgw-test-returns"] == response.headers["rgw-test-returns"]
    assert await _returns(gateway.settings, first, second) == []

    # Nothing was published nor reserved: the same returns in production, even under the test's
    # control number, become returns as if the test had never been.
    live = interchange([[return_set(first), return_set(second)]], control=770001)
    production = await gateway.client.post("/v1/edi/x12", content=live, headers=_headers(key))
    assert production.status_code == 200, production.text
    assert (
        "idempotent-replayed" not in production.headers and "rgw-test-interchange" not in production.headers
    )
    assert [s for s in segments_of(production.text) if s[0] == "AK9"] == [["AK9", "A", "2", "2", "2"]]
    await wait_until(lambda: len(events.messages) >= 2, what="the production returns")
    assert sorted(p["external_id"] for p in _payloads(events)) == sorted([first, second])
    assert len(await _returns(gateway.settings, first, second)) == 2
    assert len(events.messages) == 2


async def test_a_test_interchange_rejects_what_production_would(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    held, fresh = reference(), reference()
    live = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set(held)]]), headers=_headers(key)
    )
    assert live.status_code == 200
    body = interchange([[return_set(held), return_set(fresh), return_set(fresh)]], usage="T")
    response = await gateway.client.post("/v1/edi/x12", content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    sets = [s for s in segments_of(response.text) if s[0] in ("AK3", "AK5")]
    assert sets == [
        ["AK3", "BGN", "2", "", "8"],  # the reference a live return holds
        ["AK5", "R", "5"],
        ["AK5", "A"],
        ["AK3", "BGN", "2", "", "8"],  # the same reference as the set before it
        ["AK5", "R", "5"],
    ]
    assert response.headers["rgw-test-returns"] == f"0002={fresh}"
    await wait_until(lambda: len(events.messages) >= 1, what="the live return")
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 2, what="the marker return")
    assert len(events.messages) == 2


async def test_another_interchange_under_a_used_control_number_is_refused_with_a_ta1(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    control = uuid.uuid4().int % 999_999_999 + 1
    broken = interchange(
        [[return_set(lines=[["BLI", "VN", "SSD-1", "2", "XX", "CON", "10"]])]], control=control
    )
    first = await gateway.client.post("/v1/edi/x12", content=broken, headers=_headers(key))
    assert first.status_code == 200 and ["AK9", "R", "1", "1", "0"] in segments_of(first.text)

    corrected = interchange([[return_set()]], control=control)
    refused = await gateway.client.post("/v1/edi/x12", content=corrected, headers=_headers(key))
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "urn:returns-gateway:problem:edi-control-number-reused"
    assert f"ISA13 {control:09d} from ZZ:NORDWIND" in problem["detail"]
    assert problem["interchange_id"] == f"NORDWIND.{control:09d}"
    ta1 = segments_of(problem["ta1"])
    assert [s[0] for s in ta1] == ["ISA", "TA1", "IEA"]
    assert ta1[0][6].strip() == "RGWDIST" and ta1[0][8].strip() == "NORDWIND" and ta1[0][15] == "P"
    assert ta1[1] == ["TA1", f"{control:09d}", "240311", "0942", "R", "025"]
    assert ta1[2] == ["IEA", "0", ta1[0][13]]

    # The same interchange again (a trailing line break aside) still replays its 997.
    again = await gateway.client.post("/v1/edi/x12", content=broken + b"\r\n", headers=_headers(key))
    assert again.status_code == 200 and again.text == first.text
    assert again.headers["idempotent-replayed"] == "true"
    marker = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set()]]), headers=_headers(key)
    )
    assert marker.status_code == 200
    await wait_until(lambda: len(events.messages) >= 1, what="the marker return")
    assert len(events.messages) == 1  # the refused interchange published nothing
