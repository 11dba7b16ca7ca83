"""Training-time augmentation with what the service's preprocessing leaves in an upload's 28x28.

The preprocessing turns a photo, scan or canvas into MNIST's layout, but not perfectly: a fat
marker or a hairline pen survives partly, a pen that skipped leaves gaps, a ruled line or the
edge of a sheet leaves a fragment beside the digit, focus and JPEG leave soft or grainy strokes.
Rather than a rule in the preprocessing per condition, the model learns to ignore them: this
layer applies each, at random and independently, to the images of a training batch, in Keras ops
(any backend), after the affine map of `training.augmentation`.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from training.signatures import IMAGE_SIZE

DRAWS = 18
"""Random numbers per image per batch."""


@keras.saving.register_keras_serializable(package="perceptron")
class UploadArtifacts(layers.Layer):
    """Identity at inference. While training, each image independently and with probability
    `probability` each: (1) its strokes made fat (one or two 3x3 dilations) or thin (an
    erosion), (2) a short gap cut across its strokes, (3) a straight fragment of a line added,
    near horizontal or vertical, (4) blurred, (5) grain over its strokes and noise. Images stay
    in 0..1 with their brightest pixel at 1 (as the preprocessing leaves them)."""

    def __init__(self, probability: float = 0.2, seed: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.probability = probability
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        rows, cols = ops.meshgrid(
            ops.arange(IMAGE_SIZE, dtype="float32"),
            ops.arange(IMAGE_SIZE, dtype="float32"),
            indexing="ij",
        )
        self._rows = ops.reshape(rows, (1, IMAGE_SIZE, IMAGE_SIZE, 1))
        self._cols = ops.reshape(cols, (1, IMAGE_SIZE, IMAGE_SIZE, 1))
        kernel = ops.convert_to_tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
        self._blur = ops.reshape(kernel / 16.0, (3, 3, 1, 1))

    def call(self, images, training=None):  # type: ignore[no-untyped-def]
        if not training:
            return images
        batch = ops.shape(images)[0]
        u = keras.random.uniform((batch, DRAWS), 0.0, 1.0, seed=self.seed_generator)
        grain = keras.random.uniform(ops.shape(images), 0.0, 1.0, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(images), seed=self.seed_generator)
        x = self._strokes(images, u)
        x = x * (1.0 - self._segment(u[:, 2:8], cut=True))
        x = ops.maximum(x, self._segment(u[:, 8:16], cut=False))
        x = self._soften(x, u, grain, noise)
        return x

    def _chosen(self, draw: Any) -> Any:
        return ops.reshape(ops.cast(draw < self.probability, "float32"), (-1, 1, 1, 1))

    def _strokes(self, images: Any, u: Any) -> Any:
        dilated = ops.max_pool(images, pool_size=3, strides=1, padding="same")
        fatter = ops.max_pool(dilated, pool_size=3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, pool_size=3, strides=1, padding="same")
        # u[:, 0] picks whether, u[:, 1] how: a third thinner, a third fat, a third fatter
        # (the preprocessing thins strokes wider than MNIST's widest, so no fatter than that).
        how = ops.reshape(u[:, 1], (-1, 1, 1, 1))
        # A hairline that erosion would erase entirely keeps half its ink.
        thin = ops.maximum(eroded, 0.5 * images)
        fattest = dilated + 0.5 * (fatter - dilated)
        changed = ops.where(how < 1 / 3, thin, ops.where(how < 2 / 3, dilated, fattest))
        return images + self._chosen(u[:, 0]) * (changed - images)

    def _segment(self, u: Any, *, cut: bool) -> Any:
        """0..1 cover of a straight segment per image (zero where not chosen): a short gap
        across the strokes near the middle (`cut`), or a long fragment of a near-horizontal or
        near-vertical line anywhere."""
        if cut:
            angle = u[:, 1] * math.pi
            centre_r = 8.0 + 12.0 * u[:, 2]
            centre_c = 8.0 + 12.0 * u[:, 3]
            width = 1.0 + 1.5 * u[:, 4]
            length = 4.0 + 6.0 * u[:, 5]
        else:
            upright = ops.cast(u[:, 1] < 0.5, "float32")
            tilt = (u[:, 2] - 0.5) * (10.0 * math.pi / 180.0)
            angle = tilt + upright * (math.pi / 2)
            centre_r = 28.0 * u[:, 3]
            centre_c = 28.0 * u[:, 4]
            width = 1.0 + u[:, 5]
            length = 6.0 + 22.0 * u[:, 6]
        shape = (-1, 1, 1, 1)
        cos = ops.reshape(ops.cos(angle), shape)
        sin = ops.reshape(ops.sin(angle), shape)
        dr = self._rows - ops.reshape(centre_r, shape)
        dc = self._cols - ops.reshape(centre_c, shape)
        along = dc * cos + dr * sin
        across = -dc * sin + dr * cos
        half = ops.reshape(width / 2.0, shape)
        cover = ops.clip(half + 0.5 - ops.abs(across), 0.0, 1.0)
        cover = cover * ops.cast(ops.abs(along) <= ops.reshape(length / 2.0, shape), "float32")
        strength = 1.0 if cut else ops.reshape(0.3 + 0.7 * u[:, 7], shape)
        return self._chosen(u[:, 0]) * cover * strength

    def _soften(self, x: Any, u: Any, grain: Any, noise: Any) -> Any:
        blurred = ops.conv(x, ops.cast(self._blur, x.dtype), padding="same")
        x = x + self._chosen(u[:, 16]) * (blurred - x)
        grainy = x * (1.0 - 0.5 * grain) + ops.abs(noise) * 0.08 * ops.cast(x > 0.05, x.dtype)
        x = x + self._chosen(u[:, 17]) * (grainy - x)
        # The preprocessing scales every upload so its strokes' cores are 1.
        peak = ops.max(x, axis=(1, 2, 3), keepdims=True)
        return ops.clip(x / ops.maximum(peak, 1e-3), 0.0, 1.0)

    def compute_output_shape(self, input_shape):  # type: ignore[no-untyped-def]
        return input_shape

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "probability": self.probability, "seed": self.seed}
