"""Access codes: the customer's key to a ticket's status page, derived, never stored."""

from __future__ import annotations

import hmac
import re

from intake_hub.ticketno import ALPHABET, find_numbers

CODE_LENGTH = 8
_CODE = re.compile(rf"(?<![0-9A-Za-z])[0-9A-Za-z]{{{CODE_LENGTH}}}(?![0-9A-Za-z])")


def access_code(secret: bytes, number: str) -> str:
    """The access code for a ticket number: 40 bits of HMAC-SHA256 in Crockford base32."""
    digest = hmac.digest(secret, number.encode(), "sha256")
    value = int.from_bytes(digest[:5], "big")
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))


def check_code(secret: bytes, number: str, code: str) -> bool:
    """True when `code` opens `number`; constant time, case-insensitive."""
    expected = access_code(secret, number).encode()
    # Bytes, because compare_digest refuses non-ASCII str and a code comes from the URL.
    return hmac.compare_digest(expected, code.strip().upper().encode("utf-8", "replace"))


def quoted_proof(secret: bytes, text: str) -> str | None:
    """The ticket whose number and access code are both quoted in `text`, if any."""
    codes = {m.upper().encode() for m in _CODE.findall(text)}
    for number in find_numbers(text) if codes else ():
        expected = access_code(secret, number).encode()
        if any(hmac.compare_digest(expected, code) for code in codes):
            return number
    return None


class Links:
    """Builds the customer-facing status link for a ticket."""

    def __init__(self, public_url: str, secret: bytes) -> None:
        self.public_url = public_url.rstrip("/")
        self.secret = secret

    def code(self, number: str) -> str:
        """The access code for `number`."""
        return access_code(self.secret, number)

    def status_url(self, number: str, code: str | None = None) -> str:
        """The absolute status-page URL, access code included."""
        return f"{self.public_url}/tickets/{number}?code={code or self.code(number)}"
