"""Training-time augmentation of digit images, on any Keras backend.

Uploads reach the model after `service.vision` has centred and scaled them, but people still
draw slanted, larger or smaller, off-centre digits with pens of every width. One random affine
map per image (rotation, zoom and shift composed into a single matrix) is applied to the whole
batch in one `keras.ops.image.affine_transform` call, then a random stroke-width change: one
resampling of the batch, where Keras's separate RandomRotation/RandomZoom/RandomTranslation
layers make three (35-50% of a CPU epoch).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from training.signatures import IMAGE_SIZE


@keras.saving.register_keras_serializable(package="perceptron")
class RandomAffineStroke(layers.Layer):
    """Identity at inference. While training: each image is rotated by up to
    `rotation_degrees`, zoomed by up to `zoom` (a fraction, both ways), sheared by up to
    `shear` (a slope), seen at an angle by up to `perspective` (how much wider one side
    becomes than the other, a fraction) and shifted by up to `shift` of its side, then with
    probability `stroke_probability` its strokes are thickened or thinned by about half a
    pixel on each side (grey-level dilation or erosion over 3x3, blended halfway)."""

    def __init__(
        self,
        rotation_degrees: float = 10.0,
        zoom: float = 0.1,
        shift: float = 0.1,
        stroke_probability: float = 0.3,
        seed: int | None = None,
        shear: float = 0.0,
        perspective: float = 0.0,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.rotation_degrees = rotation_degrees
        self.zoom = zoom
        self.shift = shift
        self.shear = shear
        self.perspective = perspective
        self.stroke_probability = stroke_probability
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # TensorFlow's image transform has no XLA kernel: with this layer, Keras must not
        # compile the TensorFlow training step with XLA (JAX compiles it fine).
        self.supports_jit = keras.backend.backend() != "tensorflow"

    def call(self, images, training=None):  # type: ignore[no-untyped-def]
        if not training:
            return images
        batch = ops.shape(images)[0]
        draws = keras.random.uniform((batch, 8), -1.0, 1.0, seed=self.seed_generator)
        moved = ops.image.affine_transform(
            images,
            self._inverse_maps(draws),
            interpolation="bilinear",
            fill_mode="constant",
            data_format="channels_last",
        )
        return self._change_strokes(moved, draws[:, 4])

    def _inverse_maps(self, draws: Any) -> Any:
        """Per image, the 8 projective coefficients mapping an output pixel to the input pixel
        it samples: input = centre + S R(-angle) (output - centre) / scale - offset, S a
        horizontal shear, divided by a perspective term 1 + c0 x + c1 y."""
        angle = draws[:, 0] * (self.rotation_degrees * math.pi / 180.0)
        scale = 1.0 + draws[:, 1] * self.zoom
        dx = draws[:, 2] * (self.shift * IMAGE_SIZE)
        dy = draws[:, 3] * (self.shift * IMAGE_SIZE)
        slope = draws[:, 5] * self.shear
        cos = ops.cos(angle) / scale
        sin = ops.sin(angle) / scale
        a0, a1 = cos + slope * sin, -sin + slope * cos
        centre = (IMAGE_SIZE - 1) / 2.0
        tilt = self.perspective / IMAGE_SIZE
        return ops.stack(
            [
                a0,
                a1,
                centre - a0 * centre - a1 * centre - dx,
                sin,
                cos,
                centre - sin * centre - cos * centre - dy,
                draws[:, 6] * tilt,
                draws[:, 7] * tilt,
            ],
            axis=1,
        )

    def _change_strokes(self, images: Any, draw: Any) -> Any:
        dilated = ops.max_pool(images, pool_size=3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, pool_size=3, strides=1, padding="same")
        # `draw` is uniform in -1..1: the lowest share thickens, the next one thins.
        u = ops.reshape((draw + 1.0) / 2.0, (-1, 1, 1, 1))
        p = self.stroke_probability
        target = ops.where(u < p / 2, dilated, ops.where(u < p, eroded, images))
        return images + 0.5 * (target - images)

    def compute_output_shape(self, input_shape):  # type: ignore[no-untyped-def]
        return input_shape

    def get_config(self) -> dict[str, object]:
        return {
            **super().get_config(),
            "rotation_degrees": self.rotation_degrees,
            "zoom": self.zoom,
            "shift": self.shift,
            "stroke_probability": self.stroke_probability,
            "seed": self.seed,
            "shear": self.shear,
            "perspective": self.perspective,
        }
