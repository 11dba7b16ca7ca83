"""The image preprocessing: any upload becomes an MNIST-style 28x28 tensor, or a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.settings import Settings
from service.vision import (
    CENTRE,
    MAX_IMAGE_PIXELS,
    ImageTooLarge,
    NoDigitFound,
    UnreadableImage,
    preprocess,
    to_png,
)
from tests import drawings


def tensor_of(data: bytes) -> np.ndarray:
    return preprocess(data)


def centre_of_mass(tensor: np.ndarray) -> tuple[float, float]:
    rows, cols = np.mgrid[0:28, 0:28]
    mass = tensor.sum()
    return float((tensor * rows).sum() / mass), float((tensor * cols).sum() / mass)


def ink_box(tensor: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero(tensor.max(axis=1) > level)
    cols = np.flatnonzero(tensor.max(axis=0) > level)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.fixture(scope="module")
def seven(mnist) -> np.ndarray:
    return mnist.x_test[0]  # a 7


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_mnist_digits_pass_through_almost_unchanged(mnist) -> None:
    # Only strokes thinner or fatter than nearly all of MNIST's are re-drawn (a few percent).
    unchanged = 0
    for digit in mnist.x_test[:500]:
        tensor = preprocess(digit.astype(np.float32))
        assert tensor.shape == (28, 28) and tensor.dtype == np.float32
        unchanged += correlation(tensor, digit / 255.0) > 0.9
    assert unchanged >= 0.95 * 500


def test_output_is_mnist_shaped(seven: np.ndarray) -> None:
    tensor = tensor_of(drawings.off_centre(seven))
    assert tensor.min() >= 0.0 and tensor.max() == pytest.approx(1.0)
    height, width = ink_box(tensor)
    assert max(height, width) in (19, 20, 21)
    row, col = centre_of_mass(tensor)
    assert abs(row - CENTRE) <= 0.75 and abs(col - CENTRE) <= 0.75


@pytest.mark.parametrize(
    "make",
    [
        drawings.black_on_white,
        drawings.transparent_canvas,
        drawings.off_centre,
        drawings.jpeg_photo,
    ],
    ids=["black-on-white", "transparent-canvas", "off-centre", "jpeg-photo"],
)
def test_redrawn_uploads_look_like_the_mnist_original(seven: np.ndarray, make) -> None:
    original = preprocess(seven.astype(np.float32))
    assert correlation(tensor_of(make(seven)), original) > 0.8


def test_white_strokes_on_transparency_are_found_too(seven: np.ndarray) -> None:
    ink = np.asarray(Image.fromarray(seven).resize((280, 280)), dtype=np.uint8)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.where(ink > 90, 255, 0)
    tensor = tensor_of(drawings.encode(Image.fromarray(rgba, "RGBA")))
    assert correlation(tensor, preprocess(seven.astype(np.float32))) > 0.8


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"])
def test_every_common_mode_decodes(seven: np.ndarray, mode: str) -> None:
    base = Image.fromarray(255 - seven).resize((112, 112))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base, dtype=np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "1":
        image = base.convert("1", dither=Image.Dither.NONE)  # a bilevel scan
    else:
        image = base.convert(mode)
    fmt = "TIFF" if mode in ("I", "F", "CMYK") else "PNG"
    if mode == "CMYK":
        fmt = "JPEG"
    tensor = tensor_of(drawings.encode(image, fmt))
    assert correlation(tensor, preprocess(seven.astype(np.float32))) > 0.75


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_every_allowed_format_decodes(seven: np.ndarray, fmt: str) -> None:
    image = Image.fromarray(255 - seven).resize((84, 84)).convert("RGB")
    tensor = tensor_of(drawings.encode(image, fmt))
    assert tensor.max() == pytest.approx(1.0)


def test_exif_rotation_is_applied(seven: np.ndarray) -> None:
    upright = Image.fromarray(255 - seven).resize((112, 112)).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a sideways camera stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    data = drawings.encode(stored, "JPEG", exif=exif.tobytes())
    expected = tensor_of(drawings.encode(upright, "JPEG"))
    assert correlation(tensor_of(data), expected) > 0.9


def test_an_animated_gif_uses_its_first_frame(seven: np.ndarray, mnist) -> None:
    first = Image.fromarray(255 - seven).resize((84, 84))
    second = Image.fromarray(255 - mnist.x_test[1]).resize((84, 84))
    buffer = io.BytesIO()
    first.save(buffer, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    assert (
        correlation(tensor_of(buffer.getvalue()), tensor_of(drawings.encode(first, "GIF"))) > 0.99
    )


@pytest.mark.parametrize("colour", [0, 255, 128])
def test_a_blank_image_has_no_digit(colour: int) -> None:
    blank = Image.new("L", (200, 200), colour)
    with pytest.raises(NoDigitFound, match="no digit found"):
        tensor_of(drawings.encode(blank))


def test_a_transparent_canvas_with_nothing_drawn_has_no_digit() -> None:
    with pytest.raises(NoDigitFound):
        tensor_of(drawings.encode(Image.new("RGBA", (280, 280), (0, 0, 0, 0))))


def test_a_faint_smudge_is_not_a_digit() -> None:
    page = np.full((200, 200), 230, dtype=np.uint8)
    page[90:110, 90:110] = 222
    with pytest.raises(NoDigitFound):
        tensor_of(drawings.encode(Image.fromarray(page)))


def test_a_single_dot_is_not_a_digit() -> None:
    page = np.full((280, 280), 255, dtype=np.uint8)
    page[140, 140] = 0
    with pytest.raises(NoDigitFound):
        tensor_of(drawings.encode(Image.fromarray(page)))


def test_a_stray_speck_does_not_shrink_the_digit(seven: np.ndarray) -> None:
    page = np.full((300, 300), 255, dtype=np.uint8)
    ink = np.asarray(Image.fromarray(seven).resize((168, 168)))
    page[60:228, 60:228] = 255 - ink
    clean = tensor_of(drawings.encode(Image.fromarray(page)))
    page[5:7, 290:292] = 0  # a dust speck in a corner
    assert correlation(tensor_of(drawings.encode(Image.fromarray(page))), clean) > 0.97


def test_thin_and_fat_strokes_are_brought_towards_mnist_width(seven: np.ndarray) -> None:
    thin = tensor_of(drawings.transparent_canvas(seven, scale=10, stroke=0))
    fat = tensor_of(drawings.transparent_canvas(seven, scale=10, stroke=14))
    original = preprocess(seven.astype(np.float32))
    # Ink coverage ends within a factor of two of MNIST's, whatever the pen.
    for tensor in (thin, fat):
        ratio = (tensor > 0.5).sum() / (original > 0.5).sum()
        assert 0.5 < ratio < 2.0, ratio


def test_pixel_arrays_in_either_range_and_polarity(seven: np.ndarray) -> None:
    expected = preprocess(seven.astype(np.float32))
    for pixels in (seven / 255.0, 255.0 - seven, 1.0 - seven / 255.0):
        assert correlation(preprocess(np.asarray(pixels, dtype=np.float32)), expected) > 0.95


@pytest.mark.parametrize(
    "pixels",
    [
        np.array([[np.nan] * 28] * 28),
        np.full((28, 28), 300.0),
        np.full((28, 28), -1.0),
        np.zeros((0, 0)),
    ],
    ids=["nan", "over-255", "negative", "empty"],
)
def test_bad_pixel_arrays_are_refused(pixels: np.ndarray) -> None:
    with pytest.raises(UnreadableImage):
        preprocess(pixels.astype(np.float32))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # A 10000x10000 PNG of one colour compresses to a few kilobytes.
    bomb = drawings.encode(Image.new("1", (10000, 10000), 0))
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLarge, match="too large"):
        preprocess(bomb)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20],
    ids=["empty", "text", "png-header-only"],
)
def test_unreadable_uploads_are_refused(data: bytes) -> None:
    with pytest.raises(UnreadableImage):
        preprocess(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(seven: np.ndarray, fmt: str) -> None:
    data = drawings.encode(Image.fromarray(255 - seven).resize((200, 200)), fmt)
    with pytest.raises(UnreadableImage, match=r"truncated|decoded"):
        preprocess(data[: len(data) // 2])


def test_formats_outside_the_allowed_list_are_refused(seven: np.ndarray) -> None:
    data = drawings.encode(Image.fromarray(seven), "PPM")
    with pytest.raises(UnreadableImage, match="supported format"):
        preprocess(data)


def test_to_png_round_trips(seven: np.ndarray) -> None:
    tensor = preprocess(seven.astype(np.float32))
    decoded = np.asarray(Image.open(io.BytesIO(to_png(tensor))), dtype=np.float32) / 255.0
    assert np.abs(decoded - tensor).max() <= 1 / 255 + 1e-6


def test_the_service_bounds_images_as_the_preprocessing_does_by_default() -> None:
    assert Settings.model_fields["max_image_pixels"].default == MAX_IMAGE_PIXELS
