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
from gateway.edi import write_interchange
from gateway.registry import ContractRegistry
from gateway.settings import Settings

console = Console(highlight=False, soft_wrap=True)

LABELS = {"erp": "ERP", "wms": "WMS", "carrier": "carrier", "crm": "CRM"}


#: How each demo return should end, by the policy in ``policies/default.yaml``.
EXPECTED_END = {
    "SSD": "closed",  # authorized by rule; one unit defective (claimed from the vendor), one restocked
    "PSU": "closed",  # transit damage with photos, inside its 7-day window
    "UNASKED": "closed",  # an unauthorized return: the returns desk approves it, then it travels
    "CABLE-LATE": "rejected",  # remorse asked after the 30-day window
    "CABLE-60": "closed",  # 60 asked, 50 shipped: partially authorized, 50 travel
    "NEVER-SHIPPED": "rejected",  # an item the shipment never held
    "EDI-180": "closed",  # an X12 180 from trading partner nordwind: 997 at once, a 180 back when decided
}


def nordwind_180(tag: str) -> bytes:
    """One X12 180 as nordwind's translator sends it: a defective SSD, serial number as evidence."""
    segments = [
        ["BGN", "00", f"NW-{tag}", "20240220"],
        ["RDR", "", "DM", "", "Drive fails SMART self-test"],
        ["PRF", "4500118832", "", "", "20240202"],
        ["N9", "IV", "90031877", "", "20240206"],
        ["N1", "BY", "Nordwind Automation GmbH", "91", "C100234"],
        ["PER", "IC", "Jana Krueger", "TE", "+49 40 555 0192"],
        ["N1", "SF", "Nordwind Automation GmbH"],
        ["N3", "Wareneingang Tor 3", "Hafenstrasse 21"],
        ["N4", "Hamburg", "", "20457", "DE"],
        ["BLI", "BP", "NW-4711", "1", "EA", "CON", "289.50"],
        ["N9", "SE", "S5KANE0R409977"],
    ]
    return write_interchange([[segments]], control=int(tag, 16) % 999_999_999 + 1).encode()


def _returns(registry: ContractRegistry) -> list[tuple[str, dict[str, Any]]]:
    """Six returns against shipment 80071234 and invoice 90031877 (seeded in every ERP
    sandbox), each meeting a different rule of the default policy."""
    base = copy.deepcopy(registry.require("return-request", "v1").valid_examples[0].payload)
    base["requested_date"] = "2024-02-20"  # 15 days after shipping
    base["channel"] = "portal"
    tag = secrets.token_hex(3).upper()

    def variant(
        name: str, reason: str, lines: list[dict[str, Any]], notes: str, **changes: Any
    ) -> tuple[str, dict[str, Any]]:
        payload = copy.deepcopy(base)
        payload.update(
            external_id=f"DEMO-{tag}-{name}", reason_code=reason, notes=notes, lines=lines, **changes
        )
        return name, payload

    ssd = {**base["lines"][0], "quantity": 1, "serial_numbers": ["S5KANE0R409911"]}
    psu = {
        "line_number": 1,
        "sku": "PSU-MW-RSP-500-24",
        "quantity": 1,
        "unit_of_measure": "C62",
        "unit_price": {"amount": "96.00", "currency": "EUR"},
        "order_line_number": 20,
        "photos": ["https://files.returns-gateway.example/demo/psu-carton.jpg"],
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
        variant(
            "PSU", "damaged_in_transit", [psu], "Carton crushed on arrival.", requested_date="2024-02-09"
        ),
        variant("UNASKED", "unauthorized_return", [ssd], "Parcel arrived without an RMA."),
        variant(
            "CABLE-LATE", "ordered_in_error", [cable], "Ordered 5 m, needed 2 m.", requested_date="2024-03-20"
        ),
        variant("CABLE-60", "ordered_in_error", [{**cable, "quantity": 60}], "All of them, please."),
        variant(
            "NEVER-SHIPPED", "defective", [{**ssd, "sku": "SSD-SAM-PM893-3T84"}], "Not from this shipment."
        ),
    ]


@dataclasses.dataclass
class Progress:
    started: float = dataclasses.field(default_factory=time.monotonic)
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    """return id → short name."""
    played: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    statuses: dict[str, str] = dataclasses.field(default_factory=dict)
    """return id → last status seen."""

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
        tag = secrets.token_hex(3).upper()
        edi = await stack.send_x12(nordwind_180(tag))
        for item in edi.headers.get("rgw-returns", "").split(","):
            if "=" in item:
                progress.names[item.split("=")[1]] = "EDI-180"
        acks = " ".join(s.strip() for s in edi.text.split("~") if s.strip().startswith(("AK5", "AK9")))
        console.print(
            f"[bold]EDI-180[/bold]   nordwind X12 180 → gateway {edi.status_code}: 997 {acks or edi.text}"
        )
        for name, payload in _returns(registry):
            response = await stack.submit(payload, idempotency_key=uuid.uuid4().hex)
            body = response.json()
            if response.status_code != 202:
                console.print(f"[red]{name}: {response.status_code} {body}[/red]")
                continue
            progress.names[body["id"]] = name
            progress.show(body["id"], "gateway", "return accepted (202)", body["status"])
        deadline = time.monotonic() + give_up_after
        ended: dict[str, str] = {}
        while time.monotonic() < deadline and len(ended) < len(progress.names):
            watcher.poll(progress.show)
            await play_the_outside_world(
                stack, progress, list(progress.names), lambda: watcher.poll(progress.show)
            )
            for return_id in progress.names:
                status = await stack.status(return_id)
                if status != progress.statuses.get(return_id):
                    progress.statuses[return_id] = status
                    progress.show(return_id, "gateway", "status", status)
                if status == "pending_approval" and (return_id, "approval") not in progress.played:
                    progress.played.add((return_id, "approval"))
                    decided = await stack.approve(return_id, "Known customer; goods expected back.")
                    progress.show(
                        return_id, "desk", "approves (returns:approve)", f"→ gateway {decided.status_code}"
                    )
                if status in ("closed", "rejected"):
                    ended[return_id] = status
            await asyncio.sleep(0.05)
        watcher.poll(progress.show)
        await _report_dead_letters(stack, progress)
        await _timelines(stack, progress)
        for return_id, name in progress.names.items():
            if name == "EDI-180":
                for response in await stack.x12_responses(return_id):
                    console.print(f"\n[bold]{name}[/bold]: the 180 sent back to nordwind\n{response}")
        _summary(stack, progress)
        wrong = {
            progress.names[rid]: ended.get(rid, progress.statuses.get(rid))
            for rid in progress.names
            if ended.get(rid) != EXPECTED_END[progress.names[rid]]
        }
        if wrong:
            console.print(f"[red]not where the policy sends them: {wrong}[/red]")
        return 0 if not wrong else 1


async def play_the_outside_world(
    stack: Stack, progress: Progress, returns: list[str], catch_up: Callable[[], None]
) -> None:
    """What people and parcels do: the carrier scans the parcel in transit and delivered; the
    warehouse receives and inspects it. Each step once, sent as the systems' signed webhooks."""
    for return_id in returns:
        if progress.statuses.get(return_id) in (
            None,
            "requested",
            "validated",
            "pending_approval",
            "rejected",
        ):
            continue  # nothing is shipped before it is authorized
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
    # QC finds the first line defective (it goes back to the vendor), the rest as new.
    body, headers = stack.sandboxes["wms"].inspect_return(receiver["referenceNum"], grades={1: "DEF"})  # type: ignore[attr-defined]
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


async def _timelines(stack: Stack, progress: Progress) -> None:
    """Each return's timeline as ``GET /v1/returns/{id}/timeline`` tells it: every step explained."""
    for return_id, name in progress.names.items():
        console.print(f"\n[bold]{name}[/bold] {return_id} timeline")
        for entry in await stack.timeline(return_id):
            moved = f"→ {entry['to_status']}" if entry.get("to_status") else entry["action"]
            rule = (
                f" [magenta]{entry['rule']['id']}@{entry['rule']['version']}[/magenta]"
                if entry.get("rule")
                else ""
            )
            documents = ", ".join(
                f"{d['system']} {d['document_type']} {d.get('number') or d['id']}"
                for d in entry.get("documents", [])
            )
            detail = entry.get("detail") or ""
            console.print(
                f"  {entry['at'][11:23]} {entry['actor']['id']:14} {moved:18}{rule} {detail}"
                + (f" [cyan]({documents})[/cyan]" if documents else "")
            )


def _summary(stack: Stack, progress: Progress) -> None:
    table = Table(title="Where each return went (records per system)")
    table.add_column("return")
    table.add_column("status")
    for role in stack.sandboxes:
        table.add_column(LABELS[role])
    for return_id, name in progress.names.items():
        row = [name, progress.statuses.get(return_id, "?")]
        for sandbox in stack.sandboxes.values():
            count = sum(1 for r in sandbox.state.all_records() if return_id in set(return_ids_in(r)))
            row.append(str(count))
        table.add_row(*row)
    console.print(table)
