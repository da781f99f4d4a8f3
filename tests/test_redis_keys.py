"""The Redis key names of ``gateway.storage.keys``: the very strings stored before, all in the namespace."""

from __future__ import annotations

import hashlib
import inspect

import pytest

from gateway.lifecycle import APPROVALS, HOLDS, inspections_of
from gateway.settings import Settings
from gateway.storage import keys

SETTINGS = Settings(namespace="rgwtest")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize(
    ("named", "spelled"),
    [
        (keys.idempotency_key(SETTINGS, "acme", "k-1"), f"rgwtest:idem:acme:{_sha256('k-1')}"),
        (keys.external_id_owner(SETTINGS, "acme", "RMA-7"), f"rgwtest:extid:acme:{_sha256('RMA-7')}"),
        (keys.return_record(SETTINGS, "ret_1"), "rgwtest:return:ret_1"),
        (keys.return_event(SETTINGS, "msg_1"), "rgwtest:return-event:msg_1"),
        (keys.webhook_event_claim(SETTINGS, "extensiv", "evt_1"), "rgwtest:webhook:extensiv:evt_1"),
        (keys.rate_limit_prefix(SETTINGS), "rgwtest:ratelimit"),
        (keys.webhook_rate_limit_prefix(SETTINGS), "rgwtest:ratelimit:webhooks"),
        (keys.api_key(SETTINGS, "abc"), "rgwtest:apikey:abc"),
        (keys.api_key_index(SETTINGS), "rgwtest:apikeys"),
        (keys.partner_settings(SETTINGS, "acme"), "rgwtest:partner:acme"),
        (keys.effect(SETTINGS, "netsuite", "msg_1"), "rgwtest:effect:netsuite:msg_1"),
        (keys.webhook_endpoints(SETTINGS, "acme"), "rgwtest:webhook-endpoints:acme"),
        (keys.lifecycle_state(SETTINGS, "ret_1"), "rgwtest:lifecycle:ret_1"),
        (keys.lifecycle_timeline(SETTINGS, "ret_1"), "rgwtest:timeline:ret_1"),
        (keys.lifecycle_applied(SETTINGS, "ret_1"), "rgwtest:lifecycle-applied:ret_1"),
        (keys.lifecycle_outbox(SETTINGS, "msg_1"), "rgwtest:lifecycle-outbox:msg_1"),
        (
            keys.returned_quantities(SETTINGS, "acme", "invoice", "INV-1"),
            "rgwtest:returned:acme:invoice:INV-1",
        ),
        (keys.approvals_queue(SETTINGS), "rgwtest:approvals"),
        (keys.holds_queue(SETTINGS), "rgwtest:holds"),
        (keys.inspections_queue(SETTINGS, "acme"), "rgwtest:inspections:acme"),
        (keys.edi_interchange(SETTINGS, "acme", "ZZ:S.1"), "rgwtest:edi:interchange:acme:ZZ:S.1"),
        (
            keys.edi_interchange(SETTINGS, "acme", "S.1", "edifact"),
            "rgwtest:edi:edifact:interchange:acme:S.1",
        ),
        (keys.edi_ack_control(SETTINGS), "rgwtest:edi:control"),
        (keys.edi_origin(SETTINGS, "ret_1"), "rgwtest:edi:origin:ret_1"),
        (keys.edi_response(SETTINGS, "edr_1"), "rgwtest:edi:response:edr_1"),
        (keys.edi_responses(SETTINGS, "ret_1"), "rgwtest:edi:responses:ret_1"),
        (keys.edi_response_control(SETTINGS, "acme"), "rgwtest:edi:control:out:acme"),
        (keys.audit_log(SETTINGS), "rgwtest:audit"),
        (keys.namespace_pattern(SETTINGS), "rgwtest:*"),
    ],
)
def test_a_key_is_spelled_as_before(named: str, spelled: str) -> None:
    assert named == spelled


def test_the_lifecycle_queues_keep_their_keys() -> None:
    assert keys.approvals_queue(SETTINGS) == SETTINGS.key(*APPROVALS)
    assert keys.holds_queue(SETTINGS) == SETTINGS.key(*HOLDS)
    assert keys.inspections_queue(SETTINGS, "acme") == SETTINGS.key(*inspections_of("acme"))


def _key_functions() -> list[tuple[str, object]]:
    return [
        (name, function)
        for name, function in vars(keys).items()
        if inspect.isfunction(function) and function.__module__ == keys.__name__ and not name.startswith("_")
    ]


@pytest.mark.parametrize(("name", "function"), _key_functions())
def test_every_key_is_in_the_namespace_and_documented(name: str, function: object) -> None:
    assert inspect.isfunction(function)
    parameters = list(inspect.signature(function).parameters.values())
    assert parameters[0].name == "settings", name
    args = [f"part{i}" for i, p in enumerate(parameters[1:]) if p.default is inspect.Parameter.empty]
    assert function(SETTINGS, *args).startswith("rgwtest:"), name
    assert function.__doc__, f"{name} says what lives there and its Redis type"
