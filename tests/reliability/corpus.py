"""Hostile and unusual files, made on the spot (a few kilobytes each, deterministic).

Each builder takes the MNIST digit it draws (28x28 uint8, white ink on black) where it needs one.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from tests import drawings


def page(digit: np.ndarray, size: int = 112) -> Image.Image:
    """The digit as dark ink on a light page, `size` pixels a side."""
    return Image.fromarray(255 - digit).resize((size, size))


def gif_bomb() -> bytes:
    """A 53-byte GIF whose header claims 65535 x 65535 pixels (4.3 billion)."""
    side = struct.pack("<H", 65535)
    screen = b"GIF89a" + side * 2 + b"\x00\x00\x00"
    frame = b"\x2c" + b"\x00\x00\x00\x00" + side * 2 + b"\x00"
    return screen + frame + b"\x02\x02\x44\x01\x00" + b"\x3b"


def bmp_bomb() -> bytes:
    """A 54-byte BMP header claiming 50000 x 50000 24-bit pixels, and no pixels."""
    header = struct.pack("<IiiHHIIiiII", 40, 50000, 50000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + len(header) - 40, 0, 0, 54) + header


def png_bomb() -> bytes:
    """A real 20000 x 20000 PNG (400 million pixels) that compresses to about 50 KB."""
    return drawings.encode(Image.new("1", (20000, 20000), 0))


def truncated(digit: np.ndarray, fmt: str) -> bytes:
    data = drawings.encode(page(digit, 200).convert("RGB"), fmt)
    return data[: len(data) // 2]


def animated_gif(first: np.ndarray, second: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    page(first).save(
        buffer, "GIF", save_all=True, append_images=[page(second)], duration=100, loop=0
    )
    return buffer.getvalue()


def sixteen_bit_png(digit: np.ndarray) -> bytes:
    image = Image.fromarray(np.asarray(page(digit), dtype=np.uint16) * 257)
    assert image.mode == "I;16"
    return drawings.encode(image)


def cmyk_jpeg(digit: np.ndarray) -> bytes:
    return drawings.encode(page(digit).convert("CMYK"), "JPEG", quality=95)


def exif_rotated_jpeg(digit: np.ndarray) -> bytes:
    """Stored sideways, as a phone held sideways writes it, with EXIF saying how to turn it."""
    stored = page(digit).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return drawings.encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def ppm(digit: np.ndarray) -> bytes:
    """A format Pillow reads but the service does not accept."""
    return drawings.encode(page(digit), "PPM")


SVG = b"<svg xmlns='http://www.w3.org/2000/svg'><text y='20'>7</text></svg>"
TEXT = b"this is a text file, whatever its name and content type say"
