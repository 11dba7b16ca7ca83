"""Pre-decode structure checks (service/vision/structure.py): files whose structure would cost far
more to decode than their pixels are refused before any decoder runs, in every accepted format;
what cameras, editors, browsers and Pillow write passes, and only simple files count as cheap
enough for the event loop."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from bench import hostile_files
from service.vision import INLINE_PARTS, ImageTooComplex, Structure, inspect_structure

HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "PNG of iCCP chunks (9.4 MB)": (
        lambda: hostile_files.png_with_iccp_chunks(9_400_000),
        "compressed metadata chunks",
    ),
    "PNG of iCCP chunks (64 KB)": (
        lambda: hostile_files.png_with_iccp_chunks(64 * 1024),
        "compressed metadata chunks",
    ),
    "PNG of empty IDAT chunks": (
        lambda: hostile_files.png_with_empty_idat_chunks(1_000_000),
        "chunks",
    ),
    "progressive JPEG of empty scans": (
        lambda: hostile_files.jpeg_with_empty_scans(2_000_000),
        "scans",
    ),
    "small JPEG of empty scans": (
        lambda: hostile_files.jpeg_with_empty_scans(64 * 1024, side=280),
        "scans",
    ),
    "JPEG of comment segments": (
        lambda: hostile_files.jpeg_with_comment_segments(1_000_000),
        "segments",
    ),
    "GIF of comment sub-blocks": (
        lambda: hostile_files.gif_with_comment_blocks(1_000_000),
        "sub-blocks",
    ),
    "TIFF of 5,000 directory entries": (lambda: hostile_files.tiff_with_tags(5000), "entries"),
    "WebP of unknown chunks": (
        lambda: hostile_files.webp_with_unknown_chunks(1_000_000),
        "chunks",
    ),
    "BMP of run-length padding": (
        lambda: hostile_files.bmp_with_rle_padding(2_000_000),
        "run-length codes",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_costly_structure_is_refused_with_413_and_a_way_out(name: str) -> None:
    build, what = HOSTILE[name]
    with pytest.raises(ImageTooComplex) as refused:
        inspect_structure(build())
    assert refused.value.status == 413 and refused.value.code == "image_too_complex"
    message = str(refused.value)
    assert what in message and "save the image" in message, message


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def canvas() -> Image.Image:
    """A web canvas: a stroke on transparency."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (120, 40, 150, 240))
    return image


def photo(side: int = 600) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


ORDINARY: dict[str, Callable[[], bytes]] = {
    "canvas PNG": lambda: encode(canvas(), "PNG"),
    "PNG with an ICC profile and text": lambda: encode(
        canvas(),
        "PNG",
        icc_profile=b"\0" * 3000,
        pnginfo=_text_chunks(),
    ),
    "baseline JPEG with EXIF": lambda: encode(photo(), "JPEG", exif=_rotated()),
    "progressive JPEG": lambda: encode(photo(), "JPEG", progressive=True),
    "GIF": lambda: encode(canvas().convert("P"), "GIF", comment=b"drawn by hand"),
    "animated GIF": lambda: encode(
        canvas().convert("L"),
        "GIF",
        save_all=True,
        append_images=[photo(280).convert("L")],
    ),
    "BMP": lambda: encode(canvas().convert("RGB"), "BMP"),
    "lossy WebP": lambda: encode(photo(), "WEBP"),
    "animated WebP": lambda: encode(
        canvas(), "WEBP", save_all=True, append_images=[photo(280).convert("RGBA")]
    ),
    "TIFF": lambda: encode(photo(), "TIFF"),
    "LZW TIFF": lambda: encode(photo(), "TIFF", compression="tiff_lzw"),
    "JPEG-compressed TIFF": lambda: encode(photo(), "TIFF", compression="jpeg"),
}


def _rotated() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotated, as phones write it
    return exif


def _text_chunks():  # type: ignore[no-untyped-def]
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "a drawing program")
    info.add_text("Comment", "x" * 5000, zip=True)
    return info


@pytest.mark.parametrize("name", ORDINARY)
def test_what_encoders_write_passes(name: str) -> None:
    data = ORDINARY[name]()
    structure = inspect_structure(data)
    assert structure.format in {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
    # And Pillow decodes it: the check walks the same structure the decoder does.
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def test_a_canvas_and_a_small_photo_are_simple_enough_for_the_event_loop() -> None:
    assert inspect_structure(encode(canvas(), "PNG")).simple
    assert inspect_structure(encode(photo(280), "JPEG")).simple
    assert inspect_structure(encode(photo(280), "JPEG", progressive=True)).simple


def test_the_quick_look_stops_early_and_judges_nothing() -> None:
    """On the event loop only INLINE_PARTS pieces are looked at: a file with more is sent to
    a decode slot, where the full walk refuses it."""
    many_chunks = hostile_files.png_with_empty_idat_chunks(64 * 1024)
    quick = inspect_structure(many_chunks, stop_after=INLINE_PARTS)
    assert quick == Structure("PNG", INLINE_PARTS + 1) and not quick.simple
    with pytest.raises(ImageTooComplex):
        inspect_structure(many_chunks)


def test_a_file_whose_structure_cannot_be_followed_is_left_to_the_decoder() -> None:
    for data in (b"", b"not an image", b"\x89PNG\r\n\x1a\n\x00\x00", b"\xff\xd8\xff", b"II*\x00"):
        assert inspect_structure(data).parts <= 1


def test_old_style_jpeg_tiff_is_refused() -> None:
    data = bytearray(encode(photo(64), "TIFF"))
    # Compression (259) set to 6 in the first directory: Pillow writes tags in order.
    at = data.find(b"\x03\x01\x03\x00\x01\x00\x00\x00")
    assert at > 0
    data[at + 8 : at + 10] = (6).to_bytes(2, "little")
    with pytest.raises(ImageTooComplex, match="old-style JPEG"):
        inspect_structure(bytes(data))
