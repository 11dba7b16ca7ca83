"""training.upload_augmentation: what the preprocessing leaves in an upload, applied at random
while training, never at inference."""

from __future__ import annotations

import keras
import numpy as np

from training.augmentation import RandomAffineStroke
from training.upload_augmentation import UploadArtifacts


def _digit_like(batch: int = 64) -> np.ndarray:
    images = np.zeros((batch, 28, 28, 1), np.float32)
    images[:, 6:22, 12:15, 0] = 1.0  # an upright bar, a "1"
    images[:, 6:9, 9:18, 0] = 1.0  # with a cap
    return images


def _run(layer: keras.layers.Layer, images: np.ndarray, training: bool) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(layer(images, training=training)))


def test_inference_leaves_images_untouched() -> None:
    images = _digit_like(8)
    np.testing.assert_array_equal(_run(UploadArtifacts(seed=1), images, False), images)


def test_training_changes_some_images_and_keeps_each_as_the_preprocessing_leaves_it() -> None:
    images = _digit_like()
    out = _run(UploadArtifacts(probability=0.5, seed=2), images, True)
    assert out.shape == images.shape
    assert out.min() >= 0.0
    # Every image keeps its brightest pixel at 1, as the preprocessing scales an upload.
    np.testing.assert_allclose(out.reshape(len(out), -1).max(axis=1), 1.0, atol=1e-5)
    changed = np.abs(out - images).reshape(len(out), -1).max(axis=1) > 0.05
    assert 0.3 * len(out) < changed.sum() <= len(out)


def test_each_artifact_can_be_seen() -> None:
    """With every artifact certain, strokes grow or thin, ink appears off the strokes (a line
    fragment) and some of the strokes' pixels lose ink (a gap, grain)."""
    images = _digit_like()
    out = _run(UploadArtifacts(probability=1.0, seed=3), images, True)
    off_strokes = (images == 0) & (out > 0.3)
    on_strokes = (images == 1) & (out < 0.7)
    assert off_strokes.reshape(len(out), -1).any(axis=1).all()
    assert on_strokes.reshape(len(out), -1).any(axis=1).mean() > 0.5


def test_the_warp_of_a_sheet_at_an_angle_is_a_projective_map() -> None:
    layer = RandomAffineStroke(
        rotation_degrees=0,
        zoom=0,
        shift=0,
        stroke_probability=0,
        shear=0.3,
        perspective=0.3,
        seed=5,
    )
    images = _digit_like(16)
    out = _run(layer, images, True)
    assert (np.abs(out - images).reshape(16, -1).max(axis=1) > 0.2).all()
    still = RandomAffineStroke(
        rotation_degrees=0, zoom=0, shift=0, stroke_probability=0, shear=0, perspective=0, seed=5
    )
    np.testing.assert_allclose(_run(still, images, True), images, atol=1e-5)


def test_the_layers_survive_serialisation() -> None:
    layer = UploadArtifacts(probability=0.3, seed=9, name="artifacts")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, UploadArtifacts)
    assert (clone.probability, clone.seed) == (0.3, 9)
    warp = RandomAffineStroke(shear=0.2, perspective=0.15, seed=1)
    copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(warp))
    assert (copy.shear, copy.perspective) == (0.2, 0.15)
