"""Returns written straight into the record (PostgreSQL) as the intake and the lifecycle write
them: the row of ``returns`` with its request, its lines, and timeline entries as
``gateway.lifecycle`` notes them (``status_changed`` with from and to, ``document_posted``,
``supplier_claim``...), each move updating the return's status, ``status_since`` and
``updated_at``. For tests of the read side, so they need neither the broker nor the lifecycle."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

LIFECYCLE = {"type": "system", "id": "lifecycle"}
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
"""A Monday morning the tests' timelines start from."""


def request_of(
    external_id: str,
    *,
    reason: str,
    channel: str,
    customer: str,
    lines: Sequence[dict[str, Any]],
    personal: bool,
) -> dict[str, Any]:
    """A ``return-request`` v1 payload; with ``personal``, a contact, an address and notes."""
    request: dict[str, Any] = {
        "external_id": external_id,
        "channel": channel,
        "customer": {"account_number": customer, "name": "Nordwind Automation GmbH"},
        "reason_code": reason,
        "requested_date": "2026-11-01",
        "references": {"invoice": {"number": "90031877", "date": "2026-10-06"}},
        "lines": [
            {
                "line_number": n,
                "sku": line["sku"],
                "quantity": line.get("quantity", 1),
                "unit_of_measure": "C62",
                "unit_price": {"amount": line.get("price", "10.00"), "currency": line.get("currency", "EUR")},
                **({"notes": f"line {n}: scratched casing, call Jana"} if personal else {}),
                **({"reason_code": line["reason"]} if "reason" in line else {}),
            }
            for n, line in enumerate(lines, start=1)
        ],
    }
    if personal:
        request["contact"] = {
            "name": "Jana Krüger",
            "email": "j.krueger@example.com",
            "phone": "+49 40 555 0192",
        }
        request["ship_from"] = {"lines": ["Hafenstraße 21"], "city": "Hamburg", "country": "DE"}
        request["notes"] = "Two drives report SMART errors; call Jana before pickup."
    return request


class Records:
    """Writes returns and their timelines for one test (autocommit: visible to the gateway at once)."""

    def __init__(self, url: str) -> None:
        self.db = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.db.close()

    def partner(self, name: str | None = None) -> str:
        partner = name or f"p{uuid.uuid4().hex[:10]}"
        self.db.execute("INSERT INTO partners (id) VALUES (%s) ON CONFLICT DO NOTHING", [partner])
        return partner

    def accept(
        self,
        partner: str,
        *,
        at: dt.datetime = T0,
        external_id: str | None = None,
        reason: str = "defective",
        channel: str = "api",
        customer: str = "C100234",
        lines: Sequence[dict[str, Any]] = ({"sku": "SSD-1", "quantity": 1, "price": "10.00"},),
        personal: bool = True,
        opened: bool = True,
    ) -> str:
        """A return accepted at ``at``; ``opened``: the lifecycle opened it (its first timeline line)."""
        return_id = f"ret_{uuid.uuid4().hex}"
        external_id = external_id or f"RMA-{uuid.uuid4().hex[:12]}"
        request = request_of(
            external_id, reason=reason, channel=channel, customer=customer, lines=lines, personal=personal
        )
        self.db.execute(
            """INSERT INTO returns (id, partner_id, external_id, channel, customer_account, customer_name,
                   reason_code, requested_date, contract, contract_version, message_id, request,
                   accepted_at, updated_at, status, status_since, published_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, '2026-11-01', 'return-request', 'v1', %s, %s, %s, %s,
                   'requested', %s, %s)""",
            [
                return_id,
                partner,
                external_id,
                channel,
                customer,
                "Nordwind Automation GmbH",
                reason,
                f"msg_{uuid.uuid4().hex}",
                json.dumps(request),
                at,
                at,
                at,
                at,
            ],
        )
        for n, line in enumerate(lines, start=1):
            self.db.execute(
                """INSERT INTO return_lines (return_id, line_number, sku, quantity, unit_of_measure,
                       unit_price, currency, reason_code)
                   VALUES (%s, %s, %s, %s, 'C62', %s, %s, %s)""",
                [
                    return_id,
                    n,
                    line["sku"],
                    line.get("quantity", 1),
                    line.get("price", "10.00"),
                    line.get("currency", "EUR"),
                    line.get("reason"),
                ],
            )
        if opened:
            self.note(
                return_id,
                "status_changed",
                at,
                {"type": "partner", "id": partner},
                to_status="requested",
                detail=f"{channel} request {external_id}: {len(lines)} line(s), policy standard v1",
            )
        return return_id

    def note(
        self,
        return_id: str,
        action: str,
        at: dt.datetime,
        actor: dict[str, str] = LIFECYCLE,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        detail: str | None = None,
        documents: Sequence[dict[str, str]] = (),
    ) -> None:
        self.db.execute(
            """INSERT INTO timeline_entries (return_id, at, action, actor, message_id, from_status, to_status,
                   documents, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                return_id,
                at,
                action,
                json.dumps(actor),
                f"msg_{uuid.uuid4().hex}",
                from_status,
                to_status,
                json.dumps(list(documents)),
                detail,
            ],
        )

    def move(
        self,
        return_id: str,
        to: str,
        at: dt.datetime,
        actor: dict[str, str] = LIFECYCLE,
        *,
        detail: str | None = None,
        documents: Sequence[dict[str, str]] = (),
    ) -> None:
        """A status change, as ``Step.move`` writes it: the timeline line and the return's columns."""
        row = self.db.execute("SELECT status FROM returns WHERE id = %s", [return_id]).fetchone()
        assert row is not None
        self.note(
            return_id,
            "status_changed",
            at,
            actor,
            from_status=row[0],
            to_status=to,
            detail=detail,
            documents=documents,
        )
        self.db.execute(
            "UPDATE returns SET status = %s, status_since = %s, updated_at = %s WHERE id = %s",
            [to, at, at, return_id],
        )

    def walk(self, return_id: str, start: dt.datetime, *steps: tuple[str, float]) -> dt.datetime:
        """Moves one after the other, each ``hours`` after the one before; the last moment."""
        at = start
        for to, hours in steps:
            at += dt.timedelta(hours=hours)
            self.move(return_id, to, at)
        return at

    def update(self, return_id: str, **columns: Any) -> None:
        for column, value in columns.items():
            self.db.execute(f"UPDATE returns SET {column} = %s WHERE id = %s", [value, return_id])
