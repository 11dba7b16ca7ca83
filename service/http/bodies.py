"""Reading request bodies the prediction endpoints share: JSON with clear errors (the tensor
protocols' JSON whatever its content type), cars for /mpg, and digit images in the three shapes
/digit accepts (multipart files, a raw image body, JSON).

CPython's JSON parser holds the interpreter for the whole parse (in a thread it stalls the loop
all the same: 2.3 s for a 9.8 MB array, measured), as do the per-value checks after it; large
bodies are parsed in a worker process (`service.http.json_workers`), and what a body may cost is
bounded before that. Each reader names the most values its endpoint can use
(`max_values`, from the endpoint's own row limits), and a body with more is refused from a
count of its commas, at memory speed, before any of it is parsed: what parsing and checking
cost is then bounded by what an honest request of the largest allowed size costs. The refusal
is the one the endpoint gives a batch over its row limit after parsing (422 invalid_input for
/digit and /mpg, 400 bad_request for the tensor protocols, as TensorFlow Serving and KServe
answer a malformed tensor), so a client sees one status for one fault whichever check finds it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Request
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from service import vision
from service.admission import DigitSource
from service.errors import (
    BadRequest,
    InvalidInput,
    ServiceError,
    UnsupportedMediaType,
    invalid_input,
)
from service.http.json_workers import JsonWorkers
from service.schemas.digit import DigitJsonImage
from service.schemas.mpg import Car
from service.schemas.tensors import JSON_OVERHEAD_VALUES
from training.cars import FEATURE_NAMES
from training.signatures import IMAGE_SIZE

IMAGE_MEDIA_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "image/tiff",
)
UPLOAD_FIELD = "file"
BINARY_DATA_HEADER = "inference-header-content-length"
"""Set by Open Inference Protocol clients that append binary tensors after the JSON."""


def digit_json_values(max_images: int) -> int:
    """Most values a /digit or feedback JSON body may hold: as many numbers as `max_images`
    MNIST images (200,704 with the defaults: one 280x280 canvas as pixels fits)."""
    return max_images * IMAGE_SIZE * IMAGE_SIZE + JSON_OVERHEAD_VALUES


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def json_body(
    request: Request,
    *,
    max_values: int,
    limit_reason: str,
    too_many: type[ServiceError],
    any_content_type: bool = False,
) -> bytes:
    """The body of a JSON request, unparsed (parse it with `JsonWorkers.parse`); 415 when it is
    not declared JSON (unless `any_content_type`), 400 when it is empty, `too_many` (the
    endpoint's status for too many rows) when it holds more than `max_values` values
    (`limit_reason` says why the endpoint takes no more)."""
    kind = media_type(request)
    if not any_content_type and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json (got {kind or 'no content type'})"
        )
    body = await request.body()
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    # Every value after the first in an array or object follows a comma, so this bounds the
    # values from above (commas inside strings only make it stricter).
    values = body.count(b",") + 1
    if values > max_values:
        raise too_many(
            f"the JSON body holds up to {values:,} values ({values - 1:,} commas); this "
            f"endpoint takes at most {max_values:,} ({limit_reason}): send fewer rows, or "
            "split the batch over several requests"
        )
    return body


async def protocol_json_body(request: Request, *, max_values: int, limit_reason: str) -> bytes:
    """The body of a tensor-protocol request, whatever its content type: TensorFlow Serving
    and Triton ignore it, and their clients send none (tritonclient) or a form type (`curl
    -d`). 400 when it carries binary tensor data; otherwise as `json_body`."""
    if BINARY_DATA_HEADER in request.headers:
        raise BadRequest(
            "binary tensor data is not supported: send tensors as JSON "
            "(tritonclient: set_data_from_numpy(..., binary_data=False))"
        )
    return await json_body(
        request,
        max_values=max_values,
        limit_reason=limit_reason,
        too_many=BadRequest,
        any_content_type=True,
    )


_ONE_CAR: TypeAdapter[Any] = TypeAdapter(Car)
_CARS: TypeAdapter[Any] = TypeAdapter(list[Car])


def mpg_json_values(max_cars: int) -> int:
    """Most values a /mpg JSON body may hold: `max_cars` cars of every feature."""
    return max_cars * len(FEATURE_NAMES) + JSON_OVERHEAD_VALUES


def parse_cars(document: Any, max_cars: int) -> tuple[list[BaseModel], bool]:
    """Validates one car (an object) or a batch (a list); returns the cars and whether the
    request was a batch."""
    try:
        if isinstance(document, list):
            if not document:
                raise InvalidInput("the list of cars is empty")
            if len(document) > max_cars:
                raise InvalidInput(f"{len(document)} cars in one request; the limit is {max_cars}")
            return list(_CARS.validate_python(document)), True
        if not isinstance(document, dict):
            raise InvalidInput("send a car as a JSON object, or a list of cars")
        return [_ONE_CAR.validate_python(document)], False
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_url=False)) from None


_JSON_IMAGES = TypeAdapter(list[DigitJsonImage])
_JSON_IMAGE = TypeAdapter(DigitJsonImage)


async def read_digit_sources(
    request: Request, *, max_images: int, workers: JsonWorkers
) -> tuple[list[DigitSource], bool]:
    """The images of a /digit request, in order, and whether the client asked for a batch
    (several files, or a JSON list). Raises 4xx errors that name the problem."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        sources = await _from_multipart(request, max_images)
        return sources, len(sources) > 1
    if kind.startswith("image/") or kind == "application/octet-stream":
        return [DigitSource("body", await request.body())], False
    if kind == "application/json":
        body = await json_body(
            request,
            max_values=digit_json_values(max_images),
            limit_reason=f"the numbers of {max_images} MNIST images, PERCEPTRON_MAX_BATCH_IMAGES",
            too_many=InvalidInput,
        )
        return await workers.parse(body, digit_json_sources, max_images)
    raise UnsupportedMediaType(
        "send the image as multipart/form-data (field 'file', repeat it for a batch), as an "
        f"image/* body, or as application/json; got {kind or 'no content type'}"
    )


async def _from_multipart(request: Request, max_images: int) -> list[DigitSource]:
    await _check_closing_boundary(request)
    try:
        form = await request.form(max_files=max_images, max_fields=8)
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc.message}") from None
    try:
        unexpected = sorted({key for key in form if key != UPLOAD_FIELD})
        if unexpected:
            raise InvalidInput(
                f"unexpected form field(s) {', '.join(unexpected)}: upload images in the "
                f"'{UPLOAD_FIELD}' field"
            )
        uploads = form.getlist(UPLOAD_FIELD)
        if not uploads:
            raise InvalidInput(f"no image: upload it in the '{UPLOAD_FIELD}' form field")
        sources = []
        for index, upload in enumerate(uploads):
            if not isinstance(upload, UploadFile):
                raise InvalidInput(f"'{UPLOAD_FIELD}' must be a file, not a text field")
            name = upload.filename or f"file {index + 1}"
            sources.append(DigitSource(name, await upload.read()))
        return sources
    finally:
        await form.close()


async def _check_closing_boundary(request: Request) -> None:
    """400 for a multipart body cut short: Starlette's parser drops an unfinished part
    silently, which would read as "no image". The body is held in memory anyway (at most
    max_body_bytes), and request.form() parses the same cached bytes."""
    content_type = request.headers.get("content-type", "")
    boundary = ""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise BadRequest("malformed multipart body: the content type names no boundary")
    body = await request.body()
    if f"--{boundary}--".encode("latin-1") not in body:
        raise BadRequest(
            "malformed multipart body: it ends without its closing boundary (truncated?)"
        )


def digit_json_sources(document: Any, max_images: int) -> tuple[list[DigitSource], bool]:
    """The images of a /digit JSON document, and whether it was a batch (a list)."""
    return _from_json(document, max_images), isinstance(document, list)


def feedback_json(document: Any) -> tuple[DigitSource, dict[str, Any]]:
    """The image of a JSON feedback document and its other fields, unvalidated."""
    if not isinstance(document, dict):
        raise InvalidInput("send one JSON object: the image ('image' or 'pixels') and 'label'")
    image = {key: document[key] for key in ("image", "pixels") if key in document}
    fields = {key: value for key, value in document.items() if key not in image}
    return _from_json(image, 1)[0], fields


def _from_json(document: Any, max_images: int) -> list[DigitSource]:
    try:
        if isinstance(document, list):
            if not document:
                raise InvalidInput("the list of images is empty")
            if len(document) > max_images:
                raise InvalidInput(
                    f"{len(document)} images in one request; the limit is {max_images}"
                )
            images = _JSON_IMAGES.validate_python(document)
        else:
            images = [_JSON_IMAGE.validate_python(document)]
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_url=False)) from None
    return [_json_source(index, image) for index, image in enumerate(images)]


def _json_source(index: int, image: DigitJsonImage) -> DigitSource:
    label = f"image {index + 1}"
    if image.pixels is not None:
        try:
            return DigitSource(label, vision.pixel_array(image.pixels))
        except vision.ImageError as exc:
            raise exc.naming(label) from None
    text = (image.image or "").strip()
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise InvalidInput(f"{label}: a data: URL must be base64-encoded")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{label}: 'image' is not valid base64") from None
    return DigitSource(label, data)


async def read_feedback(
    request: Request, *, max_images: int, workers: JsonWorkers
) -> tuple[DigitSource, dict[str, Any], bool]:
    """The image of a /digit/feedback request and its other fields, unvalidated, and whether
    they came as JSON (typed, so validated strictly) rather than form text. A JSON body may
    hold as many values as a /digit request of `max_images` images."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        await _check_closing_boundary(request)
        try:
            form = await request.form(max_files=1, max_fields=8)
        except MultiPartException as exc:
            raise BadRequest(f"malformed multipart body: {exc.message}") from None
        try:
            uploads = form.getlist(UPLOAD_FIELD)
            if len(uploads) != 1 or not isinstance(uploads[0], UploadFile):
                raise InvalidInput(
                    f"send exactly one image, as a file in the '{UPLOAD_FIELD}' field"
                )
            upload = uploads[0]
            fields = {key: value for key, value in form.multi_items() if key != UPLOAD_FIELD}
            source = DigitSource(upload.filename or "file", await upload.read())
            return source, fields, False
        finally:
            await form.close()
    if kind == "application/json":
        body = await json_body(
            request,
            max_values=digit_json_values(max_images),
            limit_reason="as many numbers as a /digit request, PERCEPTRON_MAX_BATCH_IMAGES",
            too_many=InvalidInput,
        )
        source, fields = await workers.parse(body, feedback_json)
        return source, fields, True
    raise UnsupportedMediaType(
        f"send the image as multipart/form-data (field '{UPLOAD_FIELD}', plus 'label') or as "
        f"application/json; got {kind or 'no content type'}"
    )
