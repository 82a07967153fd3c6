"""Display names for attachments: no paths, no hidden characters, a truthful extension."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 120
FALLBACK_STEM = "attachment"

# content type -> extensions that may stay, the first being the one given when none fits
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/bmp": (".bmp", ".dib"),
    "image/heic": (".heic", ".heif"),
    "image/heif": (".heif", ".heic"),
    "image/avif": (".avif",),
    "application/pdf": (".pdf",),
    "audio/amr": (".amr",),
    "audio/amr-wb": (".awb", ".amr"),
    "audio/ogg": (".ogg", ".oga", ".spx", ".opus"),
    "audio/mpeg": (".mp3",),
    "audio/wav": (".wav",),
    "audio/mp4": (".m4a", ".m4b", ".mp4"),
    "video/mp4": (".mp4", ".m4v", ".m4a"),
    "video/quicktime": (".mov", ".qt"),
    "video/3gpp": (".3gp", ".3gpp", ".3g2"),
    "text/plain": (".txt", ".text", ".log", ".csv", ".tsv", ".md", ".json"),
    "application/zip": (".zip",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "application/x-ole-storage": (".doc", ".xls", ".ppt", ".msg", ".wps", ".et", ".dps"),
}
UNKNOWN_EXTENSION = ".bin"
# Kept on an unknown download only if it cannot start a program or a page when double-clicked.
RISKY_EXTENSIONS = frozenset(
    {
        *(".exe", ".dll", ".com", ".scr", ".pif", ".cpl", ".msi", ".msp", ".msc", ".bat"),
        *(".cmd", ".ps1", ".psm1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta"),
        *(".lnk", ".reg", ".inf", ".scf", ".jar", ".sh", ".bash", ".command", ".app", ".apk"),
        *(".html", ".htm", ".xhtml", ".svg", ".mht", ".mhtml", ".xml", ".url", ".desktop"),
        *(".py", ".pl", ".rb", ".php"),
    }
)

_STRIPPED = re.compile("[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
_EXTENSION = re.compile(r"\.[0-9A-Za-z]{1,10}")


def safe_name(name: str | None, content_type: str) -> str:
    """A display name from `name` without directories or hidden characters, fitting extension."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rpartition("/")[2]
    text = _STRIPPED.sub("", text)
    text = _WINDOWS_RESERVED.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ")
    stem, dot, ext = text.rpartition(".")
    extension = f".{ext}" if dot and stem and _EXTENSION.fullmatch(f".{ext}") else ""
    if not extension:
        stem = text
    stem = stem.strip() or FALLBACK_STEM
    extension = _fitting_extension(extension, content_type)
    return (stem[: MAX_NAME - len(extension)].rstrip(". ") or FALLBACK_STEM) + extension


def _fitting_extension(extension: str, content_type: str) -> str:
    base = content_type.partition(";")[0].strip().lower()
    allowed = EXTENSIONS.get(base)
    if allowed is None:
        if extension and extension.lower() not in RISKY_EXTENSIONS:
            return extension
        return UNKNOWN_EXTENSION
    return extension if extension.lower() in allowed else allowed[0]
