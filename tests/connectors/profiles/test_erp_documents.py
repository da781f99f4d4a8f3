"""What both ERP profiles do alike when a request arrives: read every referenced document,
list those the ERP does not know, and judge nothing (deciding is the lifecycle's job)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.erp.business_central_sandbox import COMPANY_ID, ENVIRONMENT, TENANT, BusinessCentralSandbox
from connectors.erp.netsuite_sandbox import NetSuiteSandbox
from gateway.sandbox import Sandbox
from gateway.sdk import Connector
from tests.support.erp import only, request
from tests.support.profiles import connector_on, delivery


@dataclass(frozen=True)
class Profile:
    build: Callable[[], Sandbox]
    use: str
    options: dict[str, Any]
    rma_collection: str


PROFILES = {
    "netsuite": Profile(
        NetSuiteSandbox,
        "connectors.erp.netsuite:NetSuiteConnector",
        {"return_site": "DC-HAM"},
        "returnAuthorization",
    ),
    "business_central": Profile(
        BusinessCentralSandbox,
        "connectors.erp.business_central:BusinessCentralConnector",
        {"tenant": TENANT, "environment": ENVIRONMENT, "company_id": COMPANY_ID},
        "salesCreditMemos",
    ),
}


@dataclass
class Erp:
    connector: Connector
    sandbox: Sandbox
    profile: Profile

    async def documents(self, payload: dict[str, Any]) -> dict[str, Any]:
        event = only(
            await self.connector.handle(delivery("return-request.v1", payload)), "return-documents.v1"
        )
        return event.payload  # type: ignore[no-any-return]

    def created_nothing(self) -> bool:
        writes = [s for s in self.sandbox.state.requests if s.method in ("POST", "PATCH", "DELETE")]
        token_path = self.sandbox.token_path
        return self.sandbox.state.count(self.profile.rma_collection) == 0 and all(
            s.path == token_path for s in writes
        )


@pytest.fixture(params=sorted(PROFILES))
async def erp(request: pytest.FixtureRequest) -> AsyncIterator[Erp]:
    profile = PROFILES[request.param]
    sandbox = profile.build()
    async with connector_on(sandbox, profile.use, name="erp", options=profile.options) as connector:
        yield Erp(connector, sandbox, profile)


async def test_unknown_references_are_listed_as_missing(erp: Erp) -> None:
    references = {"invoice": {"number": "99999999"}, "shipment": {"number": "80071234"}}
    answer = await erp.documents(request(references=references))

    assert answer["missing"] == [{"kind": "invoice", "number": "99999999"}]
    assert [(d["kind"], d["number"]) for d in answer["documents"]] == [("shipment", "80071234")]
    assert erp.created_nothing()


async def test_no_known_reference_is_still_an_answer_not_a_failure(erp: Erp) -> None:
    references = {"order": {"number": "SO-404"}, "invoice": {"number": "99999999"}}
    answer = await erp.documents(request(references=references))

    assert answer["documents"] == []
    assert answer["missing"] == [
        {"kind": "order", "number": "SO-404"},
        {"kind": "invoice", "number": "99999999"},
    ]


async def test_a_request_for_more_than_was_invoiced_is_not_judged_here(erp: Erp) -> None:
    """Quantities are the lifecycle's to check: the connector reads and answers, creates nothing."""
    payload = request()
    payload["lines"][0]["quantity"] = 40
    answer = await erp.documents(payload)

    assert len(answer["documents"]) == 3
    assert erp.created_nothing()
