"""From a picture to the tensor the digit model reads: decoding, greyscale, ink separated from
paper, MNIST's layout; and a written number cut into its digits. Everything outside this
package imports from here, never from its modules: `preprocess` is the one way from a picture
to a tensor (`prepare_digit` adds how many digits the picture may hold), `preprocess_number`
from a picture of a number to one tensor per digit.

The package knows nothing of HTTP or of the service's settings: its callers pass the limits
(`ImageLimits`), and its errors carry the status and code the API answers with.
"""

from service.vision.errors import (
    ImageError,
    ImageTooComplex,
    ImageTooLarge,
    InvalidPixels,
    NoDigitFound,
    SeveralDigits,
    TooManyDigits,
    UnreadableImage,
)
from service.vision.mnist_layout import CENTRE
from service.vision.number import NumberDigit, NumberStretch, preprocess_number
from service.vision.pipeline import (
    ALLOWED_FORMATS,
    MAX_IMAGE_PIXELS,
    ImageLimits,
    PreparedDigit,
    declared_pixels,
    media_type,
    prepare_digit,
    preprocess,
    to_png,
)
from service.vision.pixels import pixel_array
from service.vision.structure import INLINE_PARTS, Structure, inspect_structure

__all__ = [
    "ALLOWED_FORMATS",
    "CENTRE",
    "INLINE_PARTS",
    "MAX_IMAGE_PIXELS",
    "ImageError",
    "ImageLimits",
    "ImageTooComplex",
    "ImageTooLarge",
    "InvalidPixels",
    "NoDigitFound",
    "NumberDigit",
    "NumberStretch",
    "PreparedDigit",
    "SeveralDigits",
    "Structure",
    "TooManyDigits",
    "UnreadableImage",
    "declared_pixels",
    "inspect_structure",
    "media_type",
    "pixel_array",
    "prepare_digit",
    "preprocess",
    "preprocess_number",
    "to_png",
]
