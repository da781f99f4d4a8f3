"""How long one X12 interchange of 1,000 180 return requests (about 1 MB) takes to go through
the offline half of EDI intake: tokenized, envelope and structure checked against the 180
table with the partner's code lists, each set read into a return notice, mapped to
``return-request`` v1 (SKU, reasons and units from the partner profile), checked against the
contract, and the 997 written. Publishing is not included (``bench.intake`` measures that).

    python -m bench.edi [--sets 1000] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

from gateway.edi import PartnerDirectory, ReturnNoticeMapper, check_interchange
from gateway.edi._write import write_interchange
from gateway.mapping import MappingCatalog
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT

TARGET_SECONDS = 0.5


def return_set(number: int) -> list[list[str]]:
    """A 180 of three lines (one by the buyer's part number), about 1 kB."""
    lines: list[list[str]] = []
    for line in range(3):
        item = ["BP", "NW-4711"] if line == 2 else ["VN", "SSD-SAM-PM893-1T92"]
        lines += [
            ["BLI", *item, str(line + 1), "EA", "CON", "289.50"],
            ["PID", "F", "", "", "", "Samsung PM893 1.92 TB SATA SSD"],
            ["N9", "SE", f"S5KANE0R{number:06d}{line}"],
            ["N9", "LI", str(10 * (line + 1))],
            ["RDR", "", "DR" if line else "DM", "", "SMART reallocated sector count rising"],
        ]
    return [
        ["BGN", "00", f"RQ-BENCH-{number:06d}", "20240311", "0942"],
        ["RDR", "", "DM", "", "Drives report SMART errors after three weeks in a NAS array"],
        ["PRF", f"45{number:08d}", "", "", "20240202"],
        ["DTM", "050", "20240311"],
        ["N9", "IV", f"9{number:07d}", "", "20240206"],
        ["N1", "BY", "Nordwind Automation GmbH", "91", "C100234"],
        ["PER", "IC", "Jana Krueger", "TE", "+49 40 555 0192", "EM", "j.krueger@nordwind-automation.example"],
        ["N1", "SF", "Nordwind Automation GmbH"],
        ["N3", "Wareneingang Tor 3", "Hafenstrasse 21"],
        ["N4", "Hamburg", "", "20457", "DE"],
        *lines,
        ["CTT", "3"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    partners = PartnerDirectory.load(PROJECT_ROOT / "edi-partners.yaml")
    partner = partners.get("nordwind")
    assert partner is not None
    catalog = MappingCatalog.load(PROJECT_ROOT / "mappings", PROJECT_ROOT / "contracts", profiles=["edi"])
    contract = ContractRegistry.from_folder(PROJECT_ROOT / "contracts").require("return-request", "v1")
    mapper = ReturnNoticeMapper.from_catalog(catalog, contract)
    body = write_interchange([[return_set(n) for n in range(args.sets)]], newline="\r\n").encode()

    def once() -> float:
        start = time.perf_counter()
        checked = check_interchange(body, codes=partner.code_lists(), max_bytes=len(body))
        mapped = [mapper.apply(t, "nordwind", partner) for t in checked.transactions]
        ack = checked.ack()
        elapsed = time.perf_counter() - start
        assert len(mapped) == args.sets and all(m is not None for m in mapped), "every set must map"
        assert f"AK9*A*{args.sets}*{args.sets}*{args.sets}~" in ack
        return elapsed

    once()  # warm-up
    times = [once() for _ in range(args.runs)]
    median = statistics.median(times)
    print(f"interchange: {args.sets} sets of 180, {len(body) / 1e6:.2f} MB")
    print(
        f"tokenize + check + map + 997, median of {args.runs} runs: {median * 1000:.0f} ms "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); target {TARGET_SECONDS * 1000:.0f} ms: "
        f"{'met' if median <= TARGET_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
