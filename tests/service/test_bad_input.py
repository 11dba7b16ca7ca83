"""Bad input gets its documented 4xx and a message a person can act on; never a 500."""

from __future__ import annotations

import base64

import pytest
from PIL import Image

from tests import drawings
from training.cars import EXAMPLE_CAR

GOOD_CAR = {**EXAMPLE_CAR, "origin": "japan"}


def assert_error(response, status: int, code: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert fragment.lower() in body["error"].lower(), body
    assert body["request_id"] == response.headers["x-request-id"]


def blank_png() -> bytes:
    return drawings.encode(Image.new("L", (280, 280), 255))


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "fragment"),
    [
        (
            {"files": {"file": ("blank.png", blank_png(), "image/png")}},
            422,
            "no_digit_found",
            "no digit found",
        ),
        (
            {"content": b"hello, not an image", "headers": {"content-type": "image/png"}},
            415,
            "unreadable_image",
            "not an image",
        ),
        (
            {"content": b"", "headers": {"content-type": "image/png"}},
            415,
            "unreadable_image",
            "empty",
        ),
        (
            {"content": b"x", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
            "multipart/form-data",
        ),
        (
            {"files": {"upload": ("a.png", blank_png(), "image/png")}},
            422,
            "invalid_input",
            "unexpected form field",
        ),
        ({"files": {"file": (None, "just text")}}, 422, "invalid_input", "must be a file"),
        ({"json": {"image": "%%% not base64 %%%"}}, 422, "invalid_input", "base64"),
        ({"json": {}}, 422, "invalid_input", "exactly one"),
        ({"json": {"image": "aGk=", "pixels": [[0]]}}, 422, "invalid_input", "exactly one"),
        ({"json": {"pixels": [[0, 1], [0]]}}, 422, "invalid_input", "rectangle"),
        ({"json": {"pixels": [["a", "b"]]}}, 422, "invalid_input", "pixels"),
        ({"json": {"pixels": [[0.5] * 28] * 28, "extra": 1}}, 422, "invalid_input", "extra"),
        ({"json": []}, 422, "invalid_input", "empty"),
        (
            {"content": b'{"pixels": [[NaN]]}', "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            "NaN",
        ),
        (
            {"content": b'{"pixels": ', "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
            "not valid JSON",
        ),
        (
            {
                "content": b"[" * 10_000 + b"]" * 10_000,
                "headers": {"content-type": "application/json"},
            },
            400,
            "bad_request",
            "nested too deeply",
        ),
    ],
    ids=[
        "blank-image",
        "text-as-png",
        "zero-bytes",
        "wrong-content-type",
        "wrong-form-field",
        "text-form-field",
        "bad-base64",
        "empty-object",
        "both-fields",
        "ragged-pixels",
        "strings-as-pixels",
        "unknown-field",
        "empty-list",
        "nan-literal",
        "truncated-json",
        "deep-nesting",
    ],
)
def test_digit_bad_input(client, kwargs, status, code, fragment) -> None:
    assert_error(client.post("/digit", **kwargs), status, code, fragment)


def test_a_bad_image_in_a_batch_is_named(client, mnist) -> None:
    files = [
        ("file", ("good.png", drawings.mnist_png(mnist.x_test[0]), "image/png")),
        ("file", ("blank.png", blank_png(), "image/png")),
    ]
    assert_error(client.post("/digit", files=files), 422, "no_digit_found", "blank.png")


def test_too_many_images_in_a_batch(client_factory, settings_factory, models_dir, mnist) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, max_batch_images=2))
    png = drawings.mnist_png(mnist.x_test[0])
    response = small.post(
        "/digit", files=[("file", (f"{i}.png", png, "image/png")) for i in range(3)]
    )
    assert response.status_code == 400 and "files" in response.json()["error"].lower()
    listed = small.post("/digit", json=[{"image": base64.b64encode(png).decode()}] * 3)
    assert_error(listed, 422, "invalid_input", "limit is 2")


def test_a_decompression_bomb_is_refused(client) -> None:
    bomb = drawings.encode(Image.new("1", (20000, 20000), 0))
    assert len(bomb) < 200_000
    response = client.post("/digit", files={"file": ("bomb.png", bomb, "image/png")})
    assert_error(response, 413, "image_too_large", "too large")


def test_an_image_over_the_pixel_limit_is_refused(
    client_factory, settings_factory, models_dir
) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, max_image_pixels=10_000))
    picture = drawings.encode(Image.new("L", (200, 200), 255))
    response = small.post("/digit", content=picture, headers={"content-type": "image/png"})
    assert_error(response, 413, "image_too_large", "200x200")


def test_a_body_over_the_limit_is_refused_without_reading_it(
    client_factory, settings_factory, models_dir
) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, max_body_bytes=64 * 1024))
    response = small.post(
        "/digit", content=b"\0" * (65 * 1024), headers={"content-type": "image/png"}
    )
    assert_error(response, 413, "payload_too_large", "larger than")
    response = small.post(
        "/mpg", content=b" " * (65 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_streamed_body_is_cut_off_at_the_limit(
    client_factory, settings_factory, models_dir
) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, max_body_bytes=64 * 1024))
    sent = 0

    def chunks():  # no Content-Length: the server only learns the size by reading
        nonlocal sent
        for _ in range(64):
            sent += 16 * 1024
            yield b"\0" * (16 * 1024)

    response = small.post("/digit", content=chunks(), headers={"content-type": "image/png"})
    assert_error(response, 413, "payload_too_large", "larger than")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"cylinders": "4"}, "cylinders: input should be a valid integer"),
        ({"cylinders": 4.5}, "cylinders"),
        ({"horsepower": "lots"}, "horsepower"),
        ({"weight": -5}, "weight: input should be greater than or equal to 500"),
        ({"weight": 1e9}, "weight"),
        ({"origin": "mars"}, "unknown origin 'mars'"),
        ({"origin": 7}, "unknown origin"),
        ({"origin": True}, "origin"),
        ({"model_year": 1850}, "model_year"),
        ({"model_year": "76"}, "model_year"),
        ({"colour": "red"}, "colour: extra inputs are not permitted"),
        ({"model_yéar": 70}, "model_yéar"),
    ],
)
def test_mpg_bad_values(client, change, fragment) -> None:
    assert_error(client.post("/mpg", json={**GOOD_CAR, **change}), 422, "invalid_input", fragment)


def test_mpg_missing_field_is_named(client) -> None:
    car = dict(GOOD_CAR)
    del car["weight"]
    assert_error(client.post("/mpg", json=car), 422, "invalid_input", "weight: field required")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_mpg_non_finite_numbers(client, literal) -> None:
    body = (
        b'{"cylinders": 4, "displacement": 97, "horsepower": '
        + literal
        + b', "weight": 2130, "acceleration": 14.5, "model_year": 71, "origin": 3}'
    )
    response = client.post("/mpg", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "bad_request", literal.decode().lstrip("-"))


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ("not json", 400, "not valid JSON"),
        ("42", 422, "json object"),
        ('"a car"', 422, "json object"),
        ("[]", 422, "empty"),
        ("[" + ",".join(["1"] * 3) + "]", 422, "0: input should be"),
    ],
)
def test_mpg_wrong_documents(client, body, status, fragment) -> None:
    response = client.post("/mpg", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment.lower() in response.json()["error"].lower()


def test_mpg_needs_json(client) -> None:
    response = client.post("/mpg", data={"cylinders": "4"})
    assert_error(response, 415, "unsupported_media_type", "application/json")


def test_mpg_batch_limit(client_factory, settings_factory, models_dir) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, max_batch_cars=3))
    assert_error(small.post("/mpg", json=[GOOD_CAR] * 4), 422, "invalid_input", "limit is 3")


def test_a_million_numbers_are_refused_cleanly(client) -> None:
    """Refused from the count of its values, before the body is parsed (tests/reliability/
    test_json_limits.py covers every JSON endpoint)."""
    response = client.post("/digit", json={"pixels": [[0.0] * 1_000_000]})
    assert_error(response, 422, "invalid_input", "at most 200,960")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/models/unknown", 404),
        ("/models/..%2f..%2fetc", 404),
        ("/models/%2e%2e", 404),
        ("/models/digit%00", 404),
        ("/jobs/..%2f..", 404),
        ("/no/such/route", 404),
    ],
)
def test_unknown_and_traversal_paths(client, path, status) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert "error" in response.json()


def test_the_service_stays_healthy_after_all_that(client) -> None:
    client.post("/digit", content=b"\x89PNG garbage", headers={"content-type": "image/png"})
    client.post("/mpg", content=b"{", headers={"content-type": "application/json"})
    assert client.get("/readyz").status_code == 200
    assert client.post("/mpg", json=GOOD_CAR).status_code == 200


def test_request_ids_are_echoed_or_made(client) -> None:
    given = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"x-request-id": "bad id with spaces\n"})
    assert (
        made.headers["x-request-id"] != "bad id with spaces"
        and len(made.headers["x-request-id"]) == 32
    )


def test_no_stack_traces_leak(client) -> None:
    response = client.post(
        "/digit", content=b"\xff\xd8\xff" + b"\0" * 100, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 415
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_a_client_that_hangs_up_mid_upload_is_not_an_internal_error(client, caplog) -> None:
    """wrk and browsers drop connections with a body half sent; that is the client's doing."""
    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/digit",
        "raw_path": b"/digit",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", b"100000"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    incoming = [
        {"type": "http.request", "body": head.encode(), "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 499
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
