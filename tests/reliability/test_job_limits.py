"""Job cost limits: a job estimated to run too long or to need too much memory is refused before
it is queued, a running job is stopped at its wall-clock limit, and versions held back from
promotion are pruned (never the served or a pinned one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.attacks import ENDLESS_JOB, HUNGRY_JOB
from service.jobs.runner import run_job
from service.jobs.store import JobStore
from tests.service.test_bad_input import assert_error
from training.cost import estimate_cost, estimate_memory
from training.hyperparameters import DigitHyperparameters, MpgHyperparameters
from training.versions import prune_unpromoted, write_pin


def test_estimates_order_the_recipes_by_their_real_cost() -> None:
    cnn = estimate_cost("digit", DigitHyperparameters())
    mlp = estimate_cost("digit", DigitHyperparameters(architecture="mlp"))
    mpg = estimate_cost("mpg", MpgHyperparameters())
    best_recipe = {"conv_filters": [32, 64], "epochs": 15}
    best = estimate_cost("digit", DigitHyperparameters(**best_recipe, not_digit_gate=False))
    gate = estimate_cost("digit", DigitHyperparameters(**best_recipe)).seconds - best.seconds
    # Measured on the reference machine (bench/RESULTS.md): the default CNN 35-110 s an epoch
    # (10 epochs; quiet to loaded), the 32-64 CNN of `--preset best` 100-250 s an epoch
    # (15 epochs) and its not-a-digit gate 137 s (quiet), the MLP about 4-6 s an epoch (2
    # epochs), the MPG ensemble a few minutes.
    assert 10 * 35 < cnn.seconds < 10 * 110
    assert 15 * 100 < best.seconds < 15 * 250
    assert 100 < gate < 300
    assert 2 * 3 < mlp.seconds < 2 * 12
    assert mpg.seconds < 600
    assert estimate_cost("digit", DigitHyperparameters(batch_size=1)).steps == 10 * 54_000


def test_a_job_over_the_cost_budget_is_refused_with_its_estimate(client) -> None:
    response = client.post("/jobs", json=ENDLESS_JOB)
    assert_error(response, 422, "invalid_input", "estimated to run")
    message = response.json()["error"]
    assert "the limit is 6.0 h (PERCEPTRON_MAX_JOB_COST_S)" in message
    assert client.get("/jobs").json()["total"] == 0
    default = client.post("/jobs", json={"model": "digit"})
    assert default.status_code == 202, default.text


@pytest.mark.parametrize(
    "recipe",
    [
        {},
        {"conv_filters": [32, 64], "hidden_units": [256, 64], "augment": False},
        {"conv_filters": [8], "dropout": 0},
        {"architecture": "mlp", "hidden_units": [300, 100]},
    ],
)
def test_the_memory_estimate_counts_the_parameters_keras_builds(recipe: dict[str, object]) -> None:
    from training.digit_model import build_digit_model

    hp = DigitHyperparameters.model_validate(recipe)
    assert estimate_memory(hp).parameters == build_digit_model(hp).count_params()


def test_memory_estimates_grow_with_the_batch_and_the_model() -> None:
    default = estimate_memory(DigitHyperparameters())
    # Measured by `python -m bench job_memory` (bench/RESULTS.md): about 190 MiB for the
    # default recipe's training step, 550 MiB for 256-filter convolutions at batch 64.
    assert 100 * 2**20 < default.step_bytes < 400 * 2**20
    wide = DigitHyperparameters(conv_filters=[256, 256, 256], batch_size=64)
    assert 300 * 2**20 < estimate_memory(wide).step_bytes < 1100 * 2**20
    hungry = DigitHyperparameters.model_validate(HUNGRY_JOB["hyperparameters"])
    assert estimate_memory(hungry).step_bytes > 16 * 2**30
    assert estimate_memory(MpgHyperparameters()).step_bytes < 200 * 2**20


def test_a_job_over_the_memory_budget_is_refused_with_its_estimate(client) -> None:
    response = client.post("/jobs", json=HUNGRY_JOB)
    assert_error(response, 422, "invalid_input", "estimated to need")
    message = response.json()["error"]
    assert "the limit is 4.0 GiB (PERCEPTRON_MAX_JOB_MEMORY_BYTES)" in message
    assert "batch of 4,096" in message
    assert client.get("/jobs").json()["total"] == 0
    smaller = {**HUNGRY_JOB, "hyperparameters": {**HUNGRY_JOB["hyperparameters"], "batch_size": 64}}
    assert client.post("/jobs", json=smaller).status_code == 202


def test_a_running_job_is_failed_at_its_wall_clock_limit(settings_factory, models_dir) -> None:
    settings = settings_factory(models_dir=models_dir, job_timeout_s=0.001)
    store = JobStore(settings.job_database_url)
    try:
        job = store.create("mpg", MpgHyperparameters(epochs=5).model_dump(mode="json"), "never")
        run_job(job.id, settings, store)
        finished = store.get(job.id)
    finally:
        store.close()
    assert finished is not None and finished.status == "failed"
    assert "PERCEPTRON_JOB_TIMEOUT_S" in finished.error and finished.version is None
    assert sorted(p.name for p in (models_dir / "mpg").iterdir() if p.name.isdigit()) == ["1"]


def _version(models: Path, number: int, promoted: bool) -> None:
    folder = models / "digit" / str(number)
    folder.mkdir(parents=True)
    promotion = {"promoted": promoted, "reason": "test"}
    (folder / "metadata.json").write_text(json.dumps({"promotion": promotion}))


def test_only_the_newest_held_back_versions_are_kept(tmp_path: Path) -> None:
    models = tmp_path / "models"
    _version(models, 1, promoted=True)
    for number in range(2, 9):
        _version(models, number, promoted=False)
    write_pin(models, "digit", 3)
    deleted = prune_unpromoted(models, "digit", keep=2, settings_pin=4)
    assert deleted == [2, 5, 6]
    left = sorted(int(p.name) for p in (models / "digit").iterdir() if p.name.isdigit())
    assert left == [1, 3, 4, 7, 8]  # promoted, API pin, settings pin, the two newest
    assert not [p for p in (models / "digit").iterdir() if p.name.startswith(".tmp-")]
