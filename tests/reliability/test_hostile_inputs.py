"""A corpus of hostile and broken requests: each gets its documented 4xx, declared in the
schema for its route, with a message that says what was wrong; the service answers good
requests right after every one. Unusual but valid images are classified as their plain
versions are.

What tests/service/test_bad_input.py already sends (a PNG bomb in multipart, text as a PNG body,
zero-byte bodies, 10,000-deep JSON and a million pixels to /digit, NaN and strings in car
features, unknown car fields, text/plain to /digit, form data to /mpg, traversal in GET
/models) is not repeated here.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests import drawings
from tests.interop.conftest import LiveServer, serve
from tests.reliability import corpus
from tests.reliability.conftest import assert_healthy, declared_statuses
from tests.service.test_bad_input import GOOD_CAR, assert_error

JSON = {"content-type": "application/json"}
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
MILLION = "[" + ",".join(["0"] * 1_000_000) + "]"


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the error it must get."""

    method: str
    path: str
    template: str
    """The route as the OpenAPI schema names it."""
    status: int
    code: str
    fragment: str
    request: dict[str, Any] = field(default_factory=dict)


def upload(name: str, data: bytes, media: str = "image/png") -> dict[str, Any]:
    return {"files": {"file": (name, data, media)}}


def raw(data: bytes | str, media: str) -> dict[str, Any]:
    return {"content": data, "headers": {"content-type": media}}


CORPUS: dict[str, Hostile] = {
    # Images: bombs in every container the service reads, damaged and disguised files.
    "gif-bomb": Hostile(
        "POST",
        "/digit",
        "/digit",
        413,
        "image_too_large",
        "too large",
        raw(corpus.gif_bomb(), "image/gif"),
    ),
    "bmp-bomb-upload": Hostile(
        "POST",
        "/digit",
        "/digit",
        413,
        "image_too_large",
        "too large",
        upload("scan.bmp", corpus.bmp_bomb(), "image/bmp"),
    ),
    "png-bomb-in-json": Hostile(
        "POST",
        "/digit",
        "/digit",
        413,
        "image_too_large",
        "too large",
        {"json": {"image": base64.b64encode(corpus.png_bomb()).decode()}},
    ),
    "text-named-png": Hostile(
        "POST",
        "/digit",
        "/digit",
        415,
        "unreadable_image",
        "not an image in a supported format",
        upload("digit.png", corpus.TEXT),
    ),
    "zero-byte-upload": Hostile(
        "POST",
        "/digit",
        "/digit",
        415,
        "unreadable_image",
        "empty",
        upload("digit.png", b""),
    ),
    "svg": Hostile(
        "POST",
        "/digit",
        "/digit",
        415,
        "unreadable_image",
        "not an image in a supported format",
        raw(corpus.SVG, "image/svg+xml"),
    ),
    # Multipart abuse.
    "a-thousand-fields": Hostile(
        "POST",
        "/digit",
        "/digit",
        400,
        "bad_request",
        "too many fields",
        {"files": [("note", (None, "x")) for _ in range(1000)]},
    ),
    "a-thousand-files": Hostile(
        "POST",
        "/digit",
        "/digit",
        400,
        "bad_request",
        "too many files",
        {"files": [("file", (f"{i}.png", b"", "image/png")) for i in range(1000)]},
    ),
    "multipart-without-boundary": Hostile(
        "POST",
        "/digit",
        "/digit",
        400,
        "bad_request",
        "boundary",
        raw(b"--x\r\n\r\n", "multipart/form-data"),
    ),
    # JSON nested 10,000 deep, everywhere a JSON body is read.
    "deep-json-mpg": Hostile(
        "POST",
        "/mpg",
        "/mpg",
        400,
        "bad_request",
        "nested too deeply",
        raw(DEEP_ARRAY, JSON["content-type"]),
    ),
    "deep-json-jobs": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        400,
        "bad_request",
        "error parsing the body",
        raw(DEEP_OBJECT, JSON["content-type"]),
    ),
    "deep-json-pin": Hostile(
        "PUT",
        "/models/mpg/served-version",
        "/models/{name}/served-version",
        400,
        "bad_request",
        "error parsing the body",
        raw(DEEP_OBJECT, JSON["content-type"]),
    ),
    "deep-json-tfserving": Hostile(
        "POST",
        "/v1/models/mpg:predict",
        "/v1/models/{name}:predict",
        400,
        "bad_request",
        "nested too deeply",
        raw(DEEP_ARRAY, JSON["content-type"]),
    ),
    "deep-json-inference-v2": Hostile(
        "POST",
        "/v2/models/mpg/infer",
        "/v2/models/{name}/infer",
        400,
        "bad_request",
        "nested too deeply",
        raw(DEEP_OBJECT, JSON["content-type"]),
    ),
    # A million numbers.
    "million-cars": Hostile(
        "POST",
        "/mpg",
        "/mpg",
        422,
        "invalid_input",
        "at most 7,256 (1,000 cars",
        raw(MILLION, JSON["content-type"]),
    ),
    "million-instances": Hostile(
        "POST",
        "/v1/models/digit:predict",
        "/v1/models/{name}:predict",
        400,
        "bad_request",
        "at most 200,960 (256 rows of 784 values",
        raw('{"instances": ' + MILLION + "}", JSON["content-type"]),
    ),
    "million-tensor-values": Hostile(
        "POST",
        "/v2/models/digit/infer",
        "/v2/models/{name}/infer",
        400,
        "bad_request",
        "at most 200,960 (256 rows of 784 values",
        raw(
            '{"inputs": [{"name": "image", "shape": [1000000], "datatype": "FP32", "data": '
            + MILLION
            + "}]}",
            JSON["content-type"],
        ),
    ),
    "million-hidden-units": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        422,
        "invalid_input",
        "hidden_units",
        raw(
            '{"model": "mpg", "hyperparameters": {"hidden_units": ' + MILLION + "}}",
            JSON["content-type"],
        ),
    ),
    # Numbers that are not numbers.
    "nan-learning-rate": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        422,
        "invalid_input",
        "learning_rate",
        raw(b'{"model": "mpg", "hyperparameters": {"learning_rate": NaN}}', JSON["content-type"]),
    ),
    "infinite-dropout": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        422,
        "invalid_input",
        "dropout",
        raw(b'{"model": "digit", "hyperparameters": {"dropout": Infinity}}', JSON["content-type"]),
    ),
    "nan-version": Hostile(
        "PUT",
        "/models/mpg/served-version",
        "/models/{name}/served-version",
        422,
        "invalid_input",
        "valid integer",
        raw(b'{"version": NaN}', JSON["content-type"]),
    ),
    "string-epochs": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        422,
        "invalid_input",
        "epochs",
        {"json": {"model": "mpg", "hyperparameters": {"epochs": "five"}}},
    ),
    # Unicode where names belong.
    "fullwidth-model-name": Hostile(
        "GET",
        "/models/\uff44igit",
        "/models/{name}",
        404,
        "not_found",
        "unknown model",
    ),
    "accented-model-tfserving": Hostile(
        "POST",
        "/v1/models/dígit:predict",
        "/v1/models/{name}:predict",
        404,
        "not_found",
        "unknown model",
        {"json": {"instances": [[[0.0] * 28] * 28]}},
    ),
    "accented-model-inference-v2": Hostile(
        "GET",
        "/v2/models/dígit/ready",
        "/v2/models/{name}/ready",
        404,
        "not_found",
        "unknown model",
    ),
    "fullwidth-job-model": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        422,
        "invalid_input",
        "model",
        {"json": {"model": "\uff4d\uff50\uff47", "hyperparameters": {}}},
    ),
    "unicode-job-id": Hostile("GET", "/jobs/ジョブ", "/jobs/{job_id}", 404, "not_found", "no job"),
    "origin-with-space": Hostile(
        "POST",
        "/mpg",
        "/mpg",
        422,
        "invalid_input",
        "unknown origin",
        {"json": {**GOOD_CAR, "origin": " japan"}},
    ),
    # Wrong content types on admin endpoints: JSON only (a form or text/plain is what another
    # site's page can send without a CORS preflight).
    "jobs-as-text": Hostile(
        "POST",
        "/jobs",
        "/jobs",
        415,
        "unsupported_media_type",
        "application/json",
        raw(json.dumps({"model": "mpg"}), "text/plain"),
    ),
    "pin-as-form": Hostile(
        "PUT",
        "/models/mpg/served-version",
        "/models/{name}/served-version",
        415,
        "unsupported_media_type",
        "application/json",
        {"data": {"version": "1"}},
    ),
    "digit-as-xml": Hostile(
        "POST",
        "/digit",
        "/digit",
        415,
        "unsupported_media_type",
        "multipart/form-data",
        raw(b"<image/>", "application/xml"),
    ),
}


def images(mnist) -> dict[str, Hostile]:
    """Damaged images of a real digit."""
    seven = mnist.x_test[0]
    return {
        "truncated-png": Hostile(
            "POST",
            "/digit",
            "/digit",
            415,
            "unreadable_image",
            "truncated or corrupt",
            upload("seven.png", corpus.truncated(seven, "PNG")),
        ),
        "truncated-jpeg": Hostile(
            "POST",
            "/digit",
            "/digit",
            415,
            "unreadable_image",
            "truncated or corrupt",
            upload("seven.jpg", corpus.truncated(seven, "JPEG"), "image/jpeg"),
        ),
        "ppm-as-png": Hostile(
            "POST",
            "/digit",
            "/digit",
            415,
            "unreadable_image",
            "supported format",
            raw(corpus.ppm(seven), "image/png"),
        ),
    }


def check(client, name: str, hostile: Hostile) -> None:
    response = client.request(hostile.method, hostile.path, **hostile.request)
    assert_error(response, hostile.status, hostile.code, hostile.fragment)
    assert hostile.status in declared_statuses(client, hostile.method, hostile.template), (
        f"{name}: {hostile.status} is not declared for {hostile.method} {hostile.template}"
    )
    assert "Traceback" not in response.text
    assert_healthy(client)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_request(shared_client, name: str) -> None:
    check(shared_client, name, CORPUS[name])


@pytest.mark.parametrize("name", ["truncated-png", "truncated-jpeg", "ppm-as-png"])
def test_damaged_image(shared_client, mnist, name: str) -> None:
    check(shared_client, name, images(mnist)[name])


TRAVERSALS = [
    ("GET", "/models/..%2f..%2fetc%2fpasswd"),
    ("GET", "/v1/models/%2e%2e"),
    ("GET", "/v1/models/..%2f..%2fetc"),
    ("GET", "/v1/models/digit/versions/..%2f1"),
    ("GET", "/v1/models/%2e%2e/metadata"),
    ("POST", "/v1/models/..%2fdigit:predict"),
    ("POST", "/v1/models/digit/versions/%2e%2e:predict"),
    ("GET", "/v2/models/%2e%2e"),
    ("GET", "/v2/models/%2e%2e%2f%2e%2e/ready"),
    ("GET", "/v2/models/digit/versions/%2e%2e/ready"),
    ("GET", "/v2/models/digit/versions/..%2f..%2f1"),
    ("POST", "/v2/models/%2e%2e/infer"),
    ("POST", "/v2/models/digit/versions/..%2f/infer"),
    ("PUT", "/models/%2e%2e/served-version"),
    ("PUT", "/models/..%2f..%2fpinned/served-version"),
    ("DELETE", "/models/%2e%2e/served-version"),
    ("GET", "/jobs/..%2f..%2fjobs.sqlite3"),
    ("GET", "/static/..%2fapp.py"),
    ("GET", "/static/%2e%2e/app.py"),
    ("GET", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml"),
]


@pytest.mark.parametrize(("method", "path"), TRAVERSALS)
def test_path_traversal_reaches_no_file(shared_client, method: str, path: str) -> None:
    """`../` and `%2e%2e` in model names, versions, job ids and static paths name nothing: 404,
    and no pin or other file appears anywhere outside the models' own folders."""
    models_dir: Path = shared_client.app.state.settings.models_dir
    before = {p for p in models_dir.parent.rglob("*") if "var" not in p.parts}
    body = {"json": {"version": 1}} if method == "PUT" else {}
    if method == "POST":
        body = {"json": {"instances": [[[0.0] * 28] * 28]}}
    response = shared_client.request(method, path, **body)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    assert "root:" not in response.text and "[project]" not in response.text
    after = {p for p in models_dir.parent.rglob("*") if "var" not in p.parts}
    assert after == before
    assert_healthy(shared_client)


def tensor_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    encoded = response.json()["preprocessed_image"].removeprefix("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))), dtype=np.float32) / 255


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("kind", ["animated-gif", "16-bit-png", "cmyk-jpeg", "exif-rotated-jpeg"])
def test_unusual_images_are_read_like_their_plain_versions(shared_client, mnist, kind) -> None:
    """Each is classified as its plain version is, and looks like it to the model (a loose
    bound: stroke-width normalisation magnifies small decoding differences). Where ignoring the
    feature would give another picture (the second frame, the sideways photo), the result is
    far closer to the right one."""
    seven, two = mnist.x_test[0], mnist.x_test[1]
    upright = corpus.page(seven)
    sideways = drawings.encode(upright.convert("RGB").transpose(Image.Transpose.ROTATE_90), "JPEG")
    unusual, plain, wrong, media = {
        "animated-gif": (
            corpus.animated_gif(seven, two),
            drawings.encode(upright, "GIF"),
            drawings.encode(corpus.page(two), "GIF"),
            "image/gif",
        ),
        "16-bit-png": (
            corpus.sixteen_bit_png(seven),
            drawings.encode(upright, "PNG"),
            None,
            "image/png",
        ),
        "cmyk-jpeg": (
            corpus.cmyk_jpeg(seven),
            drawings.encode(upright.convert("RGB"), "JPEG"),
            None,
            "image/jpeg",
        ),
        "exif-rotated-jpeg": (
            corpus.exif_rotated_jpeg(seven),
            drawings.encode(upright.convert("RGB"), "JPEG"),
            sideways,
            "image/jpeg",
        ),
    }[kind]

    def classify(data: bytes) -> Any:
        response = shared_client.post(
            "/digit?include_preprocessed=true", files={"file": (kind, data, media)}
        )
        assert response.status_code == 200, response.text
        return response

    got, expected = classify(unusual), classify(plain)
    similarity = correlation(tensor_of(got), tensor_of(expected))
    assert similarity > 0.75
    assert got.json()["digit"] == expected.json()["digit"]
    if wrong is not None:
        assert correlation(tensor_of(got), tensor_of(classify(wrong))) < similarity - 0.3


# -- a live server: what uvicorn does with bodies that are too large --------------------------

HUNDRED_MB = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def live(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("live-limits")
    shutil.copytree(tiny_models, root / "models")
    with serve(root / "models", root / "var") as server:
        yield server


def exchange(
    server: LiveServer, head: bytes, timeout: float = 10.0
) -> tuple[bytes, dict[str, Any]]:
    """Sends a request head (and no body) over a raw socket; reads until the server closes the
    connection. Returns the response head and its JSON body."""
    host, port = server.host_port.split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        while chunk := sock.recv(65536):
            received += chunk
    response_head, _, body = received.partition(b"\r\n\r\n")
    return response_head.lower(), json.loads(body)


def test_a_100_mb_upload_is_refused_before_a_byte_of_it_is_sent(live: LiveServer) -> None:
    """The declared length alone gets the 413: the server never waits for, or buffers, the
    body (the client here sends none at all)."""
    head = (
        b"POST /digit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % HUNDRED_MB
    )
    response_head, body = exchange(live, head)  # returns only once the server hangs up
    assert response_head.startswith(b"http/1.1 413")
    assert b"connection: close" in response_head
    assert body["code"] == "payload_too_large" and "larger than" in body["error"]
    assert httpx.post(f"{live.url}/mpg", json=GOOD_CAR).status_code == 200


def test_a_100_mb_streamed_upload_is_cut_off_at_the_limit(live: LiveServer) -> None:
    """Without a declared length the server reads up to its limit (10 MB) and stops: the
    client cannot push the other 90 MB into it."""
    sent = 0

    def chunks():
        nonlocal sent
        block = b"\0" * (1024 * 1024)
        while sent < HUNDRED_MB:
            sent += len(block)
            yield block

    try:
        response = httpx.post(
            f"{live.url}/digit", content=chunks(), headers={"content-type": "image/png"}, timeout=30
        )
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        response = None  # the server closed the connection on a client still sending
    if response is not None:
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    # The limit (10 MB), plus what the sockets' buffers held when the server hung up.
    assert sent <= 3 * 10 * 1024 * 1024, f"the server took {sent:,} bytes"
    assert httpx.get(f"{live.url}/readyz").status_code == 200
