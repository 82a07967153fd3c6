"""Standard Webhooks signing and verification against the specification and the reference."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook  # type: ignore[import-untyped]

from intake_hub.connectors.webhook.signing import Unverified, secret_bytes, sign, verify
from tests.connectors.webhook.kit import OTHER_SECRET, SECRET

# The specification's published test vector.
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
KEY = secret_bytes(SECRET)


def test_the_published_vector_signs_as_published() -> None:
    """Our signature of the specification's vector is the published one, and the package's."""
    assert sign(KEY, MSG_ID, STAMP, BODY) == SIGNATURE
    reference = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(STAMP, tz=UTC), BODY.decode())
    assert reference == SIGNATURE


def test_the_published_vector_verifies_here_and_in_the_package() -> None:
    """The vector passes our verify and the package's (at its own time)."""
    verify([KEY], MSG_ID, str(STAMP), BODY, SIGNATURE, now=STAMP)
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(STAMP),
        "webhook-signature": SIGNATURE,
    }
    wh = Webhook(SECRET)
    with pytest.raises(Exception, match="too old"):
        wh.verify(BODY, headers)  # the package judges by the real clock: long stale


def test_secret_bytes_errors_never_echo_the_secret() -> None:
    """A bad secret is refused with what is wrong, not its value; missing padding is fine."""
    assert secret_bytes("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == KEY
    assert secret_bytes("whsec_YWJj") == b"abc"
    assert secret_bytes("whsec_YWI") == b"ab"
    for bad in ("whsec_", "whsec_not*base64!", ""):
        with pytest.raises(ValueError) as caught:
            secret_bytes(bad)
        assert "base64!" not in str(caught.value)


@pytest.mark.parametrize(
    ("msg_id", "stamp", "body", "header", "now", "reason"),
    [
        ("", str(STAMP), BODY, SIGNATURE, STAMP, "missing"),
        (MSG_ID, "", BODY, SIGNATURE, STAMP, "missing"),
        (MSG_ID, str(STAMP), BODY, "", STAMP, "missing"),
        (MSG_ID, "16142653.5", BODY, SIGNATURE, STAMP, "malformed"),
        (MSG_ID, str(STAMP), BODY, "v1a,abc v2,xyz", STAMP, "malformed"),
        (MSG_ID, str(STAMP), BODY, SIGNATURE, STAMP + 301, "stale"),
        (MSG_ID, str(STAMP), BODY, SIGNATURE, STAMP - 301, "future"),
        (MSG_ID, str(STAMP), b'{"test": 2432232315}', SIGNATURE, STAMP, "mismatch"),
        ("msg_other", str(STAMP), BODY, SIGNATURE, STAMP, "mismatch"),
        (MSG_ID, str(STAMP), BODY, "v1,bm90IHRoZSBzaWduYXR1cmU=", STAMP, "mismatch"),
    ],
)
def test_refusals_name_their_reason(
    msg_id: str, stamp: str, body: bytes, header: str, now: float, reason: str
) -> None:
    """Each kind of bad request raises Unverified with its fixed reason."""
    with pytest.raises(Unverified) as caught:
        verify([KEY], msg_id, stamp, body, header, now=now)
    assert caught.value.reason == reason


def test_any_entry_under_any_secret_passes() -> None:
    """Rotation: several entries, several secrets, other versions ignored; a stranger fails."""
    other = secret_bytes(OTHER_SECRET)
    theirs = sign(other, MSG_ID, STAMP, BODY)
    both = f"v1a,ignored {theirs} {SIGNATURE}"
    verify([KEY], MSG_ID, str(STAMP), BODY, both, now=STAMP)
    verify([other, KEY], MSG_ID, str(STAMP), BODY, theirs, now=STAMP)
    with pytest.raises(Unverified, match="mismatch"):
        verify([KEY], MSG_ID, str(STAMP), BODY, theirs, now=STAMP)


def test_the_package_verifies_what_we_sign() -> None:
    """A signature made here passes the third-party verifier at the current time."""
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(KEY, MSG_ID, now, BODY),
    }
    assert Webhook(SECRET).verify(BODY, headers) == {"test": 2432232314}
