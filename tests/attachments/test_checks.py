"""The content checks on real files made with Pillow and on hand-made headers."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from intake_hub.attachments import Refused, check, thumbnail

LIMIT = 10 * 1024 * 1024


def encode(im: Image.Image, image_format: str, **params: object) -> bytes:
    """`im` saved as `image_format` with Pillow's save `params`."""
    out = io.BytesIO()
    im.save(out, image_format, **params)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    """`data` opened with Pillow."""
    return Image.open(io.BytesIO(data))


def phone_photo() -> bytes:
    """A JPEG as a phone takes it: sideways (orientation 6), with GPS, a comment, XMP and ICC."""
    im = Image.new("RGB", (40, 20), "blue")
    im.paste((255, 0, 0), (0, 0, 20, 20))  # the left half red
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 25.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        im,
        "JPEG",
        exif=exif,
        icc_profile=icc,
        comment=b"home address: 12 Secret Road",
        xmp=b"<x:xmpmeta>secret-xmp</x:xmpmeta>",
    )


def test_photo_loses_gps_and_metadata_but_stands_upright() -> None:
    """A phone photo is stored upright with its colour profile and without GPS, EXIF or comments."""
    data = phone_photo()
    assert opened(data).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
    checked = check(data, name="IMG_0001.JPG", max_bytes=LIMIT)
    out = opened(checked.data)
    assert (checked.content_type, checked.inline, checked.name) == (
        "image/jpeg",
        True,
        "IMG_0001.JPG",
    )
    assert out.format == "JPEG"
    assert dict(out.getexif()) == {}
    assert not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for secret in (b"PhoneMaker", b"Secret Road", b"secret-xmp"):
        assert secret not in checked.data
    assert out.info.get("icc_profile") == opened(data).info["icc_profile"]
    assert out.size == (20, 40)
    red, _, blue = out.convert("RGB").getpixel((10, 5))
    assert red > 200 and blue < 50  # the red left half is now on top


def test_png_keeps_its_transparency_and_drops_text() -> None:
    """A PNG with alpha stays a transparent PNG; its text chunks are dropped."""
    im = Image.new("RGBA", (50, 50), (0, 255, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 10, 10))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret png text")
    checked = check(encode(im, "PNG", pnginfo=info), name="logo.png", max_bytes=LIMIT)
    out = opened(checked.data)
    assert (checked.content_type, checked.inline) == ("image/png", True)
    assert out.mode == "RGBA"
    assert out.getpixel((30, 30))[3] == 0
    assert out.getpixel((5, 5)) == (255, 0, 0, 255)
    assert b"secret png text" not in checked.data


def test_animated_gif_keeps_its_frames() -> None:
    """An animated GIF keeps every frame and its timing, without its comment."""
    frames = [Image.new("RGB", (30, 30), colour) for colour in ("red", "green", "blue")]
    data = encode(
        frames[0],
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=b"secret gif comment",
    )
    checked = check(data, name="dance.gif", max_bytes=LIMIT)
    out = opened(checked.data)
    assert (checked.content_type, checked.inline) == ("image/gif", True)
    assert out.n_frames == 3
    durations = []
    for index in range(out.n_frames):
        out.seek(index)
        durations.append(out.info["duration"])
    assert durations == [100, 200, 300]
    assert b"secret gif comment" not in checked.data


def test_animated_webp_keeps_its_frames() -> None:
    """An animated WebP keeps every frame and its alpha, and loses its EXIF."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    frames = [Image.new("RGBA", (30, 30), (n * 100, 0, 0, 128)) for n in range(3)]
    data = encode(
        frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, exif=exif
    )
    checked = check(data, name="sticker.webp", max_bytes=LIMIT)
    out = opened(checked.data)
    assert (checked.content_type, out.n_frames, out.mode) == ("image/webp", 3, "RGBA")
    assert b"PhoneMaker" not in checked.data


def test_truncated_jpeg_is_corrupt() -> None:
    """A JPEG cut off half-way is refused as corrupt."""
    noise = Image.frombytes("RGB", (200, 200), random.Random(1).randbytes(200 * 200 * 3))
    data = encode(noise, "JPEG")
    with pytest.raises(Refused) as caught:
        check(data[: len(data) // 2], name="cut.jpg", max_bytes=LIMIT)
    assert caught.value.reason == "corrupt"


def test_png_signature_with_garbage_is_corrupt() -> None:
    """Bytes that only start like a PNG are refused as corrupt."""
    with pytest.raises(Refused) as caught:
        check(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, name="x.png", max_bytes=LIMIT)
    assert caught.value.reason == "corrupt"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_decompression_bomb_is_too_large() -> None:
    """A 20000x20000 one-colour PNG of a few KB is refused as too large, not decoded."""
    width = height = 20_000
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + width // 8)  # filter byte + one bit per pixel
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )
    assert len(data) < 200_000
    with pytest.raises(Refused) as caught:
        check(data, name="bomb.png", max_bytes=LIMIT)
    assert caught.value.reason == "too_large"


def test_pixel_limit_counts_every_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pixel guard follows Image.MAX_IMAGE_PIXELS and counts all frames of an animation."""
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "green", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 20x20 fits, 3 frames of it do not
    with pytest.raises(Refused) as caught:
        check(data, name="a.gif", max_bytes=LIMIT)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200,
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200,
        b"#!/bin/sh\nrm -rf ~\n",
    ],
    ids=["windows", "linux", "script"],
)
def test_disguised_program_is_refused(data: bytes) -> None:
    """A program or script named photo.jpg is refused whatever its name says."""
    with pytest.raises(Refused) as caught:
        check(data, name="photo.jpg", max_bytes=LIMIT)
    assert caught.value.reason == "type"


def test_text_that_starts_like_mz_is_text() -> None:
    """A note that happens to begin with "MZ" is text, not a program."""
    checked = check(b"MZ order 1234 never arrived\n", name="note.txt", max_bytes=LIMIT)
    assert checked.content_type == "text/plain"


def test_pdf_is_shown_inline() -> None:
    """A PDF is application/pdf, shown inline, its bytes unchanged."""
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
    checked = check(data, name="invoice", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.name) == (
        "application/pdf",
        True,
        "invoice.pdf",
    )
    assert checked.data == data


def test_utf8_text_is_plain_text() -> None:
    """UTF-8 text is text/plain, inline, unchanged."""
    data = "订单 1234 还没到, where is it?\r\n\tThanks\n".encode()
    checked = check(data, name="note.txt", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.data) == ("text/plain", True, data)


def test_gbk_text_is_stored_as_utf8() -> None:
    """GBK text (as Chinese Windows saves it) is text/plain, stored as UTF-8 to read right."""
    words = "您好，我的订单还没有到，请帮忙查一下。"
    data = words.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    checked = check(data, name="留言.txt", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.name) == ("text/plain", True, "留言.txt")
    assert checked.data.startswith(b"\xef\xbb\xbf")  # so Excel reads a converted CSV right
    assert checked.data.decode("utf-8-sig") == words


def test_html_is_shown_as_plain_text() -> None:
    """An HTML page is plain text with a .txt name, so it can never run in the hub's origin."""
    checked = check(b"<script>alert(1)</script>", name="page.html", max_bytes=LIMIT)
    assert (checked.content_type, checked.name) == ("text/plain", "page.txt")


def test_random_bytes_are_a_download() -> None:
    """Bytes of no known type are application/octet-stream, only downloadable, unchanged."""
    data = b"\x01\x02" + random.Random(7).randbytes(4096)
    checked = check(data, name="backup.rar", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.name) == (
        "application/octet-stream",
        False,
        "backup.rar",
    )
    assert checked.data == data


def test_random_bytes_named_exe_lose_the_extension() -> None:
    """An unknown download keeps no extension that would run it when double-clicked."""
    checked = check(b"\x01\x02\x03" * 100, name="setup.exe", max_bytes=LIMIT)
    assert checked.name == "setup.bin"


def test_wechat_voice_is_amr() -> None:
    """A WeChat voice message ("#!AMR") is audio/amr, a download, not a refused script."""
    data = b"#!AMR\n" + b"\x3c" + bytes(31) * 10
    checked = check(data, name="voice", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.name) == (
        "audio/amr",
        False,
        "voice.amr",
    )


def test_heic_is_a_download_kept_as_sent() -> None:
    """An iPhone HEIC photo is image/heic, offered as a download, bytes untouched."""
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100)
    checked = check(data, name="IMG_2.HEIC", max_bytes=LIMIT)
    assert (checked.content_type, checked.inline, checked.name, checked.data) == (
        "image/heic",
        False,
        "IMG_2.HEIC",
        data,
    )


@pytest.mark.parametrize(
    ("brand", "content_type", "name"),
    [
        (b"qt  ", "video/quicktime", "clip.mov"),
        (b"isom", "video/mp4", "clip.mp4"),
        (b"avif", "image/avif", "clip.avif"),
    ],
)
def test_iso_media_by_brand(brand: bytes, content_type: str, name: str) -> None:
    """ISO media files are told apart by their ftyp brand, never by their name."""
    data = b"\x00\x00\x00\x18ftyp" + brand + bytes(100)
    checked = check(data, name="clip.bin", max_bytes=LIMIT)
    assert (checked.content_type, checked.name, checked.inline) == (content_type, name, False)


def test_word_document_keeps_its_name() -> None:
    """A .docx is recognised as Word, not renamed to .zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    checked = check(out.getvalue(), name="合同.docx", max_bytes=LIMIT)
    assert checked.name == "合同.docx"
    assert checked.content_type.endswith("wordprocessingml.document")
    assert not checked.inline


@pytest.mark.parametrize(
    ("data", "limit", "reason"),
    [(b"", LIMIT, "empty"), (b"x" * 101, 100, "too_large")],
)
def test_empty_and_too_large(data: bytes, limit: int, reason: str) -> None:
    """An empty file and one above the limit are refused with a readable message."""
    with pytest.raises(Refused) as caught:
        check(data, name="a.txt", max_bytes=limit)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_thumbnail_fits_the_edge() -> None:
    """A thumbnail of a wide photo is a JPEG no larger than 320x320, keeping the aspect."""
    small = opened(thumbnail(encode(Image.new("RGB", (1000, 500), "red"), "JPEG")))
    assert (small.format, small.size) == ("JPEG", (320, 160))


def test_thumbnail_of_a_transparent_image_is_png() -> None:
    """A thumbnail of an image with alpha is a PNG that keeps the transparency."""
    data = encode(Image.new("RGBA", (100, 400), (0, 0, 0, 0)), "PNG")
    small = opened(thumbnail(data, edge=64))
    assert (small.format, small.size, small.mode) == ("PNG", (16, 64), "RGBA")
    assert small.getpixel((5, 5))[3] == 0


def test_thumbnail_is_upright() -> None:
    """A thumbnail of a sideways phone photo is upright."""
    assert opened(thumbnail(phone_photo(), edge=10)).size == (5, 10)


def test_camera_jpeg_with_extra_pictures_is_one_plain_jpeg() -> None:
    """A camera JPEG carrying extra pictures (MPO) is stored as its main picture alone."""
    main = Image.new("RGB", (40, 30), "red")
    data = encode(main, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 15), "blue")])
    assert opened(data).format == "MPO"
    checked = check(data, name="DSC_1.JPG", max_bytes=LIMIT)
    out = opened(checked.data)
    assert (checked.content_type, out.format, out.size) == ("image/jpeg", "JPEG", (40, 30))
    assert getattr(out, "n_frames", 1) == 1
