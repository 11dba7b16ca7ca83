"""Turns a picture of a handwritten digit into the 28x28 tensor the digit model was trained on.

MNIST digits are white ink on black, size-normalised to fit a 20x20 box (aspect ratio kept,
anti-aliased) and centred in 28x28 by centre of mass. People upload black strokes on a
transparent canvas, pen on paper photographed under a lamp, scans, thin or fat strokes. This
module undoes those differences, in this order:

1. decode safely (allowed formats only, a bound on pixels checked before decoding, EXIF
   rotation applied, first frame of animations);
2. flatten transparency onto a background that contrasts with the strokes, then greyscale;
3. find the background from the border, turn the picture into bright ink on black, level uneven
   lighting when the border shows it, and drop the noise floor;
4. crop to the ink, ignoring stray specks; bring the stroke width to MNIST's;
5. scale to fit 20x20 and place it in 28x28 with its centre of mass at MNIST's (14, 14).

Every function here raises `ImageError` subclasses, never HTTP errors; the routes map them.
"""

from __future__ import annotations

import io
import logging
import math
import warnings

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from training.signatures import IMAGE_SIZE

log = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
DIGIT_BOX = 20
CENTRE = 14.0
"""MNIST's mean centre of mass, measured on its training set: (14.0, 14.0) in pixel indices."""
WORKING_SIZE = 192
"""Pictures are reduced to at most this many pixels a side first: the digit ends up 20 pixels
high, so more detail only costs time."""
TARGET_STROKE = 2.9
"""MNIST's median stroke width at the 20x20 scale (2 x ink area / boundary pixels)."""
MNIST_STROKES = (1.45, 4.65)
"""About the 1st and 97th percentiles of MNIST's stroke widths at the 20x20 scale: strokes
inside this range are left as drawn (the model has seen such widths), outside it they are
brought to TARGET_STROKE."""
STROKE_WORKING_SIZE = 3 * DIGIT_BOX
"""Stroke width is measured and corrected with the digit this many pixels high."""
MIN_CONTRAST = 0.1
"""Ink must differ from the background by at least this much (0..1) to count as a digit."""


class ImageError(Exception):
    """The upload cannot be used; `status` is the HTTP status the API answers with."""

    status = 415


class UnreadableImage(ImageError):
    status = 415


class ImageTooLarge(ImageError):
    status = 413


class NoDigitFound(ImageError):
    status = 422


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decodes an upload into a Pillow image, refusing anything but the allowed formats and
    anything over `max_pixels` before its pixels are decoded."""
    if not data:
        raise UnreadableImage("the upload is empty: send a PNG, JPEG, GIF, BMP, WebP or TIFF")
    try:
        # Pillow warns about damaged metadata (a corrupt TIFF directory or EXIF block) and
        # decodes on: record those, so the outcome never depends on the process's warning
        # filters (under `-W error` they would escape as a 500). Pillow's own bomb warning is
        # ignored: the configured max_pixels decides, and says so in its message.
        with warnings.catch_warnings(record=True) as damage:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise _too_large(f"{width}x{height} pixels", max_pixels)
            if image.format == "JPEG":
                # Let libjpeg decode at a reduced scale: far faster for phone photos.
                image.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
            image.load()
            image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        # Past twice its own threshold Pillow refuses at open(), before the size is known to
        # us; its message carries the pixel count.
        pixels = _pixels_in_bomb_message(exc)
        raise _too_large(f"{pixels:,} pixels" if pixels else "", max_pixels) from None
    except UnidentifiedImageError as exc:
        raise UnreadableImage(
            f"the upload is not an image in a supported format ({', '.join(ALLOWED_FORMATS)})"
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UnreadableImage(
            f"the image could not be decoded (truncated or corrupt?): {exc}"
        ) from exc
    for warning in damage:
        log.debug("image decoded despite damage: %s", warning.message)
    if image.width < 1 or image.height < 1:
        raise UnreadableImage("the image has no pixels")
    return image


def _too_large(size: str, max_pixels: int) -> ImageTooLarge:
    what = f"the image is too large: {size}" if size else "the image is too large"
    return ImageTooLarge(
        f"{what}, the limit is {max_pixels:,} pixels per image (PERCEPTRON_MAX_IMAGE_PIXELS)"
    )


def _pixels_in_bomb_message(exc: Exception) -> int | None:
    """The N of Pillow's "Image size (N pixels) exceeds limit ...", or None."""
    text = str(exc)
    start, end = text.find("("), text.find(" pixels)")
    digits = text[start + 1 : end] if 0 <= start < end else ""
    return int(digits) if digits.isdigit() else None


def to_mnist_tensor(image: Image.Image | np.ndarray) -> np.ndarray:
    """Returns the MNIST-style 28x28 float32 array (white ink on black, 0..1) for a decoded
    picture or a 2-D pixel array (0..1 or 0..255, either polarity). Raises NoDigitFound when
    nothing stands out from the background."""
    grey = _pixels_from_array(image) if isinstance(image, np.ndarray) else _greyscale(image)
    ink = _ink_on_black(grey)
    crop = _crop_to_ink(ink)
    return _fit_and_centre(crop)


def _pixels_from_array(pixels: np.ndarray) -> np.ndarray:
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim != 2 or array.size == 0:
        raise UnreadableImage(f"pixels must be a non-empty 2-D array, not shape {array.shape}")
    if not np.isfinite(array).all():
        raise UnreadableImage("pixels must be finite numbers")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 255:
        raise UnreadableImage("pixel values must lie in 0..1 or 0..255")
    if high > 1.0:
        array = array / 255.0
    return _reduce(array)


def _greyscale(image: Image.Image) -> np.ndarray:
    """Greyscale 0..1, reduced to the working size, transparency flattened onto a background
    that contrasts with the ink. Reduction happens in Pillow on 8-bit data, before NumPy."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F":
            peak = max(1.0, float(array.max()))
        return _reduce(np.clip(array / peak, 0.0, 1.0))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    image = image.convert("LA" if has_alpha else "L")
    factor = -(-max(image.size) // WORKING_SIZE)
    if factor > 1:
        image = image.reduce(factor)
    if not has_alpha:
        return np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    pixels = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    return _flatten_transparency(pixels[..., 0], pixels[..., 1])


def _flatten_transparency(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composites onto white when the opaque strokes are dark (a web canvas: black pen on
    nothing) and onto black when they are light, so the strokes always stand out."""
    opaque = alpha > 0.5
    if not opaque.any():
        return np.zeros_like(grey)
    if opaque.all():
        return grey
    background = 1.0 if float(grey[opaque].mean()) < 0.5 else 0.0
    flattened: np.ndarray = grey * alpha + background * (1.0 - alpha)
    return flattened


def _reduce(grey: np.ndarray) -> np.ndarray:
    """Reduces a float picture to the working size (for inputs that are not 8-bit images)."""
    height, width = grey.shape
    factor = -(-max(height, width) // WORKING_SIZE)
    if factor <= 1:
        return grey
    reduced = Image.fromarray(grey.astype(np.float32), mode="F").reduce(factor)
    return np.asarray(reduced, dtype=np.float32)


def _border(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    band = max(1, min(height, width) // 20)
    if height <= 2 * band or width <= 2 * band:
        return grey.ravel()
    return np.concatenate(
        [
            grey[:band].ravel(),
            grey[-band:].ravel(),
            grey[band:-band, :band].ravel(),
            grey[band:-band, -band:].ravel(),
        ]
    )


def _ink_on_black(grey: np.ndarray) -> np.ndarray:
    """Bright ink on a zero background, 0..1, whatever the picture's polarity and lighting."""
    border = _border(grey)
    background = float(np.median(border))
    ink = grey if background < 0.5 else 1.0 - grey
    background = min(background, 1.0 - background)
    low, high = np.quantile(border, (0.1, 0.9))
    uneven = float(high - low) > 0.08  # a photo under a lamp: the border's brightness varies
    ink = ink - (_local_background(ink) if uneven else background)
    ink = np.clip(ink, 0.0, None)
    contrast = float(ink.max()) if ink.size else 0.0
    if contrast < MIN_CONTRAST:
        raise NoDigitFound(
            "no digit found: the image is blank or its strokes do not stand out from the background"
        )
    ink = np.clip(ink / contrast, 0.0, 1.0)
    noise = np.clip(_border(ink), 0.0, None)
    floor = float(np.median(noise) + 3.0 * np.median(np.abs(noise - np.median(noise))))
    if floor > 0.0:
        floor = min(floor + 0.05, 0.5)
        ink = np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0)
    return ink


def _local_background(ink: np.ndarray) -> np.ndarray:
    """The paper's brightness around each pixel: a minimum filter wider than any stroke (ink is
    bright here), smoothed. Computed on a reduced 8-bit copy: lighting varies slowly."""
    height, width = ink.shape
    image = Image.fromarray(np.uint8(np.clip(ink, 0.0, 1.0) * 255.0), mode="L")
    factor = 4 if min(height, width) >= 64 else 1
    small = image.reduce(factor)
    window = max(3, (max(small.size) // 8) | 1)
    paper = small.filter(ImageFilter.MinFilter(window)).filter(ImageFilter.BoxBlur(window // 2))
    paper = paper.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(paper, dtype=np.float32) * (1.0 / 255.0)


def _crop_to_ink(ink: np.ndarray, trim: float = 0.004) -> np.ndarray:
    """The smallest box holding all but `trim` of the ink mass on each side, so a stray speck
    does not stretch the box; what lies outside is discarded."""
    rows = ink.sum(axis=1, dtype=np.float64)
    cols = ink.sum(axis=0, dtype=np.float64)
    total = rows.sum()
    if total <= 0:
        raise NoDigitFound("no digit found: the image is blank")
    top, bottom = _span(rows, total * trim)
    left, right = _span(cols, total * trim)
    crop = ink[top : bottom + 1, left : right + 1]
    if max(crop.shape) < max(2, 0.02 * max(ink.shape)) or float(crop.max()) < 0.5:
        raise NoDigitFound("no digit found: only a dot or speck stands out from the background")
    return crop


def _span(mass: np.ndarray, cut: float) -> tuple[int, int]:
    cumulative = np.cumsum(mass)
    start = int(np.searchsorted(cumulative, cut, side="right"))
    end = int(np.searchsorted(cumulative, cumulative[-1] - cut, side="left"))
    start = min(start, len(mass) - 1)
    end = max(end, start)
    # Keep the faint anti-aliased edge next to the box.
    while start > 0 and mass[start - 1] > 0:
        start -= 1
    while end < len(mass) - 1 and mass[end + 1] > 0:
        end += 1
    return start, end


def _stroke_width(mask: np.ndarray) -> float:
    """2 x area / boundary pixels: the width of a stroke (exact from width 2 up)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    padded = np.pad(mask, 1)
    inner = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    boundary = int((mask & ~inner).sum())
    return 2.0 * area / max(boundary, 1)


def _normalise_stroke(crop: np.ndarray, scale: float) -> np.ndarray:
    """Dilates thin strokes (a fine pen on a large canvas) and erodes fat ones (a marker on a
    small digit) towards MNIST's width once scaled by `scale`."""
    mask = crop > 0.5
    width = _stroke_width(mask)
    if width == 0.0:
        return crop
    target = TARGET_STROKE / scale
    thinnest, thickest = (limit / scale for limit in MNIST_STROKES)
    if width < thinnest:
        radius = round((target - width) / 2)
    elif width > thickest:
        radius = -round(min((width - target) / 2, width / 4))
    else:
        return crop
    if radius == 0:
        return crop
    size = 2 * abs(radius) + 1
    pad = abs(radius) + 1
    padded = Image.fromarray(np.pad(crop, pad).astype(np.float32), mode="F")
    morph = ImageFilter.MaxFilter(size) if radius > 0 else ImageFilter.MinFilter(size)
    return np.asarray(padded.filter(morph), dtype=np.float32)


def _fit_and_centre(crop: np.ndarray) -> np.ndarray:
    crop = _shrink(crop, STROKE_WORKING_SIZE, grow=True)
    crop = _normalise_stroke(crop, DIGIT_BOX / max(crop.shape))
    rows = np.flatnonzero(crop.max(axis=1) > 0)
    cols = np.flatnonzero(crop.max(axis=0) > 0)
    crop = crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scaled = _shrink(crop, DIGIT_BOX, grow=True)
    return _place_by_centre_of_mass(scaled)


def _shrink(crop: np.ndarray, longest: int, *, grow: bool = False) -> np.ndarray:
    """Scales `crop` so its longer side is `longest` (only down unless `grow`), keeping the
    aspect ratio; area averaging keeps thin strokes as grey, then the peak is brought to 1."""
    height, width = crop.shape
    scale = longest / max(height, width)
    if scale < 1 or (grow and scale != 1):
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        crop = np.asarray(Image.fromarray(crop, mode="F").resize(size, resample), dtype=np.float32)
    peak = float(crop.max())
    if peak <= 0:
        raise NoDigitFound("no digit found: the strokes vanish when scaled to 20x20 pixels")
    return np.clip(crop / peak, 0.0, 1.0)


def _place_by_centre_of_mass(patch: np.ndarray) -> np.ndarray:
    height, width = patch.shape
    mass = patch.sum(dtype=np.float64)
    centre_row = float((patch.sum(axis=1) * np.arange(height)).sum() / mass)
    centre_col = float((patch.sum(axis=0) * np.arange(width)).sum() / mass)
    top = _clamp(math.floor(CENTRE - centre_row + 0.5), 0, IMAGE_SIZE - height)
    left = _clamp(math.floor(CENTRE - centre_col + 0.5), 0, IMAGE_SIZE - width)
    canvas = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    canvas[top : top + height, left : left + width] = patch
    return canvas


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def to_png(tensor: np.ndarray) -> bytes:
    """Encodes a 28x28 0..1 tensor as a greyscale PNG (what the model saw, for people)."""
    pixels = np.clip(np.rint(tensor * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
