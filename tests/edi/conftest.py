"""The EDI tests' offline pieces: the shipped partner profiles and the return-notice mapping."""

from __future__ import annotations

import pytest

from gateway.edi import Partner, PartnerDirectory, ReturnNoticeMapper
from gateway.settings import PROJECT_ROOT
from tests.support.payloads import RETURN_REQUEST
from tests.support.profiles import catalog


@pytest.fixture(scope="session")
def partners() -> PartnerDirectory:
    return PartnerDirectory.load(PROJECT_ROOT / "edi-partners.yaml")


@pytest.fixture(scope="session")
def nordwind(partners: PartnerDirectory) -> Partner:
    found = partners.get("nordwind")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def mapper() -> ReturnNoticeMapper:
    return ReturnNoticeMapper.from_catalog(catalog(), RETURN_REQUEST)
