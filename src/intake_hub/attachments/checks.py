"""The content checks every upload passes before it is stored."""

from __future__ import annotations

from dataclasses import dataclass

from intake_hub.attachments import images
from intake_hub.attachments.names import safe_name
from intake_hub.attachments.refused import Refused
from intake_hub.attachments.sniff import sniff

INLINE_TYPES = frozenset({"application/pdf", "text/plain"})


@dataclass(frozen=True)
class Checked:
    """An upload that passed the checks, ready to store and to show."""

    data: bytes  # to store: images re-encoded without metadata, text as UTF-8, others unchanged
    content_type: str  # from the content, never the name; text/plain is always UTF-8
    inline: bool  # may be shown in the browser: decoded images, PDF and plain text
    name: str  # a safe display name whose extension fits content_type


def check(data: bytes, *, name: str | None, max_bytes: int) -> Checked:
    """`data` sniffed, cleaned and named, or Refused with the reason."""
    if not data:
        raise Refused("empty", "The file is empty.")
    if len(data) > max_bytes:
        raise Refused("too_large", f"The file is larger than {_size(max_bytes)}.")
    sniffed = sniff(data)
    if sniffed.executable:
        raise Refused("type", "Programs and scripts cannot be attached.")
    content_type = sniffed.content_type
    if sniffed.image_format is not None:
        data = images.clean(data, sniffed.image_format)
    elif sniffed.encoding == "gb18030":
        # One encoding for every stored text, so it is served as text/plain; charset=utf-8.
        # The BOM lets Excel on a Chinese Windows open a converted CSV without mojibake.
        data = data.decode("gb18030").encode("utf-8-sig")
    inline = sniffed.image_format is not None or content_type in INLINE_TYPES
    return Checked(data, content_type, inline, safe_name(name, content_type))


def _size(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.0f} MB"
    if count >= 1 << 10:
        return f"{count / (1 << 10):.0f} KB"
    return f"{count} bytes"
