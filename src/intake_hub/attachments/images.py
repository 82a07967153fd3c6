"""Images decoded in full, turned upright and re-encoded without metadata; thumbnails."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from intake_hub.attachments.refused import Refused

DECODED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# Formats whose extra frames are an animation; a JPEG's (MPO) are previews and depth maps.
ANIMATED_FORMATS = frozenset({"PNG", "GIF", "WEBP"})
# Only what drawing the frames needs; EXIF, XMP, GPS, comments and text chunks are dropped.
_KEPT_INFO = ("transparency", "background")
_FALLBACK_PIXEL_LIMIT = 89_478_485
MAX_FRAMES = 1000


def pixel_limit() -> int:
    """The most pixels one upload may decode to, all frames together (Pillow's bomb guard)."""
    return Image.MAX_IMAGE_PIXELS or _FALLBACK_PIXEL_LIMIT


def clean(data: bytes, image_format: str) -> bytes:
    """`data` decoded fully and re-encoded in the same format, upright, without metadata."""
    with _open(data, image_format, all_frames=image_format in ANIMATED_FORMATS) as im:
        icc = im.info.get("icc_profile")
        frames, durations = _frames(im, animated=image_format in ANIMATED_FORMATS)
        loop = im.info.get("loop")
        params: dict[str, Any] = {"icc_profile": icc} if icc else {}
        if len(frames) > 1:
            params.update(save_all=True, append_images=frames[1:], duration=durations)
            if loop is not None:
                params["loop"] = loop
            if image_format == "GIF":
                # Pillow hands out each frame fully composed, so each replaces the last.
                params["disposal"] = 2
        if image_format in ("JPEG", "WEBP"):
            params["quality"] = 90
        out = io.BytesIO()
        frames[0].save(out, image_format, **params)
        return out.getvalue()


def thumbnail(data: bytes, *, edge: int = 320) -> bytes:
    """A JPEG (PNG when the image has alpha) of the first frame, at most edge x edge pixels."""
    with _open(data, None, all_frames=False) as im:
        try:
            # Shrinking first lets Pillow decode a JPEG at a fraction of its size.
            im.thumbnail((edge, edge))
            first = ImageOps.exif_transpose(im)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise Refused("corrupt", "The image is damaged or cut off.") from exc
        out = io.BytesIO()
        if _has_alpha(first):
            first.convert("RGBA").save(out, "PNG")
        else:
            first.convert("RGB").save(out, "JPEG", quality=80)
        return out.getvalue()


def _open(data: bytes, image_format: str | None, *, all_frames: bool) -> Image.Image:
    formats = [image_format] if image_format else list(DECODED_FORMATS)
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
        frames = getattr(im, "n_frames", 1) if all_frames else 1
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Refused("corrupt", "The image cannot be read.") from exc
    if frames > MAX_FRAMES or im.width * im.height * frames > pixel_limit():
        im.close()
        raise _too_large()
    return im


def _frames(im: Image.Image, *, animated: bool) -> tuple[list[Image.Image], list[int]]:
    frames: list[Image.Image] = []
    durations: list[int] = []
    still = not animated or getattr(im, "n_frames", 1) == 1
    sources: Iterable[Image.Image] = (im,) if still else ImageSequence.Iterator(im)
    try:
        for frame in sources:
            frame.load()
            # Orientation applies to still photos; animations carry no EXIF worth trusting.
            upright = ImageOps.exif_transpose(frame) if still else frame.copy()
            upright.info = {k: frame.info[k] for k in _KEPT_INFO if k in frame.info}
            frames.append(upright)
            durations.append(int(frame.info.get("duration", 100)))
    except Image.DecompressionBombError:
        raise _too_large() from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Refused("corrupt", "The image is damaged or cut off.") from exc
    return frames, durations


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def _too_large() -> Refused:
    return Refused("too_large", "The image has too many pixels to open safely.")
