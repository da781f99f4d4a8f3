"""The demo's script: which returns, what the warehouse and carrier do, and what is printed."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.demo._stack import Stack, running_stack
from gateway.demo._watch import Watcher, return_ids_in
from gateway.registry import ContractRegistry
from gateway.settings import Settings

console = Console(highlight=False, soft_wrap=True)

LABELS = {"erp": "ERP", "wms": "WMS", "carrier": "carrier", "crm": "CRM"}


def _returns(registry: ContractRegistry) -> list[tuple[str, dict[str, Any]]]:
    """Four returns against invoice 90031877 (seeded in every ERP sandbox); the last asks for
    more than was invoiced, so the ERP refuses it and it waits in the dead-letter queue."""
    base = copy.deepcopy(registry.require("return-request", "v1").valid_examples[0].payload)
    tag = secrets.token_hex(3).upper()

    def variant(
        name: str, reason: str, lines: list[dict[str, Any]], notes: str
    ) -> tuple[str, dict[str, Any]]:
        payload = copy.deepcopy(base)
        payload.update(external_id=f"DEMO-{tag}-{name}", reason_code=reason, notes=notes, lines=lines)
        return name, payload

    ssd = base["lines"][0]
    psu = {
        "line_number": 1,
        "sku": "PSU-MW-RSP-500-24",
        "quantity": 1,
        "unit_of_measure": "C62",
        "unit_price": {"amount": "96.00", "currency": "EUR"},
        "order_line_number": 20,
    }
    cable = {
        "line_number": 1,
        "sku": "CBL-CAT6A-SFTP-5M",
        "quantity": 10,
        "unit_of_measure": "C62",
        "unit_price": {"amount": "7.90", "currency": "EUR"},
        "order_line_number": 30,
    }
    return [
        ("SSD", base | {"external_id": f"DEMO-{tag}-SSD"}),
        variant("PSU", "damaged_in_transit", [psu], "Carton crushed on arrival, unit rattles."),
        variant("CABLE", "ordered_in_error", [cable], "Ordered 5 m instead of 2 m."),
        variant("TOO-MANY", "defective", [{**ssd, "quantity": 40}], "More than we ever bought."),
    ]


@dataclasses.dataclass
class Progress:
    started: float = dataclasses.field(default_factory=time.monotonic)
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    """return id → short name."""
    played: set[tuple[str, str]] = dataclasses.field(default_factory=set)

    def show(self, return_id: str, system: str, what: str, detail: str) -> None:
        if return_id == "-":
            return
        name = self.names.get(return_id, return_id[:12])
        console.print(
            f"[dim]{time.monotonic() - self.started:6.2f}s[/dim]  [bold]{name:9}[/bold] "
            f"{system:8} {what:34} [cyan]{detail}[/cyan]"
        )


async def run_demo(settings: Settings, *, erp: str = "netsuite", give_up_after: float = 60.0) -> int:
    """Run the demo; 0 when every return that should go through reached every system."""
    registry = ContractRegistry.from_folder(settings.contracts_dir)
    namespace = f"demo-{uuid.uuid4().hex[:6]}"
    settings = dataclasses.replace(settings, namespace=namespace)
    console.print(
        f"[bold]returns-gateway demo[/bold]: ERP {erp}, WMS extensiv, carrier easypost, CRM salesforce "
        f"(namespace {namespace})"
    )
    async with running_stack(settings, erp=erp) as stack:
        console.print(
            f"gateway on {stack.gateway_url}; sandboxes: "
            + ", ".join(f"{role} {url}" for role, url in stack.urls.items())
        )
        progress = Progress()
        watcher = Watcher(stack.sandboxes, {r: f"{LABELS[r]}" for r in stack.sandboxes})
        watcher.poll(lambda *args: None)  # the sandboxes' seed data is not news
        for name, payload in _returns(registry):
            response = await stack.submit(payload, idempotency_key=uuid.uuid4().hex)
            body = response.json()
            if response.status_code != 202:
                console.print(f"[red]{name}: {response.status_code} {body}[/red]")
                continue
            progress.names[body["id"]] = name
            progress.show(body["id"], "gateway", "return accepted (202)", body["status"])
        expected = [rid for rid, name in progress.names.items() if name != "TOO-MANY"]
        deadline = time.monotonic() + give_up_after
        done = False
        while time.monotonic() < deadline and not done:
            watcher.poll(progress.show)
            await play_the_outside_world(stack, progress, expected, lambda: watcher.poll(progress.show))
            done = all(_finished(stack, rid) for rid in expected)
            await asyncio.sleep(0.05)
        watcher.poll(progress.show)
        await _report_dead_letters(stack, progress)
        _summary(stack, progress, expected)
        return 0 if done else 1


def _finished(stack: Stack, return_id: str) -> bool:
    """The CRM case has heard of the inspection: the end of the path this demo plays."""
    return any(
        return_id in set(return_ids_in(c)) and "inspect" in str(c).lower()
        for c in stack.sandboxes["crm"].state.all_records()
    )


async def play_the_outside_world(
    stack: Stack, progress: Progress, returns: list[str], catch_up: Callable[[], None]
) -> None:
    """What people and parcels do: the carrier scans the parcel in transit and delivered; the
    warehouse receives and inspects it. Each step once, sent as the systems' signed webhooks."""
    for return_id in returns:
        for step, ready, play in _STEPS:
            if (return_id, step) in progress.played or not ready(stack, return_id, progress):
                continue
            progress.played.add((return_id, step))
            catch_up()  # show what the systems did before what the outside world does next
            for body, headers, role in play(stack, return_id):
                response = await stack.webhook(role, body, headers)
                progress.show(return_id, LABELS[role], f"webhook {step}", f"→ gateway {response.status_code}")


Play = Callable[[Stack, str], list[tuple[bytes, dict[str, str], str]]]
Ready = Callable[[Stack, str, Progress], bool]


def _receiver(stack: Stack, return_id: str) -> dict[str, Any] | None:
    """The WMS's expected receipt (ASN) for the return, once the WMS connector created it."""
    return next(
        (r for r in stack.sandboxes["wms"].state.all("receivers") if r.get("poNum") == return_id), None
    )


def _shipment(stack: Stack, return_id: str) -> dict[str, Any] | None:
    """The carrier's return shipment, once the carrier connector bought its label."""
    return next(
        (
            s
            for s in stack.sandboxes["carrier"].state.all("shipments")
            if s.get("reference") == return_id and s.get("tracker")  # bought: it has a tracker
        ),
        None,
    )


def _carrier_scan(status: str) -> Play:
    def play(stack: Stack, return_id: str) -> list[tuple[bytes, dict[str, str], str]]:
        shipment = _shipment(stack, return_id)
        assert shipment is not None
        body, headers = stack.sandboxes["carrier"].tracker_event(shipment["id"], status)  # type: ignore[attr-defined]
        return [(body, headers, "carrier")]

    return play


def _warehouse_receives(stack: Stack, return_id: str) -> list[tuple[bytes, dict[str, str], str]]:
    receiver = _receiver(stack, return_id)
    assert receiver is not None
    body, headers = stack.sandboxes["wms"].confirm_receipt(receiver["referenceNum"])  # type: ignore[attr-defined]
    return [(body, headers, "wms")]


def _warehouse_inspects(stack: Stack, return_id: str) -> list[tuple[bytes, dict[str, str], str]]:
    receiver = _receiver(stack, return_id)
    assert receiver is not None
    body, headers = stack.sandboxes["wms"].inspect_return(receiver["referenceNum"])  # type: ignore[attr-defined]
    return [(body, headers, "wms")]


def _after(step: str, also: Ready | None = None) -> Ready:
    def ready(stack: Stack, return_id: str, progress: Progress) -> bool:
        return (return_id, step) in progress.played and (also is None or also(stack, return_id, progress))

    return ready


def _has_shipment(stack: Stack, return_id: str, progress: Progress) -> bool:
    return _shipment(stack, return_id) is not None


def _has_receiver(stack: Stack, return_id: str, progress: Progress) -> bool:
    return _receiver(stack, return_id) is not None


#: The outside world, in order: each step plays once its condition holds.
_STEPS: list[tuple[str, Ready, Play]] = [
    ("in_transit", _has_shipment, _carrier_scan("in_transit")),
    ("delivered", _after("in_transit"), _carrier_scan("delivered")),
    ("received", _after("delivered", _has_receiver), _warehouse_receives),
    ("inspected", _after("received"), _warehouse_inspects),
]


async def _report_dead_letters(stack: Stack, progress: Progress) -> None:
    for name, runtime in stack.runtimes.items():
        counts = ", ".join(f"{o.value} {n}" for o, n in runtime.outcomes.items()) or "nothing yet"
        console.print(f"{LABELS.get(name, name)} connector: {counts}")
        for letter in await stack.dead_letters(name):
            reason = letter.get("reason") or {}
            owner = progress.names.get(str(letter.get("correlation_id")), str(letter.get("correlation_id")))
            console.print(f"  [yellow]dead letter[/yellow] {owner}: {reason.get('detail', reason)}")


def _summary(stack: Stack, progress: Progress, expected: list[str]) -> None:
    table = Table(title="Where each return went (records per system)")
    table.add_column("return")
    for role in stack.sandboxes:
        table.add_column(LABELS[role])
    for return_id, name in progress.names.items():
        row = [name]
        for sandbox in stack.sandboxes.values():
            count = sum(1 for r in sandbox.state.all_records() if return_id in set(return_ids_in(r)))
            row.append(str(count))
        table.add_row(*row)
    console.print(table)
