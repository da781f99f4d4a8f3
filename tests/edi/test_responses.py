"""180 responses to EDI partners on the real broker and Redis: a return that came by X12 is
answered, once decided, with a 180 the partner's inbox receives over HTTP (and the API keeps)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import msgspec
import pytest
import redis.asyncio as aioredis
import yaml
from aio_pika.abc import AbstractRobustConnection
from pydifact.segmentcollection import Interchange as PdInterchange

from gateway.api.edi import RETURNS_HEADER
from gateway.broker import events_exchange_name
from gateway.edi import check_interchange
from gateway.registry import ContractRegistry
from gateway.runtime import ConnectorRuntime
from gateway.sandbox import Fault, running
from gateway.settings import PROJECT_ROOT, Settings
from tests.conftest import KeyFactory
from tests.connectors.conftest import RoutedGateway, routed_gateway, running_connector
from tests.edi.edifact import edifact, retann
from tests.edi.x12 import interchange, reference, return_set, segments_of
from tests.support.receiver import PartnerReceiver
from tests.support.waiting import wait_until

TABLE = """
connectors:
  edi-responses:
    use: gateway.edi.responder:X12ResponseConnector
    options: {{timeout_seconds: 2}}
    max_attempts: 4
    retry_delays_ms: [200, 500]
routes:
  - {{id: authorizations, message: return-authorization.v1, to: [edi-responses]}}
"""
INBOX = "/as2/nordwind"


@dataclasses.dataclass
class Partner:
    routed: RoutedGateway
    runtime: ConnectorRuntime
    inbox: PartnerReceiver
    key: str
    amqp: AbstractRobustConnection

    async def send_retann(self) -> tuple[str, str]:
        """One RETANN by UN/EDIFACT; answers its BGM reference and the return it became."""
        ref = reference()
        response = await self.routed.client.post(
            "/v1/edi/edifact",
            content=edifact([retann(ref)]),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/edifact"},
        )
        assert response.status_code == 200, response.text
        [(_, return_id)] = [item.split("=") for item in response.headers[RETURNS_HEADER].split(",")]
        return ref, return_id

    async def send_180(self, lines: list[list[str]] | None = None) -> tuple[str, str]:
        """One 180 by X12; answers its BGN02 and the return it became."""
        ref = reference()
        response = await self.routed.client.post(
            "/v1/edi/x12",
            content=interchange([[return_set(ref, lines=lines)]]),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/edi-x12"},
        )
        assert response.status_code == 200, response.text
        [(st02, return_id)] = [item.split("=") for item in response.headers[RETURNS_HEADER].split(",")]
        assert st02 == "0001"
        return ref, return_id

    async def decide(self, return_id: str, ref: str, decision: str, authorized: list[float]) -> str:
        """Publish the return-authorization the ERP (or the lifecycle) would publish."""
        lines = []
        for number, (quantity, requested) in enumerate(zip(authorized, (2, 1), strict=True), start=1):
            line: dict[str, Any] = {
                "line_number": number,
                "sku": "SSD-SAM-PM893-1T92",
                "requested_quantity": requested,
                "authorized_quantity": quantity,
                "unit_of_measure": "C62",
            }
            if quantity == 0:
                line["rejection_reason"] = "outside_return_window"
            lines.append(line)
        payload: dict[str, Any] = {
            "return_id": return_id,
            "external_id": ref,
            "decision": decision,
            "decided_at": "2024-03-12T09:00:00Z",
            "decided_by": {"type": "system", "id": "lifecycle"},
            "lines": lines,
        }
        if decision == "rejected":
            payload["rejection_reason"] = "outside_return_window"
        else:
            payload |= {"rma_number": "RMA40117", "expires_on": "2024-04-11"}
        registry = ContractRegistry.from_folder(PROJECT_ROOT / "contracts")
        assert registry.require("return-authorization", "v1").violations(payload) == []
        envelope = {
            "message_id": f"msg_{uuid.uuid4().hex}",
            "correlation_id": return_id,
            "contract": "return-authorization",
            "version": "v1",
            "partner": "nordwind",
            "occurred_at": "2024-03-12T09:00:00Z",
            "trace": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "payload": payload,
        }
        channel = await self.amqp.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(events_exchange_name(self.routed.settings))
        await exchange.publish(aio_pika.Message(msgspec.json.encode(envelope)), "return-authorization.v1")
        await channel.close()
        return str(envelope["message_id"])

    async def received(self, count: int) -> list[str]:
        await wait_until(lambda: len(self.inbox.received(INBOX)) >= count, within=15, what=f"{count} 180(s)")
        return [r["body"].decode() for r in self.inbox.received(INBOX)]


@pytest.fixture
async def partner(
    tmp_path: Path,
    settings: Settings,
    registry: ContractRegistry,
    redis: aioredis.Redis,
    amqp: AbstractRobustConnection,
    make_key: KeyFactory,
) -> AsyncIterator[Partner]:
    inbox = PartnerReceiver()
    with running(inbox) as inbox_url:
        profiles = yaml.safe_load((PROJECT_ROOT / "edi-partners.yaml").read_text())
        profiles["partners"]["nordwind"]["responses"] = {"url": inbox_url + INBOX}
        partners_file = tmp_path / "edi-partners.yaml"
        partners_file.write_text(yaml.safe_dump(profiles))
        configured = dataclasses.replace(settings, edi_partners_file=partners_file)
        async with (
            routed_gateway(tmp_path, configured, registry, amqp, TABLE) as routed,
            running_connector(routed, "edi-responses", redis) as runtime,
        ):
            yield Partner(routed, runtime, inbox, await make_key("nordwind"), amqp)


def _segments(text: str) -> list[list[str]]:
    return segments_of(text.replace("\n", ""))


def _only(segments: list[list[str]], tag: str) -> list[list[str]]:
    return [s for s in segments if s[0] == tag]


async def test_an_authorized_return_is_answered_with_a_180_the_partner_can_read(partner: Partner) -> None:
    ref, return_id = await partner.send_180()
    await partner.decide(return_id, ref, "authorized", [2, 1])
    [sent] = await partner.received(1)

    checked = check_interchange(sent.encode())  # our 180 passes the same checks as a partner's
    assert [t.result.accepted for t in checked.transactions] == [True]
    segments = _segments(sent)
    isa = segments[0]
    assert isa[6].strip() == "RGWDIST" and isa[8].strip() == "NORDWIND"  # sender and receiver swapped
    [bgn] = _only(segments, "BGN")
    assert bgn[1] == "11" and bgn[2] == "RMA40117" and bgn[6] == ref
    assert _only(segments, "RDR")[0] == ["RDR", "RA"]
    assert ["N9", "RA", "RMA40117"] in segments and ["DTM", "036", "20240411"] in segments
    assert [(b[1], b[2], b[3], b[4]) for b in _only(segments, "BLI")] == [
        ("VN", "SSD-SAM-PM893-1T92", "2", "EA"),
        ("BP", "NW-4711", "1", "EA"),  # each line as the partner named it
    ]
    inbox_call = partner.inbox.received(INBOX)[0]
    assert inbox_call["headers"]["content-type"] == "application/edi-x12"


async def test_partial_and_denied_returns_say_so_per_line(partner: Partner) -> None:
    ref, return_id = await partner.send_180()
    await partner.decide(return_id, ref, "partially_authorized", [1, 0])
    other_ref, other_id = await partner.send_180()
    await partner.decide(other_id, other_ref, "rejected", [0, 0])
    sent = await partner.received(2)
    by_reference = {_only(_segments(t), "BGN")[0][6]: _segments(t) for t in sent}

    partial = by_reference[ref]
    assert _only(partial, "RDR") == [["RDR", "PA"], ["RDR", "PA"], ["RDR", "RD"]]
    assert [b[3] for b in _only(partial, "BLI")] == ["1", "0"]
    assert _only(partial, "QTY") == [["QTY", "38", "2", "EA"], ["QTY", "38", "1", "EA"]]
    denied = by_reference[other_ref]
    assert (
        _only(denied, "RDR")[0][:2] == ["RDR", "RD"] and "outside return window" in _only(denied, "RDR")[0][4]
    )
    assert not [s for s in denied if s[:2] == ["N9", "RA"]]
    isa13s = {_segments(t)[0][13] for t in sent}
    assert len(isa13s) == 2  # every interchange its own control number


async def test_a_failing_inbox_gets_the_same_interchange_on_retry_and_the_api_keeps_it(
    partner: Partner, make_key: KeyFactory
) -> None:
    partner.inbox.state.faults.append(Fault(status=503, method="POST", path=INBOX, times=1))
    ref, return_id = await partner.send_180()
    await partner.decide(return_id, ref, "authorized", [2, 1])
    [sent] = await partner.received(1)
    assert len(partner.inbox.calls(INBOX)) == 2  # refused once, then taken

    auth = {"Authorization": f"Bearer {partner.key}"}
    listed = await partner.routed.client.get(f"/v1/edi/x12/returns/{return_id}/responses", headers=auth)
    assert listed.status_code == 200, listed.text
    [response] = listed.json()["data"]
    assert response["interchange"] == sent and response["decision"] == "authorized"
    raw = await partner.routed.client.get(f"/v1/edi/x12/responses/{response['id']}", headers=auth)
    assert raw.status_code == 200 and raw.text == sent
    assert raw.headers["content-type"].startswith("application/edi-x12")
    stranger = {"Authorization": f"Bearer {await make_key('baltic')}"}
    assert (
        await partner.routed.client.get(f"/v1/edi/x12/responses/{response['id']}", headers=stranger)
    ).status_code == 404
    assert (
        await partner.routed.client.get(f"/v1/edi/x12/returns/{return_id}/responses", headers=stranger)
    ).status_code == 404


async def test_a_return_that_did_not_come_by_edi_gets_no_180(partner: Partner) -> None:
    await partner.decide(f"ret_{uuid.uuid4().hex}", "PORTAL-1", "authorized", [2, 1])
    ref, return_id = await partner.send_180()  # a marker after it: the queue is FIFO
    await partner.decide(return_id, ref, "authorized", [2, 1])
    sent = await partner.received(1)
    await wait_until(lambda: partner.runtime.outcomes.total() >= 2, what="both authorizations handled")
    assert len(sent) == 1 and _only(_segments(sent[0]), "BGN")[0][6] == ref


@pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")
async def test_a_return_announced_by_retann_is_answered_with_a_retins(partner: Partner) -> None:
    ref, return_id = await partner.send_retann()
    await partner.decide(return_id, ref, "partially_authorized", [2, 0])
    [sent] = await partner.received(1)

    parsed = PdInterchange.from_str(sent)
    assert parsed.sender == ["RGWDIST", "ZZ"] and parsed.recipient == ["NORDWIND", "ZZ"]
    (message,) = list(parsed.get_messages())
    assert message.type == "RETINS"
    segments = [(s.tag, s.elements) for s in message.segments]
    assert ("RFF", [["ACW", ref]]) in segments and segments[0][1][1] == "RMA40117"
    assert [e for t, e in segments if t == "QTY"] == [[["61", "2", "EA"]], [["61", "0", "EA"]]]
    assert partner.inbox.received(INBOX)[0]["headers"]["content-type"] == "application/edifact"
