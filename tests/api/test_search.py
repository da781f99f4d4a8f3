"""``GET /v1/returns``: filters, sorts, cursor pages without gaps or repeats, tenancy, problems."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from tests.conftest import Gateway, KeyFactory
from tests.support.records import T0, Records


@pytest.fixture
def records(gateway: Gateway) -> Iterator[Records]:
    writer = Records(gateway.settings.database)
    yield writer
    writer.close()


async def _page(gateway: Gateway, key: str, **params: Any) -> dict[str, Any]:
    response = await gateway.client.get(
        "/v1/returns", params=params, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _all(gateway: Gateway, key: str, **params: Any) -> list[str]:
    """Every page, cursor after cursor: the ids in the order the pages gave them."""
    ids: list[str] = []
    page = await _page(gateway, key, **params)
    while True:
        ids += [item["id"] for item in page["data"]]
        if page["next_cursor"] is None:
            assert page["has_more"] is False
            return ids
        page = await _page(gateway, key, **params, cursor=page["next_cursor"])


async def test_pages_follow_the_sort_without_gaps_or_repeats(
    gateway: Gateway, make_key: KeyFactory, records: Records
) -> None:
    partner = records.partner()
    key = await make_key(partner, ("returns:read",))
    # Four returns share each moment: the id breaks the tie, so no page boundary loses one.
    made = {
        records.accept(partner, at=T0 + dt.timedelta(minutes=i // 4)): T0 + dt.timedelta(minutes=i // 4)
        for i in range(23)
    }
    newest_first = sorted(made, key=lambda i: (made[i], i), reverse=True)
    assert await _all(gateway, key, limit=5) == newest_first
    assert await _all(gateway, key, limit=5, sort="created_at") == newest_first[::-1]
    assert await _all(gateway, key, limit=200) == newest_first


async def test_a_return_accepted_while_paging_is_neither_repeated_nor_skipped(
    gateway: Gateway, make_key: KeyFactory, records: Records
) -> None:
    partner = records.partner()
    key = await make_key(partner, ("returns:read",))
    before = [records.accept(partner, at=T0 + dt.timedelta(minutes=i)) for i in range(9)]
    first = await _page(gateway, key, limit=4, sort="created_at")
    later = records.accept(partner, at=T0 + dt.timedelta(days=1))
    seen = [item["id"] for item in first["data"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = await _page(gateway, key, limit=4, sort="created_at", cursor=cursor)
        seen += [item["id"] for item in page["data"]]
        cursor = page["next_cursor"]
    assert seen == [*before, later]


async def test_each_filter_narrows_the_search(
    gateway: Gateway, make_key: KeyFactory, records: Records
) -> None:
    partner = records.partner()
    key = await make_key(partner, ("returns:read",))
    plain = records.accept(partner, at=T0)
    damaged = records.accept(
        partner, at=T0 + dt.timedelta(hours=1), reason="damaged_in_transit", channel="edi"
    )
    other_customer = records.accept(
        partner, at=T0 + dt.timedelta(hours=2), customer="C-777", lines=[{"sku": "HDD-9"}, {"sku": "SSD-1"}]
    )
    known = records.accept(
        partner, at=T0 + dt.timedelta(hours=3), external_id="PORTAL-42", lines=[{"sku": "CAB-2"}]
    )
    records.walk(damaged, T0 + dt.timedelta(hours=1), ("validated", 0.25), ("authorized", 0.25))
    records.update(plain, updated_at=T0 + dt.timedelta(days=2))

    async def found(**params: Any) -> set[str]:
        return set(await _all(gateway, key, **params))

    assert await found() == {plain, damaged, other_customer, known}
    assert await found(status="authorized") == {damaged}
    assert await found(status="requested") == {plain, other_customer, known}
    assert await found(reason_code="damaged_in_transit") == {damaged}
    assert await found(channel="edi") == {damaged}
    assert await found(sku="SSD-1") == {plain, damaged, other_customer}
    assert await found(sku="HDD-9") == {other_customer}
    assert await found(customer="C-777") == {other_customer}
    assert await found(external_id="PORTAL-42") == {known}
    hour = dt.timedelta(hours=1)
    assert await found(created_from=(T0 + hour).isoformat(), created_to=(T0 + 3 * hour).isoformat()) == {
        damaged,
        other_customer,
    }
    assert await found(updated_from=(T0 + dt.timedelta(days=1)).isoformat()) == {plain}
    assert await found(status="authorized", channel="api") == set()
    # Last changed: plain (day 2), known (3 h, accepted), other_customer (2 h), damaged (authorized at 1.5 h).
    assert await _all(gateway, key, sort="-updated_at") == [plain, known, other_customer, damaged]
    assert await _all(gateway, key, sort="updated_at", limit=1) == [damaged, other_customer, known, plain]


async def test_a_partner_sees_its_own_and_admin_everyones(
    gateway: Gateway, make_key: KeyFactory, records: Records
) -> None:
    mine, theirs = records.partner(), records.partner()
    my_return = records.accept(mine, at=T0)
    their_return = records.accept(theirs, at=T0, external_id="SAME-ID")
    records.accept(mine, at=T0, external_id="SAME-ID")
    key = await make_key(mine, ("returns:read",))
    admin = await make_key(records.partner(), ("admin",))
    assert their_return not in await _all(gateway, key)
    assert my_return in await _all(gateway, key, partner=theirs)  # a partner cannot ask for another's
    everyone = await _all(gateway, admin, external_id="SAME-ID")
    assert their_return in everyone and len(everyone) >= 2
    assert await _all(gateway, admin, partner=theirs) == [their_return]
    item = (await _page(gateway, admin, partner=theirs))["data"][0]
    assert item["partner"] == theirs and item["external_id"] == "SAME-ID" and item["status"] == "requested"
    assert "request" not in item  # personal data stays behind GET /v1/returns/{id}


async def test_refusals_are_problems(gateway: Gateway, make_key: KeyFactory, records: Records) -> None:
    partner = records.partner()
    reader = await make_key(partner, ("returns:read",))
    writer = await make_key(partner, ("returns:write",))
    for _ in range(3):
        records.accept(partner)
    cursor = (await _page(gateway, reader, limit=1))["next_cursor"]
    cases: list[tuple[str, dict[str, Any], int]] = [
        (writer, {}, 403),
        (reader, {"limit": 0}, 400),
        (reader, {"limit": 201}, 400),
        (reader, {"sort": "status"}, 400),
        (reader, {"cursor": "not-a-cursor"}, 400),
        (reader, {"cursor": cursor, "sort": "updated_at"}, 400),
        (reader, {"created_from": "2026-11-02T09:00:00"}, 400),
        (reader, {"created_from": "yesterday"}, 400),
    ]
    for key, params, status in cases:
        response = await gateway.client.get(
            "/v1/returns", params=params, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    unauthenticated = await gateway.client.get("/v1/returns")
    assert unauthenticated.status_code == 401


async def test_postgresql_away_is_a_503_to_retry(gateway: Gateway, make_key: KeyFactory) -> None:
    reader = await make_key("acme", ("returns:read", "reports:read"))
    services = gateway.app.state.services
    # A pool on a port nobody listens on: no connection comes within its timeout.
    away = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, timeout=0.5, open=False
    )
    await away.open(wait=False)
    kept, services.database = services.database, away
    try:
        for path in ("/v1/returns", "/v1/reports/exceptions"):
            response = await gateway.client.get(path, headers={"Authorization": f"Bearer {reader}"})
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == str(gateway.settings.retry_after_seconds)
    finally:
        services.database = kept
        await away.close()
