"""Ticket numbers: unique across processes and restarts, readable, and found in text."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from intake_hub import ticketno
from intake_hub.access import access_code, check_code
from intake_hub.ticketno import ALPHABET, TicketNumbers


def _issue(home: str, n: int) -> list[str]:
    numbers = TicketNumbers.for_home(Path(home))
    try:
        return [numbers.next() for _ in range(n)]
    finally:
        numbers.close()


def test_numbers_are_11_unambiguous_characters() -> None:
    """A number has 11 characters, none of I, L, O or U, so it can be read over the phone."""
    numbers = TicketNumbers(node=5)
    for _ in range(1000):
        n = numbers.next()
        assert len(n) == 11
        assert set(n) <= set(ALPHABET)
        assert not set(n) & set("ILOU")


def test_a_burst_beyond_one_second_capacity_stays_unique() -> None:
    """100,000 numbers in a burst (more than a second's sequence space) are all distinct."""
    numbers = TicketNumbers(node=7)
    issued = [numbers.next() for _ in range(100_000)]
    assert len(set(issued)) == len(issued)


def test_processes_sharing_a_home_never_collide(tmp_path: Path) -> None:
    """Four processes started together on one data directory issue disjoint numbers."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        batches = pool.starmap(_issue, [(str(tmp_path), 20_000)] * 4)
    issued = [n for batch in batches for n in batch]
    assert len(set(issued)) == len(issued) == 80_000


def test_restart_of_a_slot_never_reuses_a_number(tmp_path: Path) -> None:
    """A slot restarted within the same second continues after the reserved range."""
    first = _issue(str(tmp_path), 50_000)  # runs into borrowed seconds
    second = _issue(str(tmp_path), 50_000)
    assert not set(first) & set(second)


def test_what_a_customer_types_normalises_to_the_number() -> None:
    """Lower case, dashes, and O/I/L confusions still find the ticket."""
    n = TicketNumbers(node=3).next()
    typed = ticketno.pretty(n).lower().replace("0", "o").replace("1", "l")
    assert ticketno.normalize(typed) == n


def test_numbers_are_found_in_messages_but_order_numbers_are_not() -> None:
    """A quoted ticket number is found; a 13-digit order number and plain words are not."""
    n = TicketNumbers(node=3).next()
    text = f"我的工单 {ticketno.pretty(n)} 还没处理，订单号 4102938475610, information please"
    assert ticketno.find_numbers(text) == [n]


@given(st.text(max_size=200))
def test_any_text_is_scanned_without_error(text: str) -> None:
    """Scanning arbitrary text for ticket numbers never raises."""
    for n in ticketno.find_numbers(text):
        assert ticketno.normalize(n) == n


def test_access_code_opens_only_its_own_ticket() -> None:
    """The code for one number does not open another, nor under another secret."""
    a, b = TicketNumbers(node=1).next(), TicketNumbers(node=2).next()
    code = access_code(b"s1", a)
    assert check_code(b"s1", a, code)
    assert check_code(b"s1", a, code.lower())
    assert not check_code(b"s1", b, code)
    assert not check_code(b"s2", a, code)
    assert not check_code(b"s1", a, "验证码")
