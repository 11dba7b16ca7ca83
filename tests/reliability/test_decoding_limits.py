"""Bounded decoding: a file whose structure would cost far more than its pixels is refused before
any decoder runs, a request's pixels are counted from the headers before anything is decoded,
only small files of simple structure decode on the event loop, large uploads decode on worker
threads, at most a fixed number at a time, and a full wait queue sheds requests with 503 and
Retry-After."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from PIL import Image

from bench import hostile_files
from service import vision
from service.admission import DecodeGate, auto_decode_slots
from service.errors import Overloaded
from tests import drawings
from tests.conftest import BUNDLED_MODELS
from tests.service.test_bad_input import assert_error


def lossless_webp(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A valid 8x8 JPEG whose frame header is rewritten to declare `width` x `height`."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_headers_give_the_pixel_count_without_decoding() -> None:
    assert vision.declared_pixels(lossless_webp(5000, 5000)) == 25_000_000
    assert vision.declared_pixels(jpeg_declaring(65500, 65500)) == 0  # Pillow refuses it at open
    assert vision.declared_pixels(b"not an image") == 0


def test_the_pixel_budget_counts_every_image_of_a_request(
    client_factory, settings_factory, models_dir
) -> None:
    client = client_factory(settings_factory(models_dir=models_dir, max_request_pixels=1_000_000))
    each = lossless_webp(600, 600)  # 360,000 pixels: one or two fit, three do not
    files = [("file", (f"{i}.webp", each, "image/webp")) for i in range(3)]
    response = client.post("/digit", files=files)
    assert_error(response, 413, "image_too_large", "1,080,000 pixels together")
    assert "PERCEPTRON_MAX_REQUEST_PIXELS" in response.json()["error"]
    two = client.post("/digit", files=files[:2])
    assert two.status_code == 422, two.text  # decoded: blank pictures hold no digit


def test_fifty_large_webp_files_are_refused_before_decoding(client) -> None:
    # A pixel-bomb batch: 50 lossless WebP files of about 1 KB, 5000x5000 pixels each.
    bomb = lossless_webp(5000, 5000)
    files = [("file", (f"{i}.webp", bomb, "image/webp")) for i in range(50)]
    response = client.post("/digit", files=files)
    assert_error(response, 413, "image_too_large", "1,250,000,000 pixels together")


def test_the_jpeg_bomb_message_cites_the_configured_limit(
    client_factory, settings_factory, models_dir
) -> None:
    client = client_factory(settings_factory(models_dir=models_dir, max_image_pixels=1_000_000))
    response = client.post(
        "/digit", content=jpeg_declaring(65500, 65500), headers={"content-type": "image/jpeg"}
    )
    assert_error(response, 413, "image_too_large", "4,290,250,000 pixels")
    assert "1,000,000 pixels per image (PERCEPTRON_MAX_IMAGE_PIXELS)" in response.json()["error"]
    assert "decompression bomb" not in response.json()["error"].lower()


def test_large_uploads_are_decoded_off_the_event_loop(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = vision.prepare_digit

    def spy(data, limits):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(data, limits)

    monkeypatch.setattr(vision, "prepare_digit", spy)
    small = drawings.encode(Image.new("L", (28, 28), 0))
    assert client.post("/digit", content=small, headers={"content-type": "image/png"})
    # 400x400 is over the inline pixel bound although the PNG is only a few kilobytes.
    large = drawings.encode(Image.new("L", (400, 400), 0))
    assert len(large) < client.app.state.settings.inline_preprocess_bytes
    client.post("/digit", content=large, headers={"content-type": "image/png"})
    loop_thread, worker_thread = threads
    assert worker_thread != loop_thread


def test_with_no_inline_budget_even_a_tiny_upload_decodes_off_the_event_loop(
    client_factory, settings_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PERCEPTRON_INLINE_PREPROCESS_BYTES=0: what the benchmark sweep compares."""
    on_event_loop: list[bool] = []
    real = vision.prepare_digit

    def spy(data, limits):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread has no running loop
            on_event_loop.append(False)
        else:
            on_event_loop.append(True)
        return real(data, limits)

    monkeypatch.setattr(vision, "prepare_digit", spy)
    small = drawings.encode(Image.new("L", (28, 28), 0))
    for budget in (64 * 1024, 0):
        client = client_factory(
            settings_factory(models_dir=BUNDLED_MODELS, inline_preprocess_bytes=budget)
        )
        client.post("/digit", content=small, headers={"content-type": "image/png"})
    assert on_event_loop == [True, False]


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("PNG of iCCP chunks", lambda: hostile_files.png_with_iccp_chunks(64 * 1024)),
        ("JPEG of empty scans", lambda: hostile_files.jpeg_with_empty_scans(64 * 1024, 280)),
        ("large PNG of iCCP chunks", lambda: hostile_files.png_with_iccp_chunks(2_000_000)),
        ("large JPEG of empty scans", lambda: hostile_files.jpeg_with_empty_scans(1_000_000)),
    ],
)
def test_costly_structure_is_refused_before_any_decoder_runs(
    client, monkeypatch: pytest.MonkeyPatch, name: str, build
) -> None:  # type: ignore[no-untyped-def]
    opened: list[bytes] = []
    real_open = Image.open

    def spy(fp, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(b"")
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    response = client.post("/digit", content=build(), headers={"content-type": "image/png"})
    assert_error(response, 413, "image_too_complex", "save the image")
    assert opened == [], f"{name}: Pillow opened the file before it was refused"


def test_in_a_batch_the_refused_file_is_named(client) -> None:
    files = [
        ("file", ("fine.png", drawings.encode(Image.new("L", (28, 28), 0)), "image/png")),
        ("file", ("iccp.png", hostile_files.png_with_iccp_chunks(64 * 1024), "image/png")),
    ]
    response = client.post("/digit", files=files)
    assert_error(response, 413, "image_too_complex", "iccp.png: the PNG holds")


def test_a_small_file_of_many_pieces_decodes_off_the_event_loop(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few pixels and few bytes, but more pieces than the event loop's quick look allows: a
    decode slot takes it (and its full check passes: 200 chunks of a 64 KB file are within the
    limits)."""
    threads: list[str] = []
    real = vision.prepare_digit

    def spy(data, limits):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(data, limits)

    monkeypatch.setattr(vision, "prepare_digit", spy)
    page = drawings.encode(Image.new("L", (28, 28), 0))
    client.post("/digit", content=page, headers={"content-type": "image/png"})
    many = hostile_files.png_with_empty_idat_chunks(len(page) + 12 * 200, side=28)
    assert not vision.inspect_structure(many).simple
    client.post("/digit", content=many, headers={"content-type": "image/png"})
    loop_thread, worker_thread = threads
    assert worker_thread != loop_thread


def test_a_full_decode_queue_sheds_requests_with_503() -> None:
    release = threading.Event()

    async def scenario() -> None:
        gate = DecodeGate(slots=1, queue_limit=1)
        running = asyncio.create_task(gate.run(release.wait, 10))
        await asyncio.sleep(0)  # one step: the task takes the free slot and starts its thread
        assert gate._semaphore.locked()
        waiting = asyncio.create_task(gate.run(lambda: "second"))
        await asyncio.sleep(0)  # one step: the second task reaches the queue and waits there
        assert gate.waiting == 1
        with pytest.raises(Overloaded) as refused:
            await gate.run(lambda: "third")
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "1"}
        release.set()
        assert await running is True
        assert await waiting == "second"
        assert await gate.run(lambda: "after") == "after"

    asyncio.run(scenario())


def test_slots_follow_cores_and_memory() -> None:
    assert auto_decode_slots(vision.MAX_IMAGE_PIXELS) >= 1
    # An image limit larger than the machine's memory still leaves one slot.
    assert auto_decode_slots(10**15) == 1
