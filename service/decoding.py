"""Bounds on image decoding, so no request can stall the event loop or exhaust memory:

* a per-request pixel budget, checked from the images' headers before any pixel is decoded;
* a fixed number of decodes at a time (a slot per request; its images decode one after the
  other, so peak memory is about slots x the largest image), sized from memory and cores;
* a bounded wait for a slot: past it the request is shed with 503 and Retry-After.

Reduced-size decoding is used where Pillow offers it: JPEG's `draft` (libjpeg scales by 1/2..1/8
while decoding, see service.imaging.decode_image). Pillow 13 has no reduced decoding for WebP,
TIFF, PNG, GIF or BMP (`draft` is JPEG-only; `reduce` at open is JPEG 2000-only), so those are
bounded by the pixel budget and the slots instead.
"""

from __future__ import annotations

import asyncio
import io
import os
import warnings
from collections.abc import Callable
from typing import TypeVar

from PIL import Image
from starlette.concurrency import run_in_threadpool

from service.errors import Overloaded
from service.imaging import ALLOWED_FORMATS, ImageTooLarge

T = TypeVar("T")

DECODE_BYTES_PER_PIXEL = 18
"""Peak memory of one decode and preprocess per image pixel: measured about 18 bytes for a
25-megapixel lossless WebP or float TIFF (decoded planes, conversions and float copies)."""
DECODE_MEMORY_SHARE = 0.25
"""At most this share of the machine's memory is given to decodes when slots are sized
automatically."""
RETRY_AFTER_S = 1


def declared_pixels(data: bytes) -> int:
    """Width x height as the image's header declares it, without decoding pixels; 0 when the
    header cannot be read or Pillow refuses it outright as a bomb (the decoder then reports
    what is wrong with the file, at no decoding cost)."""
    try:
        with warnings.catch_warnings():
            # Our own budget decides, with our own message; Pillow's bomb warning (about 89 M
            # pixels) would otherwise stop the header read first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
    except Exception:  # any unreadable header is the decoder's to report
        return 0
    return int(width) * int(height)


def check_request_pixels(total: int, budget: int) -> None:
    """Raises ImageTooLarge (413) when a request's images hold more pixels than `budget`."""
    if total > budget:
        raise ImageTooLarge(
            f"the images of this request hold {total:,} pixels together; the limit is "
            f"{budget:,} pixels per request (PERCEPTRON_MAX_REQUEST_PIXELS): send fewer or "
            "smaller images"
        )


def auto_decode_slots(max_image_pixels: int, processes: int = 1) -> int:
    """How many decodes one of `processes` serving processes may run at once: together one
    per core, and no more than fit in a quarter of the machine's memory at the largest allowed
    image (at least one each)."""
    cores = max(1, (os.cpu_count() or 1) // processes)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 4 << 30
    per_decode = max(1, max_image_pixels * DECODE_BYTES_PER_PIXEL)
    return max(1, min(cores, int(memory * DECODE_MEMORY_SHARE) // processes // per_decode))


class DecodeGate:
    """Runs decodes on worker threads, at most `slots` at a time, with at most `queue_limit`
    requests waiting for a slot; further requests get 503 at once (waiting longer would only
    hold their memory and sockets)."""

    def __init__(self, slots: int, queue_limit: int) -> None:
        self.slots = slots
        self.queue_limit = queue_limit
        self._semaphore = asyncio.Semaphore(slots)
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    async def run(self, function: Callable[..., T], *args: object) -> T:
        if self._semaphore.locked() and self._waiting >= self.queue_limit:
            raise Overloaded(
                f"{self.slots} image decodes are running and {self._waiting} are waiting; "
                f"retry in {RETRY_AFTER_S} s",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        try:
            return await run_in_threadpool(function, *args)
        finally:
            self._semaphore.release()
