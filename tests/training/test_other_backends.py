"""The training loop on the JAX backend: a tiny digit CNN (augmentation included) trains under
`KERAS_BACKEND=jax` in a child process, is exported through TensorFlow, and the SavedModel
computes what the JAX-trained Keras model computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training import versions
from training.signatures import SERVING_SIGNATURE_KEY

pytestmark = [pytest.mark.slow, pytest.mark.data]

REPO = Path(__file__).resolve().parents[2]
TINY_CNN = {
    "conv_filters": [4],
    "hidden_units": [8],
    "epochs": 1,
    "max_train_samples": 300,
    "seed": 2,
}
CHILD = """
import json, sys
from pathlib import Path
import keras, numpy as np
from training import data
from training.export import export_version
from training.hyperparameters import DigitHyperparameters, PromotePolicy
from training.pipeline import DataPaths, train
from training.progress import SilentProgress
from training.promotion import decide_promotion
from training.train import predict

hp_json, data_dir, cache_dir, models, out = sys.argv[1:]
paths = DataPaths(Path(data_dir) if data_dir else None, Path(cache_dir))
trained, sha = train("digit", DigitHyperparameters.model_validate_json(hp_json), paths=paths,
                     observer=SilentProgress())
promotion = decide_promotion(Path(models), "digit", trained.metrics, PromotePolicy.always, None)
exported = export_version(trained, Path(models), promotion=promotion, data_sha256=sha,
                          command="jax test")
mnist = data.load_mnist(data.locate(data.MNIST_FILE, paths.data_dir, paths.cache_dir))
images = mnist.x_test[:64].astype(np.float32) / 255.0
np.save(out, predict(trained.model, images))
print(json.dumps({"backend": keras.backend.backend(), "version": exported.version}))
"""


def test_a_jax_trained_model_exports_and_serves_the_same_predictions(
    tmp_path: Path, data_paths, mnist
) -> None:  # type: ignore[no-untyped-def]
    models = tmp_path / "models"
    out = tmp_path / "jax_predictions.npy"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            json.dumps(TINY_CNN),
            str(data_paths.data_dir or ""),
            str(data_paths.cache_dir),
            str(models),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"backend": "jax", "version": 1}

    folder = versions.version_dir(models, "digit", 1)
    metadata = versions.read_metadata(folder)
    assert metadata is not None and metadata["keras_backend"] == "jax"
    assert metadata["hyperparameters"]["conv_filters"] == [4]
    serve = tf.saved_model.load(str(folder)).signatures[SERVING_SIGNATURE_KEY]
    images = mnist.x_test[:64].astype(np.float32) / 255.0
    served = serve(image=tf.constant(images))["probabilities"].numpy()
    trained_with_jax = np.load(out)
    assert served.shape == trained_with_jax.shape == (64, 10)
    np.testing.assert_allclose(served, trained_with_jax, atol=1e-5)
    # The tiny model learnt something, so matching predictions are not two constant outputs.
    assert len(set(served.argmax(axis=1))) > 1
