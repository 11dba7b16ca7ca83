"""The ways an upload can fail to become a digit. Each carries the HTTP status and code the API
answers with, so the service's one error handler renders them as they are."""

from __future__ import annotations

from typing import Self

from service.errors import ServiceError


class ImageError(ServiceError):
    """The upload cannot be used."""

    status, code = 415, "unreadable_image"

    def naming(self, label: str) -> Self:
        """The same error, its message prefixed by the name of the image it concerns (for a
        request of several images)."""
        return type(self)(f"{label}: {self.message}")


class UnreadableImage(ImageError):
    """Not a picture in an allowed format, damaged, or empty."""

    status, code = 415, "unreadable_image"


class InvalidPixels(UnreadableImage):
    """A picture given as numbers that is not one: not a rectangle, or values outside 0..255 or
    not finite. It comes as JSON values, so it is invalid input (422) rather than an
    unreadable file."""

    status, code = 422, "invalid_input"


class ImageTooLarge(ImageError):
    status, code = 413, "image_too_large"


class ImageTooComplex(ImageError):
    """Its structure (metadata chunks, scans, segments...) would cost far more to decode than
    its pixels (`service.vision.structure`)."""

    status, code = 413, "image_too_complex"


class NoDigitFound(ImageError):
    """Nothing stands out from the background."""

    status, code = 422, "no_digit_found"
