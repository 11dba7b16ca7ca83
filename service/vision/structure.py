"""Pre-decode checks of an upload's structure, so that decoding time is bounded by what the
pixel budget allows and not by repeated structure a decoder walks through one piece at a time.

A small image can carry thousands of pieces that each cost the decoder a round of its loop, or
more: a PNG's compressed metadata chunks each inflate to up to 1 MiB (9,000 iCCP chunks in
9.4 MB took 11 s of CPU), every scan of a progressive JPEG revisits every block of the image
(170,000 empty scans in 2 MB took 12.6 s), and empty chunks, segments, sub-blocks, directory
entries or run-length codes cost a round of Pillow's Python loops each (0.2-0.6 s per MB).
Walking the structure first costs microseconds per piece and stops at the first piece over a
limit, so a refusal is cheap. Each limit sits far above what encoders write.

`inspect_structure` answers `Structure`: the number of pieces a decoder walks and whether the
file is simple enough to decode on the event loop; it raises `ImageTooComplex` (413) past a
limit.
A file whose structure cannot be followed is left to the decoder, which reports what is wrong
with it; a decoder that resynchronises after damage (libjpeg) is followed the same way.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from service.vision.errors import ImageTooComplex

INLINE_PARTS = 64
"""Pieces a file may have and still be decoded on the event loop (with few pixels): a web
canvas's PNG has 4 chunks, a phone's JPEG about 20 segments."""

PNG_CHUNKS_BASE = 256
PNG_BYTES_PER_CHUNK = 2048
"""A PNG may hold PNG_CHUNKS_BASE chunks plus one per PNG_BYTES_PER_CHUNK bytes (encoders write
image data in chunks of 8 KiB or more; libpng's default is 8 KiB)."""
PNG_MAX_METADATA_CHUNKS = 64
"""Chunks other than the image's own (header, palette, transparency, data, end, animation
frames): text, ICC profile, EXIF, physical size..."""
PNG_MAX_METADATA_BYTES = 2 * 1024 * 1024
PNG_MAX_COMPRESSED_METADATA = 8
"""iCCP, zTXt and compressed iTXt chunks, each inflated to up to 1 MiB by Pillow (about 1 ms
each); the PNG specification allows one ICC profile."""
PNG_IMAGE_CHUNKS = frozenset(
    {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"}
)

JPEG_MAX_SCANS = 100
"""libjpeg writes 6 scans for a progressive grey image and 10 for colour; each scan costs about
0.12 ms per megapixel even when empty, so 100 scans of the largest allowed image cost 0.3 s."""
JPEG_MAX_SEGMENTS = 1024
"""Segments other than scans (tables, EXIF, XMP and ICC profiles split in 64 KiB pieces...)."""

GIF_MAX_EXTENSIONS = 256
GIF_MAX_SUB_BLOCKS = 4096
"""Extension sub-blocks before the first frame (the only one decoded): encoders fill them to
255 bytes, so this is a megabyte of comments, XMP and ICC profile."""

TIFF_MAX_ENTRIES = 512
"""Entries in the first directory, each parsed in Python (real files have 10 to 60)."""
TIFF_OLD_JPEG = 6
TIFF_JPEG = 7

BMP_RLE = (1, 2)
BMP_MAX_RLE_BYTES = 1024 * 1024
"""Run-length-coded BMP data is decoded in Python at about 0.4 s per MiB of codes."""

WEBP_MAX_FRAMES = 1024
"""libwebp parses every frame before decoding the first (188,000 frames in 9 MB: 55 ms and
31 MB); animations run to a few hundred."""
WEBP_MAX_CHUNKS = WEBP_MAX_FRAMES + 64


@dataclass(frozen=True)
class Structure:
    format: str
    parts: int
    """Pieces the decoder walks one at a time: chunks, segments and scans, blocks, entries."""
    inflated: int = 0
    """Compressed metadata pieces, each inflated to up to 1 MiB."""

    @property
    def simple(self) -> bool:
        """Cheap enough to decode on the event loop, given few pixels and bytes."""
        return self.parts <= INLINE_PARTS and self.inflated <= 1


def inspect_structure(data: bytes, *, stop_after: int | None = None) -> Structure:
    """The structure of an upload in an accepted format (PNG, JPEG, GIF, BMP, WebP, TIFF);
    ImageTooComplex past a limit. With `stop_after`, the walk stops once it has seen that many
    pieces and answers a Structure that is not `simple` without judging the rest (the event
    loop's quick look; the full walk runs where decoding does). Unknown formats answer
    Structure("unknown", 0): the decoder refuses them."""
    found = _walker_for(data)
    if found is None:
        return Structure("unknown", 0)
    name, walker = found
    pieces = _Pieces(stop_after)
    try:
        inflated = walker(data, pieces)
    except _Enough:
        return Structure(name, pieces.count)
    return Structure(name, pieces.count, inflated)


Walker = Callable[[bytes, "_Pieces"], int]
"""Walks a file's structure, counting its pieces; answers its compressed metadata pieces."""


def _walker_for(data: bytes) -> tuple[str, Walker] | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG", _png
    if data.startswith(b"\xff\xd8"):
        return "JPEG", _jpeg_file
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF", _gif
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF", _tiff
    if data.startswith(b"BM"):
        return "BMP", _bmp
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", _webp
    return None


class _Enough(Exception):
    """The quick look has seen enough pieces."""


class _Pieces:
    def __init__(self, stop_after: int | None) -> None:
        self.count = 0
        self.stop_after = stop_after

    def add(self, pieces: int = 1) -> None:
        self.count += pieces
        if self.stop_after is not None and self.count > self.stop_after:
            raise _Enough


def _refuse(what: str, found: str, limit: str) -> ImageTooComplex:
    return ImageTooComplex(
        f"{what} holds {found}; at most {limit} are accepted, as no camera or editor writes "
        "more and decoding them would cost far more than the image's pixels: save the image "
        "again (as a plain PNG or JPEG, without its metadata)"
    )


def _png(data: bytes, pieces: _Pieces) -> int:
    """Walks the chunks; answers how many are compressed metadata."""
    max_chunks = PNG_CHUNKS_BASE + len(data) // PNG_BYTES_PER_CHUNK
    chunks = metadata = metadata_bytes = compressed = 0
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        chunks += 1
        pieces.add()
        if chunks > max_chunks:
            raise _refuse("the PNG", f"more than {max_chunks:,} chunks", f"{max_chunks:,}")
        if kind not in PNG_IMAGE_CHUNKS:
            metadata += 1
            metadata_bytes += length
            if kind in (b"iCCP", b"zTXt") or (kind == b"iTXt" and _itxt_compressed(data, offset)):
                compressed += 1
            if metadata > PNG_MAX_METADATA_CHUNKS:
                raise _refuse(
                    "the PNG",
                    f"more than {PNG_MAX_METADATA_CHUNKS} metadata chunks "
                    f"({kind.decode('latin-1')!r}...)",
                    str(PNG_MAX_METADATA_CHUNKS),
                )
            if compressed > PNG_MAX_COMPRESSED_METADATA:
                raise _refuse(
                    "the PNG",
                    f"more than {PNG_MAX_COMPRESSED_METADATA} compressed metadata chunks "
                    "(iCCP, zTXt, iTXt)",
                    str(PNG_MAX_COMPRESSED_METADATA),
                )
            if metadata_bytes > PNG_MAX_METADATA_BYTES:
                raise _refuse(
                    "the PNG",
                    f"more than {PNG_MAX_METADATA_BYTES:,} bytes of metadata",
                    f"{PNG_MAX_METADATA_BYTES:,} bytes",
                )
        if kind == b"IEND":
            break
        offset += 12 + length
    return compressed


def _itxt_compressed(data: bytes, offset: int) -> bool:
    """Whether the iTXt chunk at `offset` is compressed (the flag after its keyword)."""
    keyword_end = data.find(b"\0", offset + 8, offset + 8 + 80)
    return keyword_end > 0 and data[keyword_end + 1 : keyword_end + 2] == b"\x01"


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""The next marker: 0xFF (the last of any fill bytes) then a byte that is neither a stuffed
zero nor a restart marker, which is how libjpeg finds it after entropy-coded data or damage.
(A literal first byte lets the regular expression engine skip ahead at C speed.)"""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_file(data: bytes, pieces: _Pieces) -> int:
    _jpeg(data, pieces, "the JPEG")
    return 0


def _jpeg(data: bytes, pieces: _Pieces, what: str, start: int = 2, end: int | None = None) -> None:
    """Walks the segments and scans of the JPEG stream in data[start:end]."""
    end = len(data) if end is None else end
    scans = segments = 0
    offset = start
    while offset + 4 <= end:
        if data[offset] != 0xFF or data[offset + 1] in (0x00, 0xFF):
            found = _JPEG_MARKER.search(data, offset, end)
            if found is None:
                break
            offset = found.start()
            continue
        marker = data[offset + 1]
        if marker == 0xD9:  # end of image
            break
        if marker in _JPEG_STANDALONE:
            offset += 2
            continue
        (length,) = struct.unpack_from(">H", data, offset + 2)
        offset += 2 + length
        pieces.add()
        if marker == 0xDA:
            scans += 1
            if scans > JPEG_MAX_SCANS:
                raise _refuse(what, f"more than {JPEG_MAX_SCANS} scans", str(JPEG_MAX_SCANS))
            found = _JPEG_MARKER.search(data, offset, end)
            offset = found.start() if found else end
        else:
            segments += 1
            if segments > JPEG_MAX_SEGMENTS:
                raise _refuse(
                    what, f"more than {JPEG_MAX_SEGMENTS:,} segments", f"{JPEG_MAX_SEGMENTS:,}"
                )


def _gif(data: bytes, pieces: _Pieces) -> int:
    """Blocks up to the first frame, the only one decoded."""
    offset = 13
    if len(data) > 10 and data[10] & 0x80:
        offset += 3 << ((data[10] & 7) + 1)
    extensions = sub_blocks = 0
    while offset + 2 <= len(data) and data[offset] == 0x21:
        extensions += 1
        pieces.add()
        if extensions > GIF_MAX_EXTENSIONS:
            raise _refuse(
                "the GIF",
                f"more than {GIF_MAX_EXTENSIONS} extension blocks",
                str(GIF_MAX_EXTENSIONS),
            )
        offset += 2
        while offset < len(data) and data[offset]:
            sub_blocks += 1
            pieces.add()
            if sub_blocks > GIF_MAX_SUB_BLOCKS:
                raise _refuse(
                    "the GIF",
                    f"more than {GIF_MAX_SUB_BLOCKS:,} extension sub-blocks",
                    f"{GIF_MAX_SUB_BLOCKS:,}",
                )
            offset += 1 + data[offset]
        offset += 1
    return 0


def _tiff(data: bytes, pieces: _Pieces) -> int:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        if big:
            (first,) = struct.unpack_from(order + "Q", data, 8)
            (entries,) = struct.unpack_from(order + "Q", data, first)
        else:
            (first,) = struct.unpack_from(order + "I", data, 4)
            (entries,) = struct.unpack_from(order + "H", data, first)
    except struct.error:
        return 0  # truncated: the decoder says so
    if entries > TIFF_MAX_ENTRIES:
        raise _refuse("the TIFF's first directory", f"{entries:,} entries", str(TIFF_MAX_ENTRIES))
    pieces.add(int(entries))
    fields = _tiff_fields(data, order, big, first, entries)
    compression = fields.get(259, [1])[0]
    if compression == TIFF_OLD_JPEG:
        raise ImageTooComplex(
            "the TIFF uses the obsolete 'old-style JPEG' compression, which is not accepted: "
            "save it again with another compression, or as a PNG or JPEG"
        )
    offsets = fields.get(273) or fields.get(324) or []
    counts = fields.get(279) or fields.get(325) or []
    pieces.add(len(offsets))
    if compression == TIFF_JPEG:
        for strip, (start, size) in enumerate(zip(offsets, counts, strict=False)):
            where = f"strip {strip + 1} of the TIFF"
            _jpeg(data, pieces, where, start + 2, min(len(data), start + size))
    return 0


_TIFF_TYPE_SIZES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def _tiff_fields(
    data: bytes, order: str, big: bool, first: int, entries: int
) -> dict[int, list[int]]:
    """The integer fields of the directory at `first` that the checks read (compression, strip
    and tile offsets and sizes)."""
    wanted = {259, 273, 279, 324, 325}
    entry_size, count_format, inline = (20, "Q", 8) if big else (12, "I", 4)
    value_offset = 12 if big else 8
    fields: dict[int, list[int]] = {}
    start = first + (8 if big else 2)
    for index in range(entries):
        at = start + index * entry_size
        try:
            tag, kind = struct.unpack_from(order + "HH", data, at)
            if tag not in wanted or kind not in _TIFF_TYPE_SIZES:
                continue
            (count,) = struct.unpack_from(order + count_format, data, at + 4)
            code, size = _TIFF_TYPE_SIZES[kind]
            where = at + value_offset
            if count * size > inline:
                (where,) = struct.unpack_from(order + count_format, data, where)
            fields[tag] = list(struct.unpack_from(f"{order}{count}{code}", data, where))
        except struct.error:
            continue  # truncated or out of the file: the decoder says so
    return fields


def _bmp(data: bytes, pieces: _Pieces) -> int:
    try:
        (offset,) = struct.unpack_from("<I", data, 10)
        (header,) = struct.unpack_from("<I", data, 14)
        compression = struct.unpack_from("<I", data, 30)[0] if header >= 40 else 0
    except struct.error:
        return 0
    if compression not in BMP_RLE:
        return 0
    coded = max(0, len(data) - offset)
    if coded > BMP_MAX_RLE_BYTES:
        raise ImageTooComplex(
            f"the BMP holds {coded:,} bytes of run-length codes; at most {BMP_MAX_RLE_BYTES:,} "
            "are accepted (they are decoded slowly): save the image as a PNG"
        )
    pieces.add(coded // 2)  # two bytes a code
    return 0


def _webp(data: bytes, pieces: _Pieces) -> int:
    chunks = frames = 0
    offset = 12
    while offset + 8 <= len(data):
        kind = data[offset : offset + 4]
        (length,) = struct.unpack_from("<I", data, offset + 4)
        chunks += 1
        pieces.add()
        frames += kind == b"ANMF"
        if chunks > WEBP_MAX_CHUNKS:
            raise _refuse(
                "the WebP", f"more than {WEBP_MAX_CHUNKS:,} chunks", f"{WEBP_MAX_CHUNKS:,}"
            )
        if frames > WEBP_MAX_FRAMES:
            raise _refuse(
                "the WebP", f"more than {WEBP_MAX_FRAMES:,} frames", f"{WEBP_MAX_FRAMES:,}"
            )
        offset += 8 + length + (length & 1)
    return 0
