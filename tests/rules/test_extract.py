"""Order numbers, tracking numbers, phones and amounts pulled out of customer text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake_hub.envelope import Extracted
from intake_hub.rules.extract import extract


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("尺码不对，想换大一码，订单号 4102938475610", "order_numbers", ("4102938475610",)),
        ("Can I get a VAT invoice for order 88231?", "order_numbers", ("88231",)),
        ("顺丰单号SF1234567890123查不到信息", "tracking_numbers", ("SF:SF1234567890123",)),
        ("单号是YT7788990011223", "tracking_numbers", ("YTO:YT7788990011223",)),
        ("京东的 JDVA12345678901 到哪了", "tracking_numbers", ("JD:JDVA12345678901",)),
        ("中通快递 78563412098765 麻烦查一下", "tracking_numbers", ("ZTO:78563412098765",)),
        ("韵达 4312345678901 卡住了", "tracking_numbers", ("YUNDA:4312345678901",)),
        ("运单号 9876543210123 查不到", "tracking_numbers", ("unknown:9876543210123",)),
        ("EMS EA123456789CN", "tracking_numbers", ("EMS:EA123456789CN",)),
        ("帮我改下电话 13812345678", "phones", ("13812345678",)),
        ("call +86 138-1234-5678 or 021-62345678", "phones", ("13812345678", "021-62345678")),
        ("应该退199.00元，只退了150", "amounts", ("199.00",)),
        ("you refunded $20 instead of $45.99", "amounts", ("20.00", "45.99")),
        ("多扣了10块 ￥２９.９", "amounts", ("10.00", "29.90")),
    ],
)
def test_fields(text: str, field: str, expected: tuple[str, ...]) -> None:
    """Each kind of number lands in its own field, normalised."""
    assert getattr(extract(text), field) == expected


def test_a_phone_is_not_an_order_number() -> None:
    """An 11-digit mobile number is a phone, not an order."""
    found = extract("电话13812345678，订单 230915442187")
    assert found.phones == ("13812345678",)
    assert found.order_numbers == ("230915442187",)


def test_nothing_found_is_empty() -> None:
    """Plain text yields empty fields."""
    assert extract("你好，在吗") == Extracted()


@given(st.text(max_size=200))
def test_any_text_extracts_without_error(text: str) -> None:
    """Whatever a customer types, extraction returns valid fields."""
    assert isinstance(extract(text), Extracted)
