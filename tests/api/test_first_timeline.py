"""An accepted return has a timeline from the first moment, before the lifecycle opens it; for
another partner it does not exist."""

from __future__ import annotations

from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers, return_request


async def test_an_accepted_return_has_its_requested_line_before_the_lifecycle_opens_it(
    gateway: Gateway, make_key: KeyFactory
) -> None:
    key = await make_key("acme")
    accepted = await gateway.client.post("/v1/returns", json=return_request(), headers=headers(key))
    assert accepted.status_code == 202, accepted.text
    return_id = accepted.json()["id"]
    record = (await gateway.client.get(f"/v1/returns/{return_id}", headers=headers(key))).json()

    response = await gateway.client.get(f"/v1/returns/{return_id}/timeline", headers=headers(key))
    assert response.status_code == 200, response.text  # no lifecycle runs in this test
    timeline = response.json()
    assert timeline["status"] == record["status"] == "requested"
    [first] = timeline["data"]
    assert first["action"] == "status_changed" and first["to_status"] == "requested"
    assert first["actor"] == {"type": "partner", "id": "acme"}

    rival = await make_key("rival")
    hidden = await gateway.client.get(f"/v1/returns/{return_id}/timeline", headers=headers(rival))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
