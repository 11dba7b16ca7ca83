"""Turns a picture of a handwritten digit into the 28x28 tensor the digit model was trained on.

MNIST digits are white ink on black, size-normalised to fit a 20x20 box (aspect ratio kept,
anti-aliased) and centred in 28x28 by centre of mass. People upload black strokes on a
transparent canvas, pen on paper photographed under a lamp, scans, thin or fat strokes. This
module undoes those differences, in this order:

1. decode safely (allowed formats only, the file's structure and a bound on pixels checked
   before decoding (`service.vision.structure`), EXIF rotation applied, first frame of
   animations, JPEGs in grey at a reduced scale);
2. greyscale at the working size (at most 512 pixels a side); a transparent canvas is cropped
   to what was drawn and flattened onto a background that contrasts with the strokes;
3. separate the ink from the paper and crop to the digit (`service.vision.ink`: local paper
   estimate, a threshold from the picture's own statistics, paper lines, specks and texture
   removed);
4. MNIST's layout (`service.vision.mnist_layout`): stroke width, fit to 20x20, centre of mass.

Reduced-size decoding is used where Pillow offers it: JPEG's `draft` (libjpeg scales by 1/2..1/8
while decoding). Pillow 13 has no reduced decoding for WebP, TIFF, PNG, GIF or BMP (`draft` is
JPEG-only; `reduce` at open is JPEG 2000-only), so those are bounded by the pixel limits and the
decode slots (`service.admission`) instead.

Every function here raises `ImageError` subclasses, which carry the status the API answers with.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.vision.errors import ImageError, ImageTooLarge, SeveralDigits, UnreadableImage
from service.vision.ink import Ink, digit_of, separate_drawn_ink, separate_ink
from service.vision.mnist_layout import STROKE_WORKING_SIZE, fit_and_centre
from service.vision.pixels import grey_levels, pixel_array
from service.vision.segmentation import count_digits
from service.vision.structure import inspect_structure
from training.signatures import IMAGE_SIZE

log = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MAX_IMAGE_PIXELS = 25_000_000
"""The default bound on one image (width x height): a 12-megapixel phone photo with room to
spare. The service's is PERCEPTRON_MAX_IMAGE_PIXELS, whose default is this number."""
WORKING_SIZE = 512
"""Pictures are reduced to at most this many pixels a side first. A digit covering 2% of a
phone photo is still about 60 pixels high at this size (the model sees it 20 high); more
detail only costs time."""
JPEG_DRAFT_SIDE = WORKING_SIZE * 3 // 5
"""JPEGs are decoded at the smallest of libjpeg's scales (1/2, 1/4, 1/8) whose longer side is
at least this: a 4000x3000 photo decodes at 500x375, the working size with no further resize."""
DRAWING_SIZE = 2 * STROKE_WORKING_SIZE
"""What was drawn on a transparent canvas is reduced to at most this many pixels a side (by an
integer factor, so thin strokes stay sharp): enough for the stroke width to be measured."""


@dataclass(frozen=True)
class WorkingSize:
    """How far a picture is reduced before its ink is looked for."""

    longest: int = WORKING_SIZE
    """Photos, scans and arrays: at most this many pixels on the longer side."""
    drawing: int = DRAWING_SIZE
    """What was drawn on a transparent canvas: at most this many pixels a side..."""
    drawing_side: str = "longer"
    """...on its "longer" side (one digit), or its "shorter" one (a row of digits, whose
    height is a digit's)."""


DIGIT_SIZE = WorkingSize()
ROW_SIZE = WorkingSize(longest=2 * WORKING_SIZE, drawing_side="shorter")
"""A row of digits is read at twice the working size: each of its digits takes a fraction of
the picture's width (a six-digit number across a fifth of a phone photo has digits about 35
pixels high at 1024 pixels wide, 17 at 512)."""


@dataclass(frozen=True)
class ImageLimits:
    """What one image may hold before it is refused undecoded."""

    max_pixels: int = MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class PreparedDigit:
    """A picture of one digit made ready for the digit model."""

    tensor: np.ndarray
    """28x28 float32, MNIST's layout (white ink on black, 0..1)."""
    possible_digits: int
    """How many digits the picture may hold (`DigitCount.possible`): above 1, a reader of one
    digit tells its client that the picture may be a number."""


def preprocess(
    data: bytes | np.ndarray,
    limits: ImageLimits = ImageLimits(),
    steps: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The MNIST-style 28x28 float32 array (white ink on black, 0..1) for an encoded image
    (`bytes`) or a picture given as numbers (a 2-D array, 0..1 or 0..255, either polarity).
    Raises `ImageError` subclasses: unreadable, too large for `limits`, invalid pixels, no digit
    found, several digits. `steps`, when given, receives the intermediate pictures
    (`service.vision.ink.find_digit` names them; `grey` is the working-size greyscale)."""
    return prepare_digit(data, limits, steps).tensor


def prepare_digit(
    data: bytes | np.ndarray,
    limits: ImageLimits = ImageLimits(),
    steps: dict[str, np.ndarray] | None = None,
) -> PreparedDigit:
    """`preprocess`'s tensor, with how many digits the picture may hold."""
    picture = decode_image(data, max_pixels=limits.max_pixels) if isinstance(data, bytes) else data
    return _prepared(picture, steps)


def decode_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decodes an upload into a Pillow image, refusing anything but the allowed formats, a
    structure that would cost more than its pixels, and anything over `max_pixels`, before its
    pixels are decoded."""
    return decode_scaled(data, max_pixels=max_pixels)[0]


def decode_scaled(
    data: bytes, *, max_pixels: int, longest: int = WORKING_SIZE
) -> tuple[Image.Image, float]:
    """`decode_image`'s image, and how many of the file's pixels each of its pixels spans (more
    than 1 for a JPEG decoded at a reduced scale, for a working size of `longest`)."""
    if not data:
        raise UnreadableImage("the upload is empty: send a PNG, JPEG, GIF, BMP, WebP or TIFF")
    inspect_structure(data)
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
                # Let libjpeg decode greyscale at a reduced scale (down to 1/8): far faster
                # for phone photos. The size asked for keeps the aspect ratio, or libjpeg
                # would stop at a larger scale than the working size needs.
                scale = min(1.0, longest * JPEG_DRAFT_SIDE / WORKING_SIZE / max(width, height))
                image.draft("L", (max(1, int(width * scale)), max(1, int(height * scale))))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
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
    return image, max(width, height) / max(image.width, image.height)


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


def declared_pixels(data: bytes) -> int:
    """Width x height as the image's header declares it, without decoding pixels; 0 when the
    header cannot be read or Pillow refuses it outright as a bomb (the decoder then reports
    what is wrong with the file, at no decoding cost). Raises ImageTooComplex first for a file
    whose structure would cost far more than its pixels: reading a PNG's header inflates every
    compressed metadata chunk before the image data."""
    inspect_structure(data)
    try:
        with warnings.catch_warnings():
            # The configured limits decide, with their own messages; Pillow's bomb warning
            # (about 89 M pixels) would otherwise stop the header read first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
                width, height = image.size
    except Exception:  # any unreadable header is the decoder's to report
        return 0
    return int(width) * int(height)


def media_type(data: bytes) -> str:
    """The media type of an image that decodes (`image/png`...), from its header."""
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
        return Image.MIME.get(image.format or "", "application/octet-stream")


def _prepared(
    image: Image.Image | np.ndarray, steps: dict[str, np.ndarray] | None = None
) -> PreparedDigit:
    """The MNIST-style 28x28 array for a decoded picture or a pixel array, with how many digits
    it may hold (see `preprocess`). Raises NoDigitFound when nothing stands out from the
    background, and SeveralDigits when the picture holds a row of digits (a number, read by
    /number)."""
    ink = separate(working_picture(image, steps), steps)
    digits = count_digits(ink.mask)
    if digits.clear > 1:
        raise SeveralDigits(
            f"the picture holds {digits.clear} digits (or characters) side by side, and this "
            "reads one digit: send a number to POST /number to read it, or crop the picture to "
            "one digit"
        )
    return PreparedDigit(fit_and_centre(digit_of(ink, steps)), max(1, digits.possible))


@dataclass(frozen=True)
class Placement:
    """Where a working picture lies in the uploaded one: a working pixel (x, y) is the
    upload's (left + x * scale, top + y * scale)."""

    left: float = 0.0
    top: float = 0.0
    scale: float = 1.0

    def then(self, inner: Placement) -> Placement:
        """The placement of a picture placed by `inner` inside this one."""
        return Placement(
            self.left + inner.left * self.scale,
            self.top + inner.top * self.scale,
            self.scale * inner.scale,
        )

    def box(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A working box (x, y, width, height) in the upload's pixels."""
        x, y, width, height = box
        left, top = self.left + x * self.scale, self.top + y * self.scale
        right, bottom = left + width * self.scale, top + height * self.scale
        return (round(left), round(top), round(right) - round(left), round(bottom) - round(top))


@dataclass(frozen=True)
class WorkingPicture:
    """The picture ink is separated from, at the working size, and where it lies in the
    upload."""

    pixels: np.ndarray
    drawn: bool
    """A transparent canvas's own ink (bright on black), rather than a greyscale picture."""
    placement: Placement = Placement()


def working_picture(
    image: Image.Image | np.ndarray,
    steps: dict[str, np.ndarray] | None = None,
    size: WorkingSize = DIGIT_SIZE,
) -> WorkingPicture:
    """The working-size picture of a decoded picture or a pixel array."""
    if isinstance(image, Image.Image):
        drawn = _canvas_ink(image, size)
        working = WorkingPicture(drawn[0], True, drawn[1]) if drawn else _greyscale(image, size)
    else:
        working = _pixels_from_array(image, size)
    if steps is not None:
        steps["grey"] = working.pixels
    return working


def separate(working: WorkingPicture, steps: dict[str, np.ndarray] | None = None) -> Ink:
    """The ink of a working picture apart from its background (`service.vision.ink`)."""
    if working.drawn:
        return separate_drawn_ink(working.pixels, steps)
    return separate_ink(working.pixels, steps)


def _canvas_ink(image: Image.Image, size: WorkingSize) -> tuple[np.ndarray, Placement] | None:
    """The ink of a drawing on a transparent canvas: its alpha (whatever the pen's colour),
    cropped to what was drawn with a margin and reduced to the size the digit needs; None for
    any other picture. A canvas is mostly fully transparent; a picture whose transparency is
    only its outline (a cut-out photo of a note) is not, and is flattened instead."""
    if image.mode not in ("RGBA", "LA"):
        return None
    # Only the drawn box's alpha is ever copied out: every pixel outside the box of nonzero
    # alpha is fully transparent, so the box alone can settle "mostly transparent".
    box = image.getbbox()  # of the alpha channel
    if box is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8), Placement()
    drawn = image.crop(box).getchannel("A")
    total, drawn_area = image.width * image.height, drawn.width * drawn.height
    if drawn_area * 2 > total and (total - drawn_area + drawn.histogram()[0]) * 2 < total:
        return None
    factor = _drawing_factor(drawn.size, size)
    if factor > 1:
        drawn = drawn.reduce(factor)
    margin = max(2, max(drawn.size) // 4)
    ink = np.zeros((drawn.height + 2 * margin, drawn.width + 2 * margin), dtype=np.uint8)
    ink[margin:-margin, margin:-margin] = np.asarray(drawn)
    return ink, Placement(box[0] - margin * factor, box[1] - margin * factor, factor)


def _drawing_factor(drawn: tuple[int, int], size: WorkingSize) -> int:
    """The integer factor a drawing of `drawn` (width, height) pixels is reduced by."""
    side = max(drawn) if size.drawing_side == "longer" else min(drawn)
    factor = max(-(-side // size.drawing), -(-max(drawn) // size.longest))
    return int(factor)


def _pixels_from_array(pixels: np.ndarray, size: WorkingSize) -> WorkingPicture:
    reduced, scale = _reduce(grey_levels(pixel_array(pixels)), size.longest)
    return WorkingPicture(reduced, False, Placement(scale=scale))


def _greyscale(image: Image.Image, size: WorkingSize) -> WorkingPicture:
    """Greyscale uint8, reduced to the working size, transparency flattened onto a background
    that contrasts with the ink."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float32)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        if image.mode == "F":
            peak = max(1.0, float(array.max()))
        return _reduced((np.clip(array / peak, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), size)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    if not has_alpha:
        return _reduced(np.asarray(image.convert("L")), size)
    return _drawing(image if image.mode in ("LA", "RGBA") else image.convert("RGBA"), size)


def _drawing(image: Image.Image, size: WorkingSize) -> WorkingPicture:
    """A picture with transparency (a web canvas) flattened, cropped to what was drawn with a
    transparent margin around it, and reduced to the size the digit needs: the fast path for
    the most common upload."""
    lowest_alpha, _ = image.getchannel("A").getextrema()
    if lowest_alpha == 255:  # opaque after all: a photo saved with an alpha channel
        return _reduced(np.asarray(image.convert("L")), size)
    box = image.getbbox()  # of the alpha channel: what was drawn
    if box is None:
        return WorkingPicture(np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8), False)
    drawn = image.crop(box).convert("LA")
    factor = _drawing_factor(drawn.size, size)
    if factor > 1:
        drawn = drawn.reduce(factor)
    pixels = np.asarray(drawn)
    margin = max(2, max(drawn.size) // 4)
    pixels = np.pad(pixels, ((margin, margin), (margin, margin), (0, 0)))
    placement = Placement(box[0] - margin * factor, box[1] - margin * factor, factor)
    return WorkingPicture(_flatten_transparency(pixels[..., 0], pixels[..., 1]), False, placement)


def _flatten_transparency(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composites onto white when the opaque strokes are dark (a web canvas: black pen on
    nothing) and onto black when they are light, so the strokes always stand out."""
    opaque = alpha > 127
    if not opaque.any():
        return np.zeros_like(grey)
    if opaque.all():
        return grey
    weight = alpha.astype(np.uint16)
    if float(grey[opaque].mean()) >= 128:  # light strokes onto black
        return ((grey * weight + 127) // 255).astype(np.uint8)
    # Dark strokes onto white: 255 - (255 - grey) * alpha.
    flattened: np.ndarray = (255 - ((255 - grey) * weight + 127) // 255).astype(np.uint8)
    return flattened


def _reduced(pixels: np.ndarray, size: WorkingSize) -> WorkingPicture:
    reduced, scale = _reduce(pixels, size.longest)
    return WorkingPicture(reduced, False, Placement(scale=scale))


def _reduce(pixels: np.ndarray, longest: int) -> tuple[np.ndarray, float]:
    """Reduces a picture (uint8, one or two channels) so its longer side is at most `longest`,
    averaging areas so thin strokes stay as grey; and how many of the picture's pixels each
    reduced one spans."""
    height, width = pixels.shape[:2]
    scale = longest / max(height, width)
    if scale >= 1:
        return pixels, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    reduced: np.ndarray = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return reduced, max(height, width) / max(reduced.shape[:2])


def to_png(pixels: np.ndarray) -> bytes:
    """Encodes pixels (the 28x28 the model saw, or a JSON upload's pixels; 0..1 or 0..255) as a
    greyscale PNG, for people."""
    buffer = io.BytesIO()
    Image.fromarray(grey_levels(pixels), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
