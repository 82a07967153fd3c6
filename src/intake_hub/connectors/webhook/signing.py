"""Standard Webhooks signatures: the `whsec_` secret, signing, and verifying a request.

The signed content is `f"{msg_id}.{timestamp}."` followed by the raw body bytes; a
signature header holds space-separated `<version>,<base64>` entries, several during a
key rotation. Nothing here logs, and no error message carries a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

PREFIX = "whsec_"
VERSION = "v1"
# Longer than any unix time this service will see; bounds int() on a hostile header.
_TIMESTAMP_DIGITS = 12


class Unverified(Exception):
    """A request whose signature does not hold; `reason` is a fixed word safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def secret_bytes(whsec: str) -> bytes:
    """The HMAC key in a `whsec_<base64>` secret; ValueError says what is wrong, not the value."""
    text = whsec.strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    if not text:
        raise ValueError("webhook secret is empty after the whsec_ prefix")
    # Some senders drop the padding; the reference libraries accept it unpadded too.
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64 after the whsec_ prefix") from None
    if not key:
        raise ValueError("webhook secret decodes to no bytes")
    return key


def _digest(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(secret, content, hashlib.sha256).digest()


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64 HMAC-SHA256>` signature entry of one message under `secret`."""
    digest = _digest(secret, msg_id, str(timestamp), body)
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def _candidates(header: str) -> list[bytes]:
    """The decoded `v1` signatures in `header`; entries of other versions are skipped."""
    found: list[bytes] = []
    for entry in header.split():
        version, sep, value = entry.partition(",")
        if not sep or version != VERSION:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secrets: Sequence[bytes],
    msg_id: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float,
    tolerance_s: int = 300,
) -> None:
    """Raise Unverified unless a `v1` entry of `header` signs the message under a secret."""
    if not msg_id or not timestamp or not header:
        raise Unverified("missing")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
        raise Unverified("malformed")
    stamp = int(timestamp)
    if stamp < now - tolerance_s:
        raise Unverified("stale")
    if stamp > now + tolerance_s:
        raise Unverified("future")
    given = _candidates(header)
    if not given:
        raise Unverified("malformed")
    matched = False
    # Every pair is compared, so the time taken says nothing about which one matched.
    for secret in secrets:
        want = _digest(secret, msg_id, timestamp, body)
        for sig in given:
            matched |= hmac.compare_digest(want, sig)
    if not matched:
        raise Unverified("mismatch")
