"""The jobs API without a worker: validation, access control, listing, the queue bound."""

from __future__ import annotations

import pytest

from tests.conftest import LOOPBACK_CLIENT, REMOTE_CLIENT
from training.cars import EXAMPLE_CAR
from training.hyperparameters import MpgHyperparameters

TOKEN = "s3cret-token-for-tests-0123456789"
JOB = {"model": "mpg", "hyperparameters": {"epochs": 5}, "promote": "never"}


@pytest.fixture
def guarded(client_factory, settings_factory, models_dir):
    """(loopback client, remote client) of an app with an admin token."""
    settings = settings_factory(models_dir=models_dir, admin_token=TOKEN)
    return client_factory(settings), client_factory(settings, client=REMOTE_CLIENT)


def test_a_job_is_queued_with_its_resolved_hyperparameters(client) -> None:
    response = client.post("/jobs", json=JOB)
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued" and job["promote"] == "never"
    assert job["hyperparameters"]["epochs"] == 5
    default_units = MpgHyperparameters.model_fields["hidden_units"].default
    assert job["hyperparameters"]["hidden_units"] == default_units  # defaults filled in
    assert job["links"]["events"] == f"/jobs/{job['id']}/events"
    assert client.get(response.headers["location"]).json()["id"] == job["id"]


def test_mlp_jobs_get_the_classic_defaults(client) -> None:
    job = client.post(
        "/jobs", json={"model": "digit", "hyperparameters": {"architecture": "mlp"}}
    ).json()
    hp = job["hyperparameters"]
    assert (hp["epochs"], hp["hidden_units"], hp["dropout"], hp["batch_size"]) == (
        2,
        [512],
        0.2,
        128,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "digit", "hyperparameters": {"learning_rate": -1}}, "learning_rate"),
        ({"model": "digit", "hyperparameters": {"epochs": 10_000}}, "epochs"),
        ({"model": "digit", "hyperparameters": {"optimizer": "adamm"}}, "optimizer"),
        ({"model": "digit", "hyperparameters": {"activation": "softplus2"}}, "activation"),
        ({"model": "mpg", "hyperparameters": {"conv_filters": [8]}}, "conv_filters"),
        ({"model": "mpg", "hyperparameters": {"optimizer": "adam", "momentum": 0.9}}, "momentum"),
        ({"model": "mpg", "hyperparameters": {"hidden_units": [100000]}}, "hidden_units"),
        ({"model": "cat", "hyperparameters": {}}, "model"),
        ({"model": "mpg", "promote": "sometimes"}, "promote"),
        ({"model": "mpg", "colour": "red"}, "colour"),
    ],
)
def test_invalid_jobs_are_refused_with_the_field(client, body, field) -> None:
    response = client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


def test_the_queue_is_bounded(client_factory, settings_factory, models_dir) -> None:
    small = client_factory(settings_factory(models_dir=models_dir, queue_max_pending=2))
    assert [small.post("/jobs", json=JOB).status_code for _ in range(2)] == [202, 202]
    full = small.post("/jobs", json=JOB)
    assert full.status_code == 429 and "already queued" in full.json()["error"]
    assert full.headers["retry-after"]


def test_listing_is_newest_first_filtered_and_paginated(client) -> None:
    ids = [client.post("/jobs", json=JOB).json()["id"] for _ in range(3)]
    digit = client.post("/jobs", json={"model": "digit", "hyperparameters": {"epochs": 1}}).json()[
        "id"
    ]
    everything = client.get("/jobs").json()
    assert [j["id"] for j in everything["jobs"]] == [digit, *reversed(ids)]
    only_mpg = client.get("/jobs?model=mpg&limit=2&offset=1").json()
    assert only_mpg["total"] == 3 and [j["id"] for j in only_mpg["jobs"]] == [ids[1], ids[0]]
    assert client.get("/jobs?status=running").json()["total"] == 0
    assert client.get("/jobs?status=bogus").status_code == 422
    assert client.get("/jobs?limit=0").status_code == 422


def test_unknown_jobs(client) -> None:
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.get("/jobs/nope/events").status_code == 404


def test_admin_endpoints_need_the_token_from_anywhere(guarded) -> None:
    local, remote = guarded
    for caller in (local, remote):
        missing = caller.post("/jobs", json=JOB)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer"
        )
        wrong = caller.post("/jobs", json=JOB, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 403
    ok = remote.post("/jobs", json=JOB, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 202
    job_id = ok.json()["id"]
    assert remote.post(f"/jobs/{job_id}/cancel").status_code == 401
    assert remote.put("/models/mpg/served-version", json={"version": 1}).status_code == 401
    assert remote.delete("/models/mpg/served-version").status_code == 401
    cancel = remote.post(f"/jobs/{job_id}/cancel", headers={"Authorization": f"Bearer {TOKEN}"})
    assert cancel.status_code == 202


def test_reading_stays_open(guarded) -> None:
    _, remote = guarded
    assert remote.get("/jobs").status_code == 200
    assert remote.get("/models").status_code == 200
    assert remote.post("/mpg", json=EXAMPLE_CAR).status_code == 200


def test_without_a_token_only_loopback_may_administer(
    client_factory, settings_factory, models_dir
) -> None:
    settings = settings_factory(models_dir=models_dir)
    remote = client_factory(settings, client=REMOTE_CLIENT)
    refused = remote.post("/jobs", json=JOB)
    assert refused.status_code == 403 and "loopback" in refused.json()["error"]
    assert remote.put("/models/mpg/served-version", json={"version": 1}).status_code == 403
    local = client_factory(settings, client=LOOPBACK_CLIENT)
    assert local.post("/jobs", json=JOB).status_code == 202
    ipv6 = client_factory(settings, client=("::1", 5000))
    assert ipv6.post("/jobs", json=JOB).status_code == 202


def test_predictions_can_require_the_token(client_factory, settings_factory, models_dir) -> None:
    settings = settings_factory(
        models_dir=models_dir, admin_token=TOKEN, predictions_require_token=True
    )
    caller = client_factory(settings, client=REMOTE_CLIENT)
    car = EXAMPLE_CAR
    assert caller.post("/mpg", json=car).status_code == 401
    assert (
        caller.post("/mpg", json=car, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 200
    )


PREDICTION_ROUTES = {
    ("POST", "/digit"): "/digit",
    ("POST", "/digit/feedback"): "/digit/feedback",
    ("POST", "/mpg"): "/mpg",
    ("GET", "/mpg/features"): "/mpg/features",
    ("POST", "/v1/models/{name}:predict"): "/v1/models/mpg:predict",
    ("POST", "/v1/models/{name}/versions/{version}:predict"): "/v1/models/mpg/versions/2:predict",
    ("POST", "/v2/models/{name}/infer"): "/v2/models/mpg/infer",
    ("POST", "/v2/models/{name}/versions/{version}/infer"): "/v2/models/mpg/versions/2/infer",
}
"""Every route that answers predictions, as OpenAPI names it, and a URL of it."""


def test_every_prediction_route_requires_the_token_when_asked(
    client_factory, settings_factory, models_dir
) -> None:
    """The prediction routes check access in their first line (service.http.deps), not through
    their routers' dependencies: each must still refuse a caller without the token, before
    reading any body."""
    from service.app import create_app

    settings = settings_factory(
        models_dir=models_dir, admin_token=TOKEN, predictions_require_token=True
    )
    caller = client_factory(settings, client=REMOTE_CLIENT)
    for (method, _), url in PREDICTION_ROUTES.items():
        refused = caller.request(method, url, content=b"not even the right body")
        assert refused.status_code == 401, (method, url, refused.text)
    # No prediction route is missing from the list.
    operations = {
        (method.upper(), path)
        for path, methods in create_app(settings).openapi()["paths"].items()
        for method in methods
    }
    predicting = {
        (method, path)
        for method, path in operations
        if path.startswith(("/digit", "/mpg"))
        or (method == "POST" and path.startswith(("/v1/models/", "/v2/models/")))
    }
    assert predicting == set(PREDICTION_ROUTES)


def test_production_refuses_a_placeholder_token(settings_factory) -> None:
    from pydantic import ValidationError

    for token in (None, "change-me", "short"):
        with pytest.raises(ValidationError, match="PERCEPTRON_ADMIN_TOKEN"):
            settings_factory(environment="production", admin_token=token)
    assert settings_factory(environment="production", admin_token=TOKEN).environment == "production"


def read_events(response) -> list[tuple[str, int | None, dict]]:
    """(event type, id, data) of each event in a finished SSE response."""
    import json

    events = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        events.append(
            (
                fields["event"],
                int(fields["id"]) if "id" in fields else None,
                json.loads(fields["data"]),
            )
        )
    return events


def test_the_event_stream_of_a_finished_job_ends_and_resumes(client) -> None:
    job_id = client.post("/jobs", json=JOB).json()["id"]
    client.post(f"/jobs/{job_id}/cancel")
    stream = client.get(f"/jobs/{job_id}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = read_events(stream)
    assert [(kind, data.get("status")) for kind, _, data in events] == [
        ("job", "cancelled"),
        ("status", "queued"),
        ("status", "cancelled"),
    ]
    first_id, last_id = events[1][1], events[2][1]
    resumed = read_events(
        client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(first_id)})
    )
    assert [(kind, data["status"]) for kind, _, data in resumed] == [("status", "cancelled")]
    done = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(last_id)})
    assert done.status_code == 204 and done.content == b""
