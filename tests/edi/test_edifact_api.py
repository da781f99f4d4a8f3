"""POST /v1/edi/edifact on the real broker and Redis: each good RETANN one return, once; a CONTRL
for every interchange; the same intake, mapping and idempotency as the X12 path."""

from __future__ import annotations

import msgspec
import pytest

from gateway.broker import events_exchange_name
from gateway.edi._origin import read_origin
from tests.conftest import Gateway, KeyFactory
from tests.edi.edifact import edifact, retann, segments_of
from tests.edi.x12 import expected_request, interchange, reference, return_set
from tests.support.broker import capture
from tests.support.record_reads import returns_of
from tests.support.waiting import wait_until

EDIFACT = "application/edifact"
URL = "/v1/edi/edifact"


@pytest.fixture
async def events(gateway: Gateway, amqp):  # type: ignore[no-untyped-def]
    return await capture(
        amqp, events_exchange_name(gateway.settings), gateway.settings.amqp_name("capture", "events")
    )


def _headers(key: str, media_type: str = EDIFACT) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": media_type}


def _payloads(events) -> list[dict]:  # type: ignore[no-untyped-def]
    return [msgspec.json.decode(m.body)["payload"] for m in events.messages]


async def _marker(gateway: Gateway, key: str, events, count: int) -> None:  # type: ignore[no-untyped-def]
    """Send one more good interchange and wait for its return: everything before it has settled."""
    response = await gateway.client.post(URL, content=edifact([retann(reference())]), headers=_headers(key))
    assert response.status_code == 200, response.text
    await wait_until(lambda: len(events.messages) >= count, what="the marker return")


@pytest.mark.parametrize(
    "options",
    [{}, {"una": False, "newline": "\n"}, {"separators": "|*,! ~", "newline": "\r\n"}],
    ids=["una", "no-una-newlines", "other-separators-crlf"],
)
async def test_each_retann_becomes_one_return_and_the_contrl_acknowledges_it(
    gateway: Gateway, make_key: KeyFactory, events, redis, options: dict
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    first, second = reference(), reference()
    body = edifact([retann(first), retann(second)], **options)
    response = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(EDIFACT)
    contrl = segments_of(response.text)
    assert contrl[0][:4] == ["UNB", "UNOC:3", "RGWDIST:ZZ", "NORDWIND:ZZ"]
    control = contrl[0][1 + 4]
    assert [s for s in contrl if s[0] in ("UNH", "UCI", "UCM", "UNT", "UNZ")][1:] == [
        ["UCI", contrl[2][1], "NORDWIND:ZZ", "RGWDIST:ZZ", "7"],
        ["UCM", "1", "RETANN:D:01B:UN", "7"],
        ["UCM", "2", "RETANN:D:01B:UN", "7"],
        ["UNT", "5", "1"],
        ["UNZ", "1", control],
    ]
    await wait_until(lambda: len(events.messages) >= 2, what="both returns on the broker")
    assert sorted(_payloads(events), key=lambda p: p["external_id"]) == sorted(
        [expected_request(first), expected_request(second)], key=lambda p: p["external_id"]
    )
    assert {m.headers["x-partner"] for m in events.messages} == {"nordwind"}

    # The CONTRL is recorded and fetched again; the return knows where it came from.
    location = response.headers["location"]
    assert location.startswith("/v1/edi/edifact/NORDWIND.")
    again = await gateway.client.get(location, headers=_headers(key))
    assert again.status_code == 200 and again.text == response.text
    return_id = msgspec.json.decode(events.messages[0].body)["correlation_id"]
    origin = await read_origin(redis, gateway.settings, return_id)
    assert origin is not None and (origin.sender, origin.sender_qualifier) == ("NORDWIND", "ZZ")
    assert origin.reference in (first, second) and origin.version == "D:01B"
    await _marker(gateway, key, events, 3)
    assert len(events.messages) == 3  # each published exactly once


async def test_a_resent_interchange_gets_the_first_contrl_and_submits_nothing(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    body = edifact([retann(reference())])
    first = await gateway.client.post(URL, content=body, headers=_headers(key))
    again = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert first.status_code == again.status_code == 200
    assert again.text == first.text
    assert again.headers["idempotent-replayed"] == "true"
    await _marker(gateway, key, events, 2)
    assert len(events.messages) == 2  # the re-sent interchange published nothing


async def test_a_bad_message_is_rejected_while_the_good_ones_go_through(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    good = reference()
    bad_unit = retann(
        reference(),
        lines=[["LIN", "1", "", ["SSD-1", "VN"]], ["QTY", ["61", "2", "XX"]], ["PRI", ["AAA", "10"]]],
    )
    unknown_item = retann(
        reference(),
        lines=[["LIN", "1", "", ["NOT-KNOWN", "BP"]], ["QTY", ["61", "1", "EA"]], ["PRI", ["AAA", "10"]]],
    )
    body = edifact([bad_unit, retann(good), unknown_item])
    response = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    report = [s for s in segments_of(response.text) if s[0] in ("UCI", "UCM", "UCS", "UCD")]
    assert report[1:] == [
        ["UCM", "1", "RETANN:D:01B:UN", "4"],
        ["UCS", "15"],  # the QTY
        ["UCD", "12", "1:3"],
        ["UCM", "2", "RETANN:D:01B:UN", "7"],
        ["UCM", "3", "RETANN:D:01B:UN", "4"],
        ["UCS", "14", "12"],  # the LIN: no SKU for its item ids, found by the shared mapping step
    ]
    await wait_until(lambda: len(events.messages) >= 1, what="the good return")
    await _marker(gateway, key, events, 2)
    assert _payloads(events)[0]["external_id"] == good
    assert len(events.messages) == 2


async def test_a_return_reference_already_held_is_rejected_whichever_standard_brought_it(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    ref = reference()
    x12 = await gateway.client.post(
        "/v1/edi/x12", content=interchange([[return_set(ref)]]), headers=_headers(key, "application/edi-x12")
    )
    assert x12.status_code == 200
    again = await gateway.client.post(URL, content=edifact([retann(ref)]), headers=_headers(key))
    assert again.status_code == 200
    assert [s for s in segments_of(again.text) if s[0] in ("UCM", "UCS")] == [
        ["UCM", "1", "RETANN:D:01B:UN", "4"],
        ["UCS", "2", "12"],  # the BGM
    ]
    await _marker(gateway, key, events, 2)
    assert len(events.messages) == 2


@pytest.mark.parametrize(
    ("change", "uci"),
    [
        (lambda t: t.rsplit("UNZ+1+", 1)[0] + "UNZ+1+OTHER'", ["4", "28", "UNZ"]),
        (lambda t: t.replace("UNZ+1+", "UNZ+3+"), ["4", "29", "UNZ"]),
        (lambda t: t.replace("RGWDIST:ZZ", "NOTUS:ZZ"), ["4", "7", "UNB"]),
    ],
    ids=["unz-reference", "unz-count", "not-us"],
)
async def test_a_broken_interchange_envelope_is_rejected_in_the_contrl_and_submits_nothing(
    gateway: Gateway, make_key: KeyFactory, events, change, uci: list[str]
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    body = change(edifact([retann(reference())]).decode()).encode()
    response = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    assert next(s for s in segments_of(response.text) if s[0] == "UCI")[4:] == uci
    await _marker(gateway, key, events, 1)
    assert len(events.messages) == 1


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"", 400, "edi-interchange-unusable"),
        (b"ISA*00*", 400, "edi-interchange-unusable"),
        (b"UNH+1+RETANN:D:01B:UN'", 400, "edi-interchange-unusable"),
        (edifact([retann("R")])[:-5], 400, "edi-interchange-unusable"),  # cut inside UNZ
        (edifact([retann("R")], sender=["SOMEONEELSE", "ZZ"]), 403, "edi-sender-not-allowed"),
        (edifact([retann("R")], sender=["BALTICPARTS", "ZZ"]), 403, "edi-sender-not-allowed"),
    ],
    ids=["empty", "x12", "no-unb", "cut", "unknown-sender", "other-partner"],
)
async def test_unusable_interchanges_are_problems_never_500(
    gateway: Gateway, make_key: KeyFactory, body: bytes, status: int, slug: str
) -> None:
    key = await make_key("nordwind")
    response = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:returns-gateway:problem:{slug}"


async def test_auth_scope_media_type_and_tenancy(gateway: Gateway, make_key: KeyFactory) -> None:
    body = edifact([retann(reference())])
    anonymous = await gateway.client.post(URL, content=body, headers={"Content-Type": EDIFACT})
    assert anonymous.status_code == 401
    reader = await make_key("nordwind", scopes=("returns:read",))
    assert (await gateway.client.post(URL, content=body, headers=_headers(reader))).status_code == 403
    writer = await make_key("nordwind")
    wrong = await gateway.client.post(URL, content=body, headers=_headers(writer, "application/edi-x12"))
    assert wrong.status_code == 415
    no_profile = await make_key("acme")
    assert (await gateway.client.post(URL, content=body, headers=_headers(no_profile))).status_code == 403
    sent = await gateway.client.post(URL, content=body, headers=_headers(writer))
    assert sent.status_code == 200
    baltic = await make_key("baltic")
    assert (await gateway.client.get(sent.headers["location"], headers=_headers(baltic))).status_code == 404
    # An X12 acknowledgment is not found under the EDIFACT path, nor the other way round.
    x12_path = sent.headers["location"].replace("/edifact/", "/x12/")
    assert (await gateway.client.get(x12_path, headers=_headers(writer))).status_code == 404


async def test_a_control_reference_with_path_characters_is_fetched_again(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key("nordwind")
    control = f"IC/{reference()[3:]}?1"
    sent = await gateway.client.post(
        URL, content=edifact([retann(reference())], control=control), headers=_headers(key)
    )
    assert sent.status_code == 200, sent.text
    assert next(s for s in segments_of(sent.text) if s[0] == "UCI")[1] == control.replace("?", "??")
    location = sent.headers["location"]
    assert location == f"/v1/edi/edifact/NORDWIND.{control.replace('/', '_').replace('?', '_')}/ack"
    again = await gateway.client.get(location, headers=_headers(key))
    assert again.status_code == 200 and again.text == sent.text


async def test_a_test_interchange_is_acknowledged_and_names_its_returns_but_creates_none(
    gateway: Gateway, make_key: KeyFactory, events, redis
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    first, second = reference(), f"RQ/{reference()[3:]}#1"  # a reference with characters to escape
    control = reference()[3:]
    body = edifact([retann(first), retann(second)], control=control, test=True)
    response = await gateway.client.post(URL, content=body, headers=_headers(key))
    assert response.status_code == 200, response.text
    contrl = segments_of(response.text)
    assert contrl[0][:4] == ["UNB", "UNOC:3", "RGWDIST:ZZ", "NORDWIND:ZZ"]
    assert contrl[0][11] == "1"  # the CONTRL answers a test with a test
    assert [s for s in contrl if s[0] in ("UCI", "UCM")] == [
        ["UCI", control, "NORDWIND:ZZ", "RGWDIST:ZZ", "7"],
        ["UCM", "1", "RETANN:D:01B:UN", "7"],
        ["UCM", "2", "RETANN:D:01B:UN", "7"],
    ]
    assert response.headers["rgw-test-interchange"] == "true"
    assert (
        response.headers["rgw-test-returns"]
        == f"1={first},2={second.replace('/', '%2F').replace('#', '%23')}"
    )
    assert "rgw-returns" not in response.headers
    assert response.headers["location"] == f"/v1/edi/edifact/NORDWIND.{control}.test/ack"
    assert await returns_of(gateway.settings.database, "nordwind", first) == []
    assert await returns_of(gateway.settings.database, "nordwind", second) == []

    # Nothing was published nor reserved: the same messages in production, under the same
    # control reference, become returns.
    live = await gateway.client.post(
        URL, content=edifact([retann(first), retann(second)], control=control), headers=_headers(key)
    )
    assert live.status_code == 200, live.text
    assert "rgw-test-interchange" not in live.headers and "idempotent-replayed" not in live.headers
    assert [s[3] for s in segments_of(live.text) if s[0] == "UCM"] == ["7", "7"]
    await wait_until(lambda: len(events.messages) >= 2, what="the production returns")
    await _marker(gateway, key, events, 3)
    assert {first, second} <= {p["external_id"] for p in _payloads(events)}
    assert len(events.messages) == 3
    assert len(await returns_of(gateway.settings.database, "nordwind", first)) == 1


async def test_another_interchange_under_a_used_control_reference_is_refused_with_a_contrl(
    gateway: Gateway, make_key: KeyFactory, events
) -> None:  # type: ignore[no-untyped-def]
    key = await make_key("nordwind")
    control = reference()[3:]
    bad_unit = [["LIN", "1", "", ["SSD-1", "VN"]], ["QTY", ["61", "2", "XX"]], ["PRI", ["AAA", "10"]]]
    broken = edifact([retann(reference(), lines=bad_unit)], control=control)
    first = await gateway.client.post(URL, content=broken, headers=_headers(key))
    assert first.status_code == 200 and ["UCM", "1", "RETANN:D:01B:UN", "4"] in segments_of(first.text)

    corrected = edifact([retann(reference())], control=control)
    refused = await gateway.client.post(URL, content=corrected, headers=_headers(key))
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:returns-gateway:problem:edi-control-number-reused"
    assert f"UNB 0020 {control} from NORDWIND:ZZ" in problem["detail"]
    assert problem["interchange_id"] == f"NORDWIND.{control}"
    assert [s for s in segments_of(problem["contrl"]) if s[0] in ("UCI", "UCM")] == [
        ["UCI", control, "NORDWIND:ZZ", "RGWDIST:ZZ", "4", "26", "UNB"],
    ]

    again = await gateway.client.post(URL, content=broken, headers=_headers(key))
    assert again.status_code == 200 and again.text == first.text
    assert again.headers["idempotent-replayed"] == "true"
    await _marker(gateway, key, events, 1)
    assert len(events.messages) == 1  # the refused interchange published nothing
