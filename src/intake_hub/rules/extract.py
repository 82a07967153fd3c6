"""Order numbers, tracking numbers, phone numbers and amounts found in a message."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from intake_hub.envelope import Extracted
from intake_hub.rules.text import normalize

# Carriers whose numbers carry their own prefix.
_PREFIXED = (
    ("SF", re.compile(r"(?<![0-9a-z])sf\d{12,15}(?![0-9a-z])")),
    ("YTO", re.compile(r"(?<![0-9a-z])yt\d{13,15}(?![0-9a-z])")),
    ("JD", re.compile(r"(?<![0-9a-z])jd[a-z]{0,2}\d{11,15}(?![0-9a-z])")),
    ("EMS", re.compile(r"(?<![0-9a-z])e[a-z]\d{9}cn(?![0-9a-z])")),
    ("UPS", re.compile(r"(?<![0-9a-z])1z[0-9a-z]{16}(?![0-9a-z])")),
)
# Carriers whose numbers are bare digits: named near the number, they claim it.
_CARRIER_NAMES = (
    ("ZTO", ("中通", "zto")),
    ("YTO", ("圆通", "yto")),
    ("STO", ("申通", "sto")),
    ("YUNDA", ("韵达", "yunda")),
    ("JT", ("极兔", "j&t")),
    ("EMS", ("邮政", "ems")),
    ("SF", ("顺丰", "sf express")),
    ("JD", ("京东快递", "京东物流")),
)
_TRACKING_WORDS = ("运单", "快递单", "物流单", "快递号", "tracking", "waybill")
_ORDER_WORDS = ("订单", "order", "#", "单号")
_CONTEXT = 14  # characters before a number that may say what it is

_DIGITS = re.compile(r"(?<![0-9a-z])\d{5,20}(?![0-9a-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9-])(0\d{2,3})-(\d{7,8})(?![0-9])")
_AMOUNT = re.compile(
    r"(?:[¥$]|rmb|cny|usd)\s?(\d{1,9}(?:,\d{3})*(?:\.\d{1,2})?)"
    r"|(\d{1,9}(?:\.\d{1,2})?)\s?(?:元|块钱|块|rmb|yuan|dollars?)"
)

_ANY_DIGIT = re.compile(r"\d")
_NOTHING = Extracted()


def _context(norm: str, start: int) -> str:
    return norm[max(0, start - _CONTEXT) : start]


def _carrier_near(before: str) -> str | None:
    for carrier, names in _CARRIER_NAMES:
        if any(name in before for name in names):
            return carrier
    return None


def _amount(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return str(value.quantize(Decimal("0.01")))


def extract(text: str) -> Extracted:
    """The structured fields in `text`, each list in order of appearance without repeats."""
    # NFKC folds full-width digits and ￥ so one set of patterns covers both.
    norm = normalize(text)
    if _ANY_DIGIT.search(norm) is None:
        return _NOTHING
    taken: list[tuple[int, int]] = []
    tracking: dict[str, None] = {}
    orders: dict[str, None] = {}
    phones: dict[str, None] = {}
    amounts: dict[str, None] = {}

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    for carrier, pattern in _PREFIXED:
        for m in pattern.finditer(norm):
            taken.append(m.span())
            tracking[f"{carrier}:{m.group().upper()}"] = None
    for m in _MOBILE.finditer(norm):
        if free(*m.span()):
            taken.append(m.span())
            phones["".join(m.groups())] = None
    for m in _LANDLINE.finditer(norm):
        if free(*m.span()):
            taken.append(m.span())
            phones[f"{m.group(1)}-{m.group(2)}"] = None
    for m in _AMOUNT.finditer(norm):
        if free(*m.span()):
            value = _amount(m.group(1) or m.group(2) or "")
            if value is not None:
                taken.append(m.span())
                amounts[value] = None
    for m in _DIGITS.finditer(norm):
        if not free(*m.span()):
            continue
        number, before = m.group(), _context(norm, m.start())
        named = _carrier_near(before)
        if named is not None and len(number) >= 10:
            tracking[f"{named}:{number}"] = None
        elif any(w in before for w in _TRACKING_WORDS) and len(number) >= 10:
            tracking[f"unknown:{number}"] = None
        elif any(w in before for w in _ORDER_WORDS) or len(number) >= 10:
            # A long bare number in a shop's inbox is most often an order number.
            orders[number] = None
    return Extracted(
        order_numbers=tuple(orders),
        tracking_numbers=tuple(tracking),
        phones=tuple(phones),
        amounts=tuple(amounts),
    )
