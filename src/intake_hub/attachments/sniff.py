"""What a file is, decided from its first bytes and never from its name or declared type."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_OOXML = (
    ("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE, DOS
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both word sizes and byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary (and Java class files)
    b"L\x00\x00\x00\x01\x14\x02\x00",  # Windows shortcut (.lnk)
)


@dataclass(frozen=True)
class Sniffed:
    """The type a file's content shows."""

    content_type: str
    executable: bool = False
    image_format: str | None = None  # the Pillow format name when Pillow should decode it
    encoding: str | None = None  # how text/plain content is encoded: utf-8 or gb18030


def sniff(data: bytes) -> Sniffed:
    """The content type `data` shows by its magic bytes, or text/plain, or octet-stream."""
    head = data[:64]
    image = _image(head)
    if image is not None:
        return image
    media = _media(head)
    if media is not None:
        return Sniffed(media)
    if head.startswith(b"%PDF-"):
        return Sniffed("application/pdf")
    if head.startswith(b"PK\x03\x04"):
        return Sniffed(_zip_type(data))
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return Sniffed("application/x-ole-storage")
    # Real binaries hold NUL bytes in their header, so a text note starting "MZ" passes.
    if head.startswith(_EXECUTABLE_MAGIC) and b"\x00" in head:
        return Sniffed(OCTET_STREAM, executable=True)
    # A script with an interpreter line; AMR's "#!AMR" was matched above.
    if head.startswith(b"#!"):
        return Sniffed(OCTET_STREAM, executable=True)
    encoding = _text_encoding(data)
    if encoding is not None:
        return Sniffed(TEXT, encoding=encoding)
    return Sniffed(OCTET_STREAM)


def _image(head: bytes) -> Sniffed | None:
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", image_format="JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", image_format="PNG")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image/gif", image_format="GIF")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image/webp", image_format="WEBP")
    if (
        head.startswith(b"BM")
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return Sniffed("image/bmp", image_format="BMP")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIC_BRANDS:
            return Sniffed("image/heic")
        if brand in _HEIF_BRANDS:
            return Sniffed("image/heif")
        if brand in (b"avif", b"avis"):
            return Sniffed("image/avif")
    return None


def _media(head: bytes) -> str | None:
    if head.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb"
    if head.startswith(b"#!AMR\n"):
        return "audio/amr"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (
        len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06
    ):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return "video/mp4"
    return None


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return "application/zip"
    if "[Content_Types].xml" in names:
        for folder, content_type in _OOXML:
            if any(name.startswith(folder) for name in names):
                return content_type
    return "application/zip"


def _text_encoding(data: bytes) -> str | None:
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return None if _CONTROL.search(text) else encoding
    return None
