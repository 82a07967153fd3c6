"""safe_name: the name an agent sees and a download is saved under."""

from __future__ import annotations

import pytest

from intake_hub.attachments import safe_name


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("C:\\Users\\li\\Desktop\\photo.jpg", "image/jpeg", "photo.jpg"),
        ("/var/www/../x.png", "image/png", "x.png"),
        ("invoice\u202egpj.exe", "application/pdf", "invoicegpj.pdf"),
        ("report\u2066\u2069.pdf", "application/pdf", "report.pdf"),
        ("照片.jpg", "image/jpeg", "照片.jpg"),
        ("订单截图 2024-05-01.PNG", "image/png", "订单截图 2024-05-01.PNG"),
        ("photo.exe", "image/png", "photo.png"),
        ("IMG_1.jpeg", "image/jpeg", "IMG_1.jpeg"),
        ("", "image/png", "attachment.png"),
        (None, "application/pdf", "attachment.pdf"),
        ("...", "text/plain", "attachment.txt"),
        (".bashrc", "text/plain", "bashrc.txt"),
        ("a\x00b\nc\x7f.txt", "text/plain", "abc.txt"),
        ('what?<is>"this":.txt', "text/plain", "what__is__this__.txt"),
        ("setup.exe", "application/octet-stream", "setup.bin"),
        ("archive.7z", "application/octet-stream", "archive.7z"),
        ("voice", "audio/amr", "voice.amr"),
    ],
)
def test_safe_name(name: str | None, content_type: str, expected: str) -> None:
    """Directories, hidden characters and lying extensions are gone; Chinese names stay."""
    assert safe_name(name, content_type) == expected


def test_nfc_normalised() -> None:
    """A decomposed accent (as macOS sends names) becomes one composed character."""
    assert safe_name("cafe\u0301.txt", "text/plain") == "caf\u00e9.txt"


def test_long_name_is_cut_keeping_the_extension() -> None:
    """A very long name is cut to 120 characters and keeps its extension."""
    name = safe_name("很长的名字" * 60 + ".pdf", "application/pdf")
    assert len(name) == 120
    assert name.startswith("很长的名字") and name.endswith(".pdf")
