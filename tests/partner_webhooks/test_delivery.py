"""Events reach the partner's endpoints through the broker: signed, retried, dead-lettered, and
only the partner the return belongs to."""

from __future__ import annotations

import msgspec

from gateway.broker.headers import DEAD_REASON
from gateway.runtime import Outcome
from gateway.sandbox import Fault, free_port
from tests.partner_webhooks.conftest import WEBHOOK_SCOPES, Harness, PartnerReceiver, auth, verify
from tests.support.waiting import wait_until

Receiver = tuple[PartnerReceiver, str]


def _body(received: dict[str, object]) -> bytes:
    body = received["body"]
    assert isinstance(body, bytes)
    return body


def _headers(received: dict[str, object]) -> dict[str, str]:
    headers = received["headers"]
    assert isinstance(headers, dict)
    return headers


async def test_the_endpoint_gets_the_event_once_signed(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    envelope = await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the delivery")

    [received] = sandbox.received("/acme/1")
    body, headers = _body(received), _headers(received)
    assert msgspec.json.decode(body) == envelope["payload"]
    assert headers["content-type"] == "application/json"
    assert headers["rgw-event-id"] == envelope["message_id"]
    assert verify(endpoint["secret"], body, headers["rgw-signature"])
    assert not verify(endpoint["secret"], body.replace(b"acme", b"acmf"), headers["rgw-signature"])
    assert not verify("whsec_other", body, headers["rgw-signature"])
    assert len(sandbox.calls("/acme/1")) == 1


async def test_a_failing_endpoint_gets_it_after_a_retry(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    sandbox.state.faults.append(Fault(status=503, retry_after="1"))
    await harness.publish("acme")
    await wait_until(
        lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=15, what="delivery after retry"
    )

    assert harness.runtime.outcomes[Outcome.RETRY] == 1
    first, second = sandbox.calls("/acme/1")
    assert second - first >= 0.95  # Retry-After honoured; the backoff alone would wait 0.2 s
    [received] = sandbox.received("/acme/1")
    assert verify(endpoint["secret"], _body(received), _headers(received)["rgw-signature"])


async def test_an_endpoint_that_took_it_is_not_called_again_on_retry(
    harness: Harness, receiver: Receiver
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(key, f"{base_url}/acme/good")
    await harness.register(key, f"{base_url}/acme/flaky")
    sandbox.state.faults.append(Fault(status=502, path="/acme/flaky", times=2))
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=15, what="delivery to both")

    assert harness.runtime.outcomes[Outcome.RETRY] == 2
    assert len(sandbox.calls("/acme/flaky")) == 3 and len(sandbox.received("/acme/flaky")) == 1
    assert len(sandbox.calls("/acme/good")) == 1 and len(sandbox.received("/acme/good")) == 1


async def test_a_gone_endpoint_ends_in_the_dead_letter_queue(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    sandbox.state.faults.append(Fault(status=410))
    envelope = await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")

    [dead] = await harness.dead_letters()
    assert msgspec.json.decode(dead.body)["message_id"] == envelope["message_id"]
    reason = msgspec.json.decode((dead.headers or {})[DEAD_REASON])
    assert reason["connector"] == "partner-webhooks"
    assert reason["error"] == "PermanentDeliveryFailure"
    assert reason["status_code"] == 410 and reason["attempts"] == 1
    assert endpoint["id"] in reason["detail"] and "410" in reason["detail"]
    assert endpoint["secret"] not in reason["detail"]
    assert len(sandbox.calls("/acme/1")) == 1 and sandbox.received("/acme/1") == []


async def test_one_partners_events_never_reach_another(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    acme = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    globex = await harness.make_key("globex", scopes=WEBHOOK_SCOPES)
    await harness.register(acme, f"{base_url}/acme/1")
    await harness.register(globex, f"{base_url}/globex/1")
    for_acme = [await harness.publish("acme") for _ in range(3)]
    for_globex = await harness.publish("globex")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 4, what="four deliveries")

    def event_ids(path: str) -> list[str]:
        return [_headers(r)["rgw-event-id"] for r in sandbox.received(path)]

    assert sorted(event_ids("/acme/1")) == sorted(e["message_id"] for e in for_acme)
    assert event_ids("/globex/1") == [for_globex["message_id"]]


async def test_an_envelope_naming_another_partner_is_dead(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    acme = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(acme, f"{base_url}/acme/1")
    await harness.publish("acme", partner="globex")  # payload says globex, envelope says acme
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, what="the dead letter")
    assert sandbox.calls("/acme/1") == []


async def test_after_rotation_events_are_signed_with_the_new_secret(
    harness: Harness, receiver: Receiver
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    rotated = await harness.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=auth(key)
    )
    new_secret = rotated.json()["secret"]
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 1, what="the delivery")

    [received] = sandbox.received("/acme/1")
    assert verify(new_secret, _body(received), _headers(received)["rgw-signature"])
    assert not verify(endpoint["secret"], _body(received), _headers(received)["rgw-signature"])


async def test_deleted_or_missing_endpoints_mean_nothing_to_send(
    harness: Harness, receiver: Receiver
) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    endpoint = await harness.register(key, f"{base_url}/acme/1")
    deleted = await harness.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=auth(key))
    assert deleted.status_code == 204
    await harness.publish("acme")
    await harness.publish("initech")  # never registered anything
    await wait_until(lambda: harness.runtime.outcomes[Outcome.ACK] == 2, what="both acknowledged")
    assert sandbox.state.requests == []


async def test_a_slow_endpoint_times_out_and_is_retried(harness: Harness, receiver: Receiver) -> None:
    sandbox, base_url = receiver
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(key, f"{base_url}/acme/1")
    sandbox.state.faults.append(Fault(status=None, delay=3.0))  # slower than the 2 s timeout
    await harness.publish("acme")
    await wait_until(
        lambda: harness.runtime.outcomes[Outcome.ACK] == 1, within=20, what="delivery after retry"
    )
    assert harness.runtime.outcomes[Outcome.RETRY] == 1
    assert len(sandbox.calls("/acme/1")) == 2


async def test_an_unreachable_endpoint_is_retried_then_dead(harness: Harness) -> None:
    key = await harness.make_key("acme", scopes=WEBHOOK_SCOPES)
    await harness.register(key, f"http://127.0.0.1:{free_port()}/nobody-listens")
    await harness.publish("acme")
    await wait_until(lambda: harness.runtime.outcomes[Outcome.DEAD] == 1, within=20, what="the dead letter")
    assert harness.runtime.outcomes[Outcome.RETRY] == 2  # max_attempts: 3
    [dead] = await harness.dead_letters()
    reason = msgspec.json.decode((dead.headers or {})[DEAD_REASON])
    assert reason["error"] == "RetryableDeliveryFailure" and reason["attempts"] == 3
    assert "unreachable" in reason["detail"]
