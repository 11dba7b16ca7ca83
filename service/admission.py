"""Admission of a /digit, /number or feedback request's images: whether they are preprocessed
at all, where, and when. One decision, in one place, so no request can stall the event loop or
exhaust memory:

* a per-request pixel budget, checked from the images' headers before any pixel is decoded
  (413 past it);
* small requests (at most `inline_preprocess_bytes` in all and `INLINE_PREPROCESS_PIXELS`,
  each file of a simple structure: `vision.INLINE_PARTS` pieces at most, from a look at no
  more than that many) are preprocessed on the event loop, where a thread hop would cost more
  than the work;
* anything larger takes a decode slot on a worker thread: a fixed number of slots (a slot per
  request; its images decode one after the other, so peak memory is about slots x the largest
  image), sized from memory and cores;
* a bounded wait for a slot: past it the request is shed with 503 and Retry-After.

The per-image bound is the picture's own (`vision.ImageLimits`), applied while decoding.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from service import vision
from service.errors import Overloaded
from service.settings import Settings
from training.signatures import IMAGE_SIZE

T = TypeVar("T")

INLINE_PREPROCESS_PIXELS = 100_000
"""Requests of at most this many pixels in all (a 280x280 web canvas, a few MNIST images), and at
most `inline_preprocess_bytes`, are preprocessed on the event loop: a thread hop costs more than
decoding them, and their decoding time is bounded by the pixel count (about 2 ms)."""
DECODE_BYTES_PER_PIXEL = 18
"""Peak memory of one decode and preprocess per image pixel: measured about 18 bytes for a
25-megapixel lossless WebP or float TIFF (decoded planes, conversions and float copies)."""
DECODE_MEMORY_SHARE = 0.25
"""At most this share of the machine's memory is given to decodes when slots are sized
automatically."""
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class DigitSource:
    """One image of a request: encoded file bytes or a pixel array, and how to name it."""

    label: str
    data: bytes | np.ndarray

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else int(self.data.size)


def source_pixels(sources: Sequence[DigitSource]) -> int:
    """The pixels of all `sources` together, from the image headers (nothing is decoded);
    ImageTooComplex, naming the image in a batch, for a file whose structure is refused."""
    total = 0
    for source in sources:
        if not isinstance(source.data, bytes):
            total += source.size
            continue
        try:
            total += vision.declared_pixels(source.data)
        except vision.ImageError as exc:
            raise (exc.naming(source.label) if len(sources) > 1 else exc) from None
    return total


def check_request_pixels(total: int, budget: int) -> None:
    """Raises ImageTooLarge (413) when a request's images hold more pixels than `budget`."""
    if total > budget:
        raise vision.ImageTooLarge(
            f"the images of this request hold {total:,} pixels together; the limit is "
            f"{budget:,} pixels per request (PERCEPTRON_MAX_REQUEST_PIXELS): send fewer or "
            "smaller images"
        )


@dataclass(frozen=True)
class PreparedDigits:
    """A request's pictures made ready for the digit model, in order."""

    tensors: np.ndarray
    """(images, 28, 28) float32."""
    possible_digits: list[int]
    """How many digits each picture may hold (`vision.PreparedDigit.possible_digits`)."""


def preprocess_sources(
    sources: Sequence[DigitSource],
    max_pixels: int,
    max_request_pixels: int,
    pixels: int | None = None,
) -> PreparedDigits:
    """The batch of 28x28 tensors for `sources`, in order; raises the `vision.ImageError` of the
    first bad one (naming it in a batch), and ImageTooLarge before decoding anything when
    together they exceed `max_request_pixels` (`pixels`, when the caller has already counted
    them)."""
    check_request_pixels(source_pixels(sources) if pixels is None else pixels, max_request_pixels)
    limits = vision.ImageLimits(max_pixels)
    tensors = np.empty((len(sources), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    possible = []
    for index, source in enumerate(sources):
        try:
            prepared = vision.prepare_digit(source.data, limits)
        except vision.ImageError as exc:
            raise (exc.naming(source.label) if len(sources) > 1 else exc) from None
        tensors[index] = prepared.tensor
        possible.append(prepared.possible_digits)
    return PreparedDigits(tensors, possible)


def preprocess_numbers(
    sources: Sequence[DigitSource],
    max_pixels: int,
    max_request_pixels: int,
    pixels: int | None = None,
    *,
    max_digits: int,
) -> list[list[vision.NumberStretch]]:
    """The digits of the number in each of `sources`, in order (`vision.preprocess_number`),
    with `preprocess_sources`'s checks and errors; TooManyDigits past `max_digits` in one."""
    check_request_pixels(source_pixels(sources) if pixels is None else pixels, max_request_pixels)
    limits = vision.ImageLimits(max_pixels)
    numbers = []
    for source in sources:
        try:
            numbers.append(vision.preprocess_number(source.data, max_digits, limits))
        except vision.ImageError as exc:
            raise (exc.naming(source.label) if len(sources) > 1 else exc) from None
    return numbers


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


def simple_enough_for_the_loop(sources: Sequence[DigitSource]) -> bool:
    """Whether every file of `sources` has a structure simple enough to decode on the event
    loop; each look stops after `vision.INLINE_PARTS` pieces, and refuses (413) what is costly
    within them."""
    for source in sources:
        if isinstance(source.data, bytes):
            try:
                look = vision.inspect_structure(source.data, stop_after=vision.INLINE_PARTS)
            except vision.ImageError as exc:
                raise (exc.naming(source.label) if len(sources) > 1 else exc) from None
            if not look.simple:
                return False
    return True


class ImageAdmission:
    """The one decision about a request's images: the pixel budget, inline or on a decode slot,
    and the wait for a slot."""

    def __init__(
        self, *, max_pixels: int, max_request_pixels: int, inline_bytes: int, gate: DecodeGate
    ) -> None:
        self.max_pixels = max_pixels
        self.max_request_pixels = max_request_pixels
        self.inline_bytes = inline_bytes
        self.gate = gate

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageAdmission:
        slots = settings.decode_slots or auto_decode_slots(
            settings.max_image_pixels, settings.workers
        )
        return cls(
            max_pixels=settings.max_image_pixels,
            max_request_pixels=settings.max_request_pixels,
            inline_bytes=settings.inline_preprocess_bytes,
            gate=DecodeGate(slots, settings.decode_queue_limit),
        )

    async def preprocess(self, sources: Sequence[DigitSource]) -> PreparedDigits:
        """The batch of 28x28 tensors for `sources` (see `preprocess_sources`), computed on the
        event loop when the request is small and on a decode slot otherwise."""
        return await self._admit(sources, preprocess_sources)

    async def preprocess_numbers(
        self, sources: Sequence[DigitSource], max_digits: int
    ) -> list[list[vision.NumberStretch]]:
        """The digits of the number in each of `sources` (see `preprocess_numbers`), admitted
        as `preprocess` admits a request."""
        return await self._admit(sources, partial(preprocess_numbers, max_digits=max_digits))

    async def _admit(self, sources: Sequence[DigitSource], work: Callable[..., T]) -> T:
        """`work(sources, max_pixels, max_request_pixels, pixels)` on the event loop when the
        request is small and on a decode slot otherwise."""
        pixels = None
        small = sum(source.size for source in sources) <= self.inline_bytes
        if small and simple_enough_for_the_loop(sources):
            # Reading the headers of a few kilobytes of simple files is cheap enough for the
            # loop.
            pixels = source_pixels(sources)
        arguments = (sources, self.max_pixels, self.max_request_pixels, pixels)
        if pixels is not None and pixels <= INLINE_PREPROCESS_PIXELS:
            return work(*arguments)
        return await self.gate.run(work, *arguments)
