"""training.augmentation: one random affine map and stroke change per image, in Keras ops."""

from __future__ import annotations

import keras
import numpy as np

from training.augmentation import RandomAffineStroke


def _digit_like(batch: int = 16) -> np.ndarray:
    images = np.zeros((batch, 28, 28, 1), np.float32)
    images[:, 8:20, 12:16, 0] = 1.0  # a vertical bar, a "1"
    return images


def _run(layer: RandomAffineStroke, images: np.ndarray, training: bool) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(layer(images, training=training)))


def test_inference_leaves_images_untouched() -> None:
    images = _digit_like()
    np.testing.assert_array_equal(_run(RandomAffineStroke(seed=1), images, False), images)


def test_training_moves_each_image_differently_and_keeps_it_on_the_canvas() -> None:
    images = _digit_like()
    out = _run(RandomAffineStroke(seed=1), images, True)
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    changed = np.abs(out - images).reshape(len(out), -1).max(axis=1) > 0.05
    assert changed.all()
    assert len({out[i].tobytes() for i in range(len(out))}) == len(out)
    # At most 10% zoom and a half-pixel stroke change: the ink's amount stays comparable.
    ink = out.reshape(len(out), -1).sum(axis=1) / images[0].sum()
    assert ((ink > 0.6) & (ink < 1.6)).all()


def test_without_rotation_zoom_or_shift_the_map_is_the_identity() -> None:
    layer = RandomAffineStroke(rotation_degrees=0, zoom=0, shift=0, stroke_probability=0, seed=3)
    images = _digit_like(4)
    np.testing.assert_allclose(_run(layer, images, True), images, atol=1e-5)


def test_a_pure_shift_moves_the_ink_by_at_most_the_shift() -> None:
    layer = RandomAffineStroke(rotation_degrees=0, zoom=0, shift=0.1, stroke_probability=0, seed=4)
    images = _digit_like(32)
    out = _run(layer, images, True)
    rows = np.arange(28, dtype=np.float32)
    centre_before = (images[0, :, :, 0].sum(axis=1) * rows).sum() / images[0].sum()
    for image in out:
        centre = (image[:, :, 0].sum(axis=1) * rows).sum() / image.sum()
        assert abs(centre - centre_before) <= 0.1 * 28 + 1e-3


def test_the_layer_survives_serialisation() -> None:
    """The JAX-trained model reaches TensorFlow for export as its serialised architecture."""
    layer = RandomAffineStroke(rotation_degrees=7, zoom=0.2, shift=0.05, seed=9, name="aug")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, RandomAffineStroke)
    assert (clone.rotation_degrees, clone.zoom, clone.shift, clone.seed) == (7, 0.2, 0.05, 9)
