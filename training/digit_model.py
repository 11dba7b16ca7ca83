"""The digit classifier: a compact batch-norm CNN (default) or the classic MLP.

Input: a batch of 28x28 images, white ink on black, values 0..1, exactly what
`service.vision.preprocess` produces from an upload. Output: softmax over 10 classes.
Augmentation (`training.augmentation`) is the model's first layer and acts only while training.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from training import components
from training.augmentation import RandomAffineStroke
from training.hyperparameters import DigitArchitecture, DigitHyperparameters
from training.signatures import IMAGE_SIZE, NUM_CLASSES
from training.upload_augmentation import UploadArtifacts

SHEAR = 0.2
"""Largest horizontal shear of `augment_uploads` (a slope): a hand slanting more than MNIST's."""
PERSPECTIVE = 0.15
"""Largest perspective of `augment_uploads`: one side of the digit up to 15% wider than the
other, as on a sheet photographed at an angle once the preprocessing has cropped it."""


def build_digit_model(hp: DigitHyperparameters) -> keras.Model:
    """Builds (uncompiled) the classifier that `hp` describes."""
    seeds = iter(range(hp.seed * 1000 + 1, hp.seed * 1000 + 1000))
    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE), name="image", dtype="float32")
    x = layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1))(images)
    if hp.augment:
        warp = {"shear": SHEAR, "perspective": PERSPECTIVE} if hp.augment_uploads else {}
        x = RandomAffineStroke(seed=next(seeds), name="augmentation", **warp)(x)
    if hp.augment_uploads:
        x = UploadArtifacts(seed=next(seeds), name="upload_artifacts")(x)
    if hp.architecture is DigitArchitecture.cnn:
        x = _convolution_stages(x, hp, seeds)
    x = layers.Flatten()(x)
    for units in hp.hidden_units:
        x = layers.Dense(units, kernel_initializer=components.kernel_initializer(hp, next(seeds)))(
            x
        )
        if hp.architecture is DigitArchitecture.cnn:
            x = layers.BatchNormalization()(x)
        x = components.activation_layer(hp)(x)
        if hp.dropout:
            x = layers.Dropout(hp.dropout, seed=next(seeds))(x)
    probabilities = layers.Dense(
        NUM_CLASSES,
        activation="softmax",
        dtype="float32",
        kernel_initializer=components.kernel_initializer(hp, next(seeds)),
        name="probabilities",
    )(x)
    return keras.Model(images, probabilities, name=f"digit_{hp.architecture.value}")


@dataclass(frozen=True)
class Convolution:
    """One convolution of the CNN and the side of the square image it outputs."""

    filters: int
    kernel: int
    stride: int
    padding: str
    output_size: int
    last_of_stage: bool


def convolutions(hp: DigitHyperparameters) -> list[Convolution]:
    """The CNN's convolutions in order (none for the MLP). Each stage: two 3x3 convolutions
    then a strided 5x5 one that halves the image. Small images switch to 'same' padding to
    keep a size."""
    if hp.architecture is not DigitArchitecture.cnn:
        return []
    plan = []
    size = IMAGE_SIZE
    for filters in hp.conv_filters:
        for kernel, stride in ((3, 1), (3, 1), (5, 2)):
            padding = "valid" if stride == 1 and size >= 10 else "same"
            size = size - kernel + 1 if padding == "valid" else -(-size // stride)
            plan.append(Convolution(filters, kernel, stride, padding, size, stride == 2))
    return plan


def _convolution_stages(x, hp: DigitHyperparameters, seeds):  # type: ignore[no-untyped-def]
    """The convolutions, each with batch normalisation, and dropout after each stage."""
    for conv in convolutions(hp):
        x = layers.Conv2D(
            conv.filters,
            conv.kernel,
            strides=conv.stride,
            padding=conv.padding,
            use_bias=False,
            kernel_initializer=components.kernel_initializer(hp, next(seeds)),
        )(x)
        x = layers.BatchNormalization()(x)
        x = components.activation_layer(hp)(x)
        if conv.last_of_stage and hp.dropout:
            x = layers.Dropout(hp.dropout, seed=next(seeds))(x)
    return x
