"""Numbers in EDI and HTTP headers are ASCII digits: ``str.isdigit`` also takes ``'¹'`` or
``'٣'``, which ``int`` refuses, so such a value must be refused as malformed, never crash."""

from __future__ import annotations

import httpx
import pytest

from gateway.edi._spec import Element
from gateway.edi._structure import _check_value
from gateway.edi._tokens import is_digits
from gateway.sdk import retry_after_seconds


@pytest.mark.parametrize("text", ["¹024", "٣٣", "\uff12\uff10\uff12\uff14", ""])
def test_only_ascii_digits_are_digits(text: str) -> None:
    assert not is_digits(text)


def test_ascii_digits_are_digits() -> None:
    assert is_digits("20241204")


@pytest.mark.parametrize(("kind", "value", "code"), [("DT", "¹0241204", "8"), ("TM", "¹230", "9")])
def test_a_date_or_time_with_unicode_digits_is_a_syntax_error(kind: str, value: str, code: str) -> None:
    assert _check_value(Element(ref=373, type=kind, min=6, max=8), value, None) == code


def test_a_retry_after_with_unicode_digits_is_ignored() -> None:
    response = httpx.Response(429, headers={"Retry-After": "¹0".encode("latin-1")})
    assert retry_after_seconds(response) is None
