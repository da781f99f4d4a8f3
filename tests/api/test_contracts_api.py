"""GET /v1/contracts: what the gateway speaks, and deprecation signalled by headers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from gateway.api import create_app
from gateway.errors import ContractRegistryError
from gateway.registry import ContractRegistry
from gateway.settings import PROJECT_ROOT, Settings
from tests.conftest import Gateway, KeyFactory
from tests.support.payloads import headers, return_request


async def test_lists_every_contract_with_status(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key()
    listing = (await gateway.client.get("/v1/contracts", headers=headers(key))).json()
    entries = {(c["name"], c["version"]): c for c in listing["data"]}
    assert entries[("return-request", "v1")]["status"] == "active"
    assert ("credit-memo", "v1") in entries and ("return-status-changed", "v1") in entries


async def test_serves_a_schema_and_404s_an_unknown_one(gateway: Gateway, make_key: KeyFactory) -> None:
    key = await make_key()
    schema = await gateway.client.get("/v1/contracts/return-request/v1", headers=headers(key))
    assert schema.status_code == 200
    assert schema.headers["content-type"].startswith("application/schema+json")
    assert schema.json()["$id"].endswith("/return-request/v1/schema.json")
    assert "deprecation" not in schema.headers
    missing = await gateway.client.get("/v1/contracts/return-request/v9", headers=headers(key))
    assert missing.status_code == 404


def _copy_contracts(tmp_path: Path) -> Path:
    target = tmp_path / "contracts"
    shutil.copytree(PROJECT_ROOT / "contracts", target)
    return target


async def test_deprecated_version_still_works_with_deprecation_and_sunset(
    tmp_path: Path,
    settings: Settings,
    redis,
    amqp,
    make_key: KeyFactory,  # type: ignore[no-untyped-def]
) -> None:
    folder = _copy_contracts(tmp_path)
    schema_path = folder / "return-request" / "v1" / "schema.json"
    schema = json.loads(schema_path.read_text())
    schema.update({"deprecated": True, "x-deprecated-on": "2026-10-01", "x-sunset": "2027-03-31"})
    schema_path.write_text(json.dumps(schema))
    app = create_app(settings, ContractRegistry.from_folder(folder))
    key = await make_key()
    async with AsyncTestClient(app) as client:
        listed = (await client.get("/v1/contracts", headers=headers(key))).json()["data"]
        entry = next(c for c in listed if c["name"] == "return-request")
        assert entry["status"] == "deprecated" and entry["sunset_on"] == "2027-03-31"
        submitted = await client.post("/v1/returns", json=return_request(), headers=headers(key))
        assert submitted.status_code == 202
        assert submitted.headers["deprecation"] == "@1790812800"
        assert submitted.headers["sunset"] == "Wed, 31 Mar 2027 23:59:59 GMT"
        fetched = await client.get("/v1/contracts/return-request/v1", headers=headers(key))
        assert fetched.headers["sunset"] == "Wed, 31 Mar 2027 23:59:59 GMT"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda s: s.update({"type": "no-such-type"}), "not a valid 2020-12 schema"),
        (
            lambda s: s["properties"].update(
                {
                    "oops": {
                        "$ref": "https://returns-gateway.example/contracts/definitions/v1/schema.json#/$defs/Nope"
                    }
                }
            ),
            "does not resolve",
        ),
        (lambda s: s.update({"deprecated": True}), "x-deprecated-on"),
    ],
)
def test_registry_refuses_to_start_on_a_broken_contract(tmp_path: Path, breakage, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_contracts(tmp_path)
    schema_path = folder / "return-request" / "v1" / "schema.json"
    schema = json.loads(schema_path.read_text())
    breakage(schema)
    schema_path.write_text(json.dumps(schema))
    with pytest.raises(ContractRegistryError, match=message):
        ContractRegistry.from_folder(folder)


def test_registry_refuses_malformed_json(tmp_path: Path) -> None:
    folder = _copy_contracts(tmp_path)
    (folder / "receipt" / "v1" / "schema.json").write_text("{ nope")
    with pytest.raises(ContractRegistryError, match="cannot read JSON"):
        ContractRegistry.from_folder(folder)
