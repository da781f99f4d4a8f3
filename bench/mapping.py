"""How long mapping one 50-line return request takes, in each candidate expression language.

The same transformation (canonical return request → NetSuite return authorization: header
fields, a table lookup per line, a number conversion per line) written three ways:

* our field map (``mappings/netsuite/return-request.v1.outbound.yaml``), compiled to Python;
* JMESPath (``jmespath``), the expression compiled once with ``jmespath.compile``;
* JSONata (``jsonata-python``), the expression parsed once.

The alternatives are optional (``pip install '.[bench]'``); a missing one is skipped.

    python -m bench.mapping [--lines 50] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateway.mapping import MappingCatalog
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT

VARIABLES = {"message_id": "msg_bench", "correlation_id": "ret_" + "0" * 32, "partner": "bench"}
UNITS = {"C62": "1", "EA": "1", "BX": "2"}
REASONS = {"defective": "5", "no_longer_needed": "1", "damaged_in_transit": "3"}

JMESPATH = """{
  externalId: vars.message_id, entity: {externalId: payload.customer.account_number},
  tranDate: payload.requested_date, orderStatus: 'A', otherRefNum: payload.external_id,
  memo: payload.notes,
  item: {items: payload.lines[*].{line: line_number, item: {externalId: sku}, quantity: quantity,
         rate: to_number(unit_price.amount), unitCode: unit_of_measure, description: description}}
}"""

JSONATA = """{
  "externalId": vars.message_id, "entity": {"externalId": payload.customer.account_number},
  "tranDate": payload.requested_date, "orderStatus": "A", "otherRefNum": payload.external_id,
  "memo": payload.notes, "custbody_rgw_reason": {"id": $lookup(reasons, payload.reason_code)},
  "item": {"items": [payload.lines.{"line": line_number, "item": {"externalId": sku},
           "quantity": quantity, "rate": $number(unit_price.amount),
           "units": {"id": $lookup(units, unit_of_measure)}, "description": description}]}
}"""


def request_with(lines: int) -> dict[str, Any]:
    example = ContractRegistry.from_folder(PROJECT_ROOT / "contracts").require("return-request", "v1")
    payload = copy.deepcopy(example.valid_examples[0].payload)
    template = payload["lines"][0]
    payload["lines"] = [{**template, "line_number": n + 1} for n in range(lines)]
    return payload


def measure(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 99th percentile of one call, in microseconds (after a warm-up)."""
    for _ in range(min(repeat // 10, 200)):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def candidates(payload: dict[str, Any]) -> dict[str, Callable[[], object]]:
    mapping = MappingCatalog.load(PROJECT_ROOT / "mappings", PROJECT_ROOT / "contracts").get(
        "netsuite", "return-request.v1.outbound"
    )
    found: dict[str, Callable[[], object]] = {
        "field map (compiled), output validated": lambda: mapping.apply(payload, VARIABLES),
        "field map (compiled), mapping only": lambda: mapping.function(payload, VARIABLES),
    }
    document = {"payload": payload, "vars": VARIABLES, "units": UNITS, "reasons": REASONS}
    try:
        import jmespath

        expression = jmespath.compile(JMESPATH)
        found["JMESPath (compiled; no table lookups)"] = lambda: expression.search(document)
    except ImportError:
        print("jmespath not installed: skipped")
    try:
        from jsonata import Jsonata

        jsonata = Jsonata(JSONATA)
        found["JSONata (parsed once)"] = lambda: jsonata.evaluate(document)
    except ImportError:
        print("jsonata-python not installed: skipped")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    payload = request_with(args.lines)
    print(f"one return request with {args.lines} lines, {args.repeat} runs each")
    for name, call in candidates(payload).items():
        repeat = args.repeat if "JSONata" not in name else max(args.repeat // 20, 50)
        median, p99 = measure(call, repeat)
        print(f"  {name:42} median {median:9.1f} µs   p99 {p99:9.1f} µs")


if __name__ == "__main__":
    main()
