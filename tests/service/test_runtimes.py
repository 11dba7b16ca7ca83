"""The runtime serving each version: LiteRT on a copy checked against the SavedModel when it
loads, TensorFlow when no copy can be made or none agrees, and the setting that chooses."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.runtimes.agreement import (
    Disagreement,
    InputSpec,
    compare,
    probe_inputs,
)
from tests.service.test_bad_input import GOOD_CAR
from tests.service.test_registry import add_version, rescan, served, version_state
from training.litert import LITERT_FILE, convert_to_litert


def _saved_model(folder: Path, *, convertible: bool, seed: int = 0) -> None:
    """A SavedModel with the digit model's serving signature (and variables, as every served
    version has): a projection of the image to ten classes, through an operator LiteRT lacks
    (BesselI0e) unless `convertible`."""
    import tensorflow as tf

    weights = np.random.default_rng(seed).normal(size=(28 * 28, 10)).astype(np.float32)

    class Module(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable(weights)

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.float32, name="image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            pixels = tf.reshape(image, [-1, 28 * 28])
            if not convertible:
                pixels = tf.math.bessel_i0e(pixels)
            return {"probabilities": tf.nn.softmax(pixels @ self.weights)}

    module = Module()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})


def _replace_version(models_dir: Path, name: str, version: int, **model: object) -> Path:
    folder = models_dir / name / str(version)
    shutil.rmtree(folder, ignore_errors=True)
    _saved_model(folder, **model)  # type: ignore[arg-type]
    return folder


def _runtime_metrics(client) -> list[str]:
    return [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(("perceptron_model_runtime{", "perceptron_runtime_fallbacks_total{"))
    ]


def _digit_probabilities(client, image: bytes) -> np.ndarray:
    answer = client.post("/digit", files={"file": ("digit.png", image, "image/png")})
    assert answer.status_code == 200, answer.text
    return np.array(answer.json()["probabilities"])


SEVEN = (Path(__file__).resolve().parents[2] / "docs" / "examples" / "seven.png").read_bytes()


# -- the check --------------------------------------------------------------------------------


def test_outputs_within_tolerance_agree_and_report_their_largest_difference() -> None:
    expected = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)}
    close = {"probabilities": expected["probabilities"] + np.float32(5e-5)}
    assert compare(expected, close)["probabilities"] == pytest.approx(5e-5, rel=1e-3)


@pytest.mark.parametrize(
    ("candidate", "complaint"),
    [
        ({"probabilities": np.array([[0.9, 0.1], [0.2, 0.8003]])}, "differs by up to"),
        ({"probabilities": np.array([[0.1, 0.9], [0.2, 0.8]])}, "differs by up to"),
        ({"probabilities": np.array([[0.9, 0.1]])}, "has shape"),
        ({"probabilities": np.array([[np.nan, 0.1], [0.2, 0.8]])}, "not finite"),
        ({"logits": np.array([[0.9, 0.1], [0.2, 0.8]])}, "missing"),
    ],
)
def test_outputs_that_differ_disagree(candidate, complaint) -> None:
    expected = {"probabilities": np.array([[0.9, 0.1], [0.2, 0.8]])}
    with pytest.raises(Disagreement, match=complaint):
        compare(expected, candidate)


def test_a_class_flip_disagrees_unless_the_saved_model_itself_is_undecided() -> None:
    # A flip within the tolerance: both values are within 1e-4 of the SavedModel's.
    tie = {"probabilities": np.array([[0.50002, 0.49998]])}
    flipped = {"probabilities": np.array([[0.49998, 0.50002]])}
    assert compare(tie, flipped)["probabilities"] == pytest.approx(4e-5)
    # An output without a tolerance of its own (logits) is held to 1e-4 of its scale, so a
    # clear choice flipped inside that bound still disagrees.
    clear = {"logits": np.array([[20.0, 19.997]])}
    swapped = {"logits": np.array([[19.9984, 19.9986]])}
    with pytest.raises(Disagreement, match="another class in 1 rows"):
        compare(clear, swapped)


def test_probes_stay_in_the_versions_training_ranges_and_never_change() -> None:
    specs = [InputSpec("origin", ()), InputSpec("weight", ()), InputSpec("image", (28, 28))]
    metadata = {"feature_ranges": {"origin": [1.0, 3.0], "weight": [1649.0, 5140.0]}}
    probes = probe_inputs(specs, metadata)
    assert set(np.unique(probes["origin"])) <= {1.0, 2.0, 3.0}
    assert probes["weight"].min() >= 1649.0 and probes["weight"].max() <= 5140.0
    assert probes["image"].shape == (32, 28, 28) and probes["image"].dtype == np.float32
    assert probes["image"].min() >= 0.0 and probes["image"].max() <= 1.0
    assert not probes["image"][-1].any()  # a blank image among them
    again = probe_inputs(specs, metadata)
    assert all(np.array_equal(probes[name], again[name]) for name in probes)


# -- serving ----------------------------------------------------------------------------------


def test_exported_versions_serve_with_litert_and_answer_as_their_saved_model(
    client_factory, settings_factory, models_dir
) -> None:
    assert (models_dir / "digit" / "1" / LITERT_FILE).is_file()  # written at export
    litert = client_factory(settings_factory(models_dir=models_dir))
    for name in ("digit", "mpg"):
        info = litert.get(f"/models/{name}").json()
        assert (info["runtime"], info["runtime_fallback"]) == ("litert", None)
    assert 'perceptron_model_runtime{model="digit",runtime="litert"} 1.0' in _runtime_metrics(
        litert
    )
    tensorflow = client_factory(settings_factory(models_dir=models_dir, model_runtime="tensorflow"))
    assert tensorflow.get("/models/digit").json()["runtime"] == "tensorflow"
    ours, theirs = (_digit_probabilities(c, SEVEN) for c in (litert, tensorflow))
    assert np.abs(ours - theirs).max() <= 1e-4 and ours.argmax() == theirs.argmax()
    cars = [
        litert.post("/mpg", json=GOOD_CAR).json(),
        tensorflow.post("/mpg", json=GOOD_CAR).json(),
    ]
    assert abs(cars[0]["mpg"] - cars[1]["mpg"]) <= 0.01  # answers show hundredths


def test_a_model_litert_cannot_convert_is_served_with_tensorflow(
    client_factory, settings_factory, models_dir, caplog
) -> None:
    _replace_version(models_dir, "digit", 1, convertible=False)
    with caplog.at_level(logging.WARNING, logger="service.runtimes.selection"):
        client = client_factory(settings_factory(models_dir=models_dir))
    info = client.get("/models/digit").json()
    assert info["served_version"] == 1 and info["runtime"] == "tensorflow"
    assert info["runtime_fallback_code"] == "litert_conversion_failed"
    assert info["runtime_fallback"] == "the model could not be converted for LiteRT"
    assert "BesselI0e" in info["runtime_fallback_detail"]  # loopback: an administrator
    assert client.get("/models/mpg").json()["runtime"] == "litert"
    assert _digit_probabilities(client, SEVEN).shape == (10,)
    rows = client.post("/v1/models/digit:predict", json={"instances": [[[0.0] * 28] * 28]})
    assert rows.status_code == 200 and len(rows.json()["predictions"][0]) == 10
    metrics = _runtime_metrics(client)
    assert 'perceptron_model_runtime{model="digit",runtime="tensorflow"} 1.0' in metrics
    assert (
        'perceptron_runtime_fallbacks_total{model="digit",reason="litert_conversion_failed",'
        'version="1"} 1.0'
    ) in metrics
    assert any(
        "version 1 of digit serves with TensorFlow" in r.getMessage()
        and "BesselI0e" in r.getMessage()
        for r in caplog.records
    )


def test_the_fallback_reason_is_for_administrators_only(
    client_factory, settings_factory, models_dir
) -> None:
    from tests.conftest import REMOTE_CLIENT

    _replace_version(models_dir, "digit", 1, convertible=False)
    settings = settings_factory(models_dir=models_dir, admin_token="a-long-enough-admin-token")
    info = client_factory(settings, client=REMOTE_CLIENT).get("/models/digit").json()
    assert info["runtime_fallback_code"] == "litert_conversion_failed"
    assert info["runtime_fallback_detail"] is None


def test_a_copy_that_disagrees_with_its_saved_model_is_replaced_by_a_conversion(
    client_factory, settings_factory, models_dir, tmp_path, caplog
) -> None:
    other = tmp_path / "other"
    _saved_model(other, convertible=True, seed=1)
    (models_dir / "digit" / "1" / LITERT_FILE).write_bytes(convert_to_litert(other))
    settings = settings_factory(models_dir=models_dir, runtime_cache_dir=tmp_path / "litert")
    with caplog.at_level(logging.INFO, logger="service.runtimes.selection"):
        client = client_factory(settings)
    assert client.get("/models/digit").json()["runtime"] == "litert"
    messages = [r.getMessage() for r in caplog.records]
    assert any("from the version folder" in m and "differs" in m for m in messages), messages
    assert any(
        "version 1 of digit serves with LiteRT (copy converted at load" in m for m in messages
    )


def test_when_no_copy_agrees_tensorflow_serves(
    client_factory, settings_factory, models_dir, tmp_path, monkeypatch
) -> None:
    other = tmp_path / "other"
    _saved_model(other, convertible=True, seed=1)
    wrong = convert_to_litert(other)
    # Failure injection: a converter whose copies compute something else.
    monkeypatch.setattr("service.runtimes.copies.convert_to_litert", lambda path: wrong)
    (models_dir / "digit" / "1" / LITERT_FILE).unlink()
    settings = settings_factory(models_dir=models_dir, runtime_cache_dir=tmp_path / "litert")
    info = client_factory(settings).get("/models/digit").json()
    assert info["runtime"] == "tensorflow" and info["runtime_fallback_code"] == "litert_disagrees"
    assert "differs by up to" in info["runtime_fallback_detail"]


def test_the_litert_setting_refuses_a_version_without_an_agreeing_copy(
    client_factory, settings_factory, models_dir
) -> None:
    client = client_factory(settings_factory(models_dir=models_dir, model_runtime="litert"))
    assert client.get("/models/digit").json()["runtime"] == "litert"
    _replace_version(models_dir, "digit", 2, convertible=False)
    rescan(client, "digit")
    rescan(client, "digit")  # the first scan sees the folder, the second finds it settled
    assert version_state(client, "digit", 2)["state"] == "failed"
    assert "could not be converted for LiteRT" in version_state(client, "digit", 2)["error_detail"]
    assert served(client, "digit") == 1
    assert _digit_probabilities(client, SEVEN).shape == (10,)


def test_the_tensorflow_setting_converts_nothing(
    client_factory, settings_factory, models_dir, tmp_path
) -> None:
    for name in ("digit", "mpg"):
        (models_dir / name / "1" / LITERT_FILE).unlink()
    cache = tmp_path / "litert"
    settings = settings_factory(
        models_dir=models_dir, model_runtime="tensorflow", runtime_cache_dir=cache
    )
    client = client_factory(settings)
    for name in ("digit", "mpg"):
        info = client.get(f"/models/{name}").json()
        assert (info["runtime"], info["runtime_fallback"]) == ("tensorflow", None)
    assert not cache.exists()
    assert not [line for line in _runtime_metrics(client) if "fallbacks_total{" in line]


def test_a_version_without_a_copy_is_converted_once_then_found_in_the_cache(
    client_factory, settings_factory, models_dir, tmp_path, caplog
) -> None:
    (models_dir / "mpg" / "1" / LITERT_FILE).unlink()
    cache = tmp_path / "litert"
    settings = settings_factory(models_dir=models_dir, runtime_cache_dir=cache)
    with caplog.at_level(logging.INFO, logger="service.runtimes.selection"):
        first = client_factory(settings)
        assert first.get("/models/mpg").json()["runtime"] == "litert"
        first.__exit__(None, None, None)
        assert len(list(cache.glob("*.tflite"))) == 1
        second = client_factory(settings)
        assert second.get("/models/mpg").json()["runtime"] == "litert"
    sources = [
        r.getMessage().split("(copy ")[1].split(";")[0]
        for r in caplog.records
        if "version 1 of mpg serves with LiteRT" in r.getMessage()
    ]
    assert sources == ["converted at load", "from the cache"]


def test_a_cache_that_cannot_be_written_still_serves_with_litert(
    client_factory, settings_factory, models_dir, tmp_path
) -> None:
    (models_dir / "mpg" / "1" / LITERT_FILE).unlink()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = client_factory(
        settings_factory(models_dir=models_dir, runtime_cache_dir=blocker / "litert")
    )
    assert client.get("/models/mpg").json()["runtime"] == "litert"
    assert client.post("/mpg", json=GOOD_CAR).status_code == 200


def test_a_new_version_swapped_in_serves_with_litert(client, models_dir) -> None:
    add_version(models_dir, "digit", 2)
    rescan(client, "digit")
    rescan(client, "digit")
    assert served(client, "digit") == 2
    assert client.get("/models/digit").json()["runtime"] == "litert"


# -- the bundled models, in full --------------------------------------------------------------


def _bundled_runners(bundled_models: Path, name: str, cache: Path):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    from service.runtimes.copies import copies
    from service.runtimes.litert import LiteRTRunner
    from service.runtimes.saved_model import SavedModelRunner
    from training import versions

    version = versions.served_version(bundled_models, name)
    assert version is not None
    path = versions.version_dir(bundled_models, name, version)
    copy = next(iter(copies(path, cache)))
    return SavedModelRunner(tf.saved_model.load(str(path))), LiteRTRunner(
        copy.flatbuffer, threads=1
    )


@pytest.mark.slow
def test_litert_reads_every_mnist_test_image_as_the_bundled_saved_model_does(
    bundled_models, mnist, runtime_cache
) -> None:
    saved_model, litert = _bundled_runners(bundled_models, "digit", runtime_cache)
    images = mnist.x_test.astype(np.float32) / 255.0
    expected, got = (
        np.concatenate(
            [run({"image": images[i : i + 500]})["probabilities"] for i in range(0, 10_000, 500)]
        )
        for run in (saved_model, litert)
    )
    assert len(got) == 10_000
    assert int((expected.argmax(axis=1) != got.argmax(axis=1)).sum()) == 0
    assert float(np.abs(expected - got).max()) <= 1e-4


@pytest.mark.slow
def test_litert_prices_every_car_of_the_data_set_as_the_bundled_saved_model_does(
    bundled_models, auto_mpg, runtime_cache
) -> None:
    from training import data

    saved_model, litert = _bundled_runners(bundled_models, "mpg", runtime_cache)
    features = data.features_of(auto_mpg)
    expected, got = saved_model(features)["mpg"], litert(features)["mpg"]
    assert len(got) == len(auto_mpg) > 300
    assert float(np.abs(expected - got).max()) <= 1e-3
