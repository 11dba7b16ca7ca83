"""Image files small in pixels whose decoding costs far more than their pixels, built on the spot
(deterministic), for `python -m bench abuse` and the test suite.

Each is a valid file of an accepted format that a decoder walks through in full: the cost comes
from repeated structure (metadata chunks, scans, extension blocks, frames, directory entries),
not from pixels, so a pixel budget does not bound it.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

ICC_PROFILE_BYTES = 1024 * 1024
"""What each hostile iCCP chunk inflates to: Pillow's per-chunk ceiling (MAX_TEXT_CHUNK)."""


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def blank_png(side: int = 280) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "PNG")
    return buffer.getvalue()


def png_with_iccp_chunks(total_bytes: int, side: int = 280) -> bytes:
    """A `side`-pixel PNG padded to about `total_bytes` with iCCP chunks, each about 1 KB that
    inflates to 1 MiB (the decoder inflates every one of them)."""
    profile = zlib.compress(b"\0" * ICC_PROFILE_BYTES, 9)
    chunk = _png_chunk(b"iCCP", b"icc\0\0" + profile)
    chunks = _png_chunks(blank_png(side))
    head = b"\x89PNG\r\n\x1a\n" + _png_chunk(*chunks[0])
    rest = b"".join(_png_chunk(kind, data) for kind, data in chunks[1:])
    count = max(1, (total_bytes - len(head) - len(rest)) // len(chunk))
    return head + chunk * count + rest


def png_with_empty_idat_chunks(total_bytes: int, side: int = 280) -> bytes:
    """A `side`-pixel PNG whose image data is followed by empty IDAT chunks up to about
    `total_bytes` (12 bytes each, every one a round of the decoder's chunk loop)."""
    chunks = _png_chunks(blank_png(side))
    body = b"".join(_png_chunk(kind, data) for kind, data in chunks[:-1])
    empty = _png_chunk(b"IDAT", b"")
    count = max(0, (total_bytes - len(body) - 20) // len(empty))
    return b"\x89PNG\r\n\x1a\n" + body + empty * count + _png_chunk(b"IEND", b"")


def _jpeg_segments(data: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(everything before the first scan, each scan with its entropy-coded data, EOI)."""
    scans: list[bytes] = []
    first = data.find(b"\xff\xda")
    offset = first
    while True:
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        end = offset + 2 + length
        while True:  # the entropy-coded data runs to the next marker that is not a stuffed byte
            end = data.index(b"\xff", end)
            if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 2
                continue
            break
        scans.append(data[offset:end])
        if data[end + 1] != 0xDA:
            return data[:first], scans, data[end:]
        offset = end


def jpeg_with_empty_scans(total_bytes: int, side: int = 1000) -> bytes:
    """A `side`-pixel grey progressive JPEG, its own scans followed by copies of a scan header
    with no data (10 bytes each) up to about `total_bytes`: libjpeg walks every block of the
    image once per scan."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "JPEG", progressive=True, quality=90)
    head, scans, tail = _jpeg_segments(buffer.getvalue())
    # The first scan's header alone (DC, first pass): a scan with no entropy-coded bytes.
    (length,) = struct.unpack(">H", scans[0][2:4])
    empty = scans[0][: 2 + length]
    count = max(0, (total_bytes - len(buffer.getvalue())) // len(empty))
    return head + b"".join(scans) + empty * count + tail


def jpeg_with_comment_segments(total_bytes: int, side: int = 280) -> bytes:
    """A `side`-pixel grey JPEG preceded by empty COM segments (4 bytes each) up to about
    `total_bytes`: every segment is a round of the decoder's header loop."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    count = max(0, (total_bytes - len(data)) // 4)
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def gif_with_comment_blocks(total_bytes: int, side: int = 280) -> bytes:
    """A `side`-pixel GIF whose first frame is preceded by comment extensions of one-byte
    sub-blocks up to about `total_bytes` (each sub-block a round of the decoder's loop)."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "GIF")
    data = buffer.getvalue()
    start = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    per_block = b"\x21\xfe" + b"\x01x" * 126 + b"\x00"  # 255 bytes, 126 sub-blocks
    count = max(0, (total_bytes - len(data)) // len(per_block))
    return data[:start] + per_block * count + data[start:]


def webp_with_frames(frames: int, side: int = 280) -> bytes:
    """An animated `side`-pixel WebP of `frames` identical lossless frames."""
    buffer = io.BytesIO()
    first = Image.new("L", (side, side), 255)
    more = [Image.new("L", (side, side), 255 - (i % 2)) for i in range(frames - 1)]
    first.save(buffer, "WEBP", lossless=True, save_all=True, append_images=more, duration=10)
    return buffer.getvalue()


def webp_with_unknown_chunks(total_bytes: int, side: int = 280) -> bytes:
    """A `side`-pixel lossless WebP followed by empty unknown RIFF chunks (8 bytes each)."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "WEBP", lossless=True)
    data = buffer.getvalue()
    count = max(0, (total_bytes - len(data)) // 8)
    body = data[12:] + b"ZZZZ\x00\x00\x00\x00" * count
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def tiff_with_tags(tags: int, side: int = 280) -> bytes:
    """An uncompressed `side`-pixel grey TIFF whose directory holds `tags` entries (private
    tags padded in after the standard ones)."""
    pixels = b"\xff" * side * side
    entries = [
        (256, 3, 1, side),  # ImageWidth
        (257, 3, 1, side),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 0),  # StripOffsets (patched below)
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 3, 1, side),  # RowsPerStrip
        (279, 4, 1, len(pixels)),  # StripByteCounts
    ]
    entries += [(30000 + i % 35000, 3, 1, 0) for i in range(max(0, tags - len(entries)))]
    entries.sort()
    directory_size = 2 + 12 * len(entries) + 4
    pixel_offset = 8 + directory_size
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = pixel_offset if tag == 273 else value
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 4 + pixels


def tiff_with_strips(side: int = 280, rows_per_strip: int = 1) -> bytes:
    """An uncompressed `side`-pixel grey TIFF cut into strips of `rows_per_strip` rows."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "TIFF")
    image = Image.open(io.BytesIO(buffer.getvalue()))
    strips = -(-side // rows_per_strip)
    pixels = b"\xff" * side * side
    entries = [
        (256, 3, 1, side),
        (257, 3, 1, side),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, strips, None),
        (277, 3, 1, 1),
        (278, 3, 1, rows_per_strip),
        (279, 4, strips, None),
    ]
    del image
    directory_size = 2 + 12 * len(entries) + 4
    offsets_at = 8 + directory_size
    counts_at = offsets_at + 4 * strips
    pixels_at = counts_at + 4 * strips
    strip_bytes = [side * min(rows_per_strip, side - i * rows_per_strip) for i in range(strips)]
    offsets = [pixels_at + sum(strip_bytes[:i]) for i in range(strips)]
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            field = struct.pack("<I", offsets_at if strips > 1 else offsets[0])
        elif tag == 279:
            field = struct.pack("<I", counts_at if strips > 1 else strip_bytes[0])
        elif kind == 3:
            field = struct.pack("<HH", value, 0)
        else:
            field = struct.pack("<I", value)
        directory += struct.pack("<HHI", tag, kind, count) + field
    arrays = struct.pack(f"<{strips}I", *offsets) + struct.pack(f"<{strips}I", *strip_bytes)
    return b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 4 + arrays + pixels


def bmp_with_rle_padding(total_bytes: int, side: int = 280) -> bytes:
    """An 8-bit RLE `side`-pixel BMP whose pixel runs are followed by zero-length delta
    escapes (4 bytes each, each a round of the decoder's loop) up to about `total_bytes`."""
    rows = b"".join(bytes([side, 255]) if side < 256 else b"" for _ in range(side))
    if side >= 256:
        rows = b"".join(bytes([255, 255, side - 255, 255]) + b"\x00\x00" for _ in range(side))
    else:
        rows = b"".join(bytes([side, 255]) + b"\x00\x00" for _ in range(side))
    noops = b"\x00\x02\x00\x00" * max(0, (total_bytes - len(rows) - 1078) // 4)
    data = noops + rows + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    header = struct.pack("<IiiHHIIiiII", 40, side, side, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    offset = 14 + len(header) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + header + palette + data
