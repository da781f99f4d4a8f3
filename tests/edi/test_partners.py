"""edi-partners.yaml: checked at start-up, and what a profile decides (senders, SKUs, codes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.edi import ItemSource, Partner, PartnerDirectory, PartnerProfileError
from gateway.settings import Settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edi-partners.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partners: {a: {interchange_ids: [X], customer_account: C1}}", "currency"),
        ("partners: {a: {interchange_ids: [X], customer_account: C1, currency: EUR, colour: red}}", "colour"),
        (
            "partners: {a: {interchange_ids: [X], customer_account: C1, currency: EUR},"
            " b: {interchange_ids: [X], customer_account: C2, currency: EUR}}",
            "bound to both a and b",
        ),
        (
            "partners: {a: {interchange_ids: [X], edifact_ids: [U], customer_account: C1, currency: EUR},"
            " b: {interchange_ids: [Y], edifact_ids: [U], customer_account: C2, currency: EUR}}",
            "'UNB U' is bound to both a and b",
        ),
        ("partners: [", "not valid YAML"),
    ],
    ids=[
        "missing-field",
        "unknown-field",
        "sender-of-two-partners",
        "unb-sender-of-two-partners",
        "bad-yaml",
    ],
)
def test_a_broken_profile_file_is_refused_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PartnerProfileError, match=message):
        PartnerDirectory.load(_write(tmp_path, text))


def test_the_gateway_refuses_to_start_on_a_broken_profile_file(tmp_path: Path) -> None:
    from gateway.api import create_app

    with pytest.raises(PartnerProfileError):
        create_app(Settings(edi_partners_file=_write(tmp_path, "partners: {a: {}}")))


def test_sender_ids_with_and_without_qualifier(partners: PartnerDirectory) -> None:
    assert partners.sender("ZZ", "NORDWIND") is not None
    assert partners.sender("01", "NORDWIND") is None  # listed only as ZZ:NORDWIND
    found = partners.sender("ZZ", "BALTICPARTS")
    assert found is not None and found[0] == "baltic"


def test_unb_sender_and_recipient_ids_with_and_without_qualifier(partners: PartnerDirectory) -> None:
    found = partners.edifact_sender("NORDWIND", "ZZ")
    assert found is not None and found[0] == "nordwind"
    assert partners.edifact_sender("NORDWIND", "14") is None  # listed only as NORDWIND:ZZ
    assert partners.edifact_sender("ZZ", "NORDWIND") is None  # UNB order: id, then qualifier
    baltic = partners.edifact_sender("BALTICPARTS", "1")  # listed without qualifier: any
    assert baltic is not None and baltic[0] == "baltic"
    assert partners.sender("ZZ", "NORDWIND") is not None  # the X12 ids are apart
    nordwind, baltic_partner = partners.get("nordwind"), partners.get("baltic")
    assert nordwind is not None and baltic_partner is not None
    assert nordwind.addresses_edifact("RGWDIST", "ZZ") and not nordwind.addresses_edifact("RGWDIST", "14")
    assert baltic_partner.addresses_edifact("ANYONE", "ZZ")  # no recipient ids: any


def test_sku_from_the_first_item_source_that_knows_the_item() -> None:
    partner = Partner(
        interchange_ids=["X"],
        customer_account="C1",
        currency="EUR",
        items=[ItemSource("VN"), ItemSource("BP", {"B-1": "SKU-1"})],
    )
    assert partner.sku({"VN": "SKU-9", "BP": "B-1"}) == "SKU-9"
    assert partner.sku({"BP": "B-1", "UP": "0123"}) == "SKU-1"
    assert partner.sku({"BP": "B-2"}) is None
    assert partner.sku({"UP": "0123"}) is None


def test_code_lists_come_from_the_tables(nordwind: Partner) -> None:
    lists = nordwind.code_lists()
    assert "DM" in lists["RDR02"] and "SM" not in lists["RDR02"]
    assert lists["BLI04"] == frozenset(nordwind.units)
