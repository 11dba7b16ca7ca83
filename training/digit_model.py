"""The digit classifier: a compact batch-norm CNN (default) or the classic MLP, and its
not-a-digit gate.

Input: a batch of 28x28 images, white ink on black, values 0..1, exactly what
`service.vision.preprocess` produces from an upload. Output: ten probabilities, one per digit.
Augmentation (`training.augmentation`) is the model's first layer and acts only while training.

With `not_digit_gate`, a small head reads the classifier's features (each convolution's
activations pooled, the last feature map, the hidden layers) and scores whether the picture
holds a digit at all; the output is then `score * p + (1 - score) / 10`. Mixing with the
uniform distribution keeps the order of the ten probabilities, so the answer and the accuracy
are the classifier's, and lowers the highest probability where the gate sees no digit, which is
what the reject option reads (`training.reject`). The output keeps its shape and meaning, so
the tensor protocols are unchanged. The gate is trained after the classifier, on its frozen
features (`training.not_digit_gate`).
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

CLASSIFIER_OUTPUT = "probabilities"
"""The layer whose output is the classifier's own ten probabilities."""
GATE_FEATURES = "not_digit_gate_features"
GATE_LAYER_PREFIX = "not_digit_gate"
"""Every layer of the gate is named with this prefix, so that its weights can be told from the
classifier's (fine-tuning keeps the classifier's and trains a new gate)."""
GATE_UNITS = 256
GATE_DROPOUT = 0.3


@keras.saving.register_keras_serializable(package="perceptron")
class GatedProbabilities(layers.Layer):
    """`score * p + (1 - score) / 10` for probabilities `p` (N x 10) and a score (N x 1) that
    the picture holds a digit."""

    def call(self, inputs):  # type: ignore[no-untyped-def]
        probabilities, score = inputs
        return score * probabilities + (1.0 - score) / NUM_CLASSES

    def compute_output_shape(self, input_shape):  # type: ignore[no-untyped-def]
        return input_shape[0]


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
    taps: list[keras.KerasTensor] = []
    if hp.architecture is DigitArchitecture.cnn:
        x = _convolution_stages(x, hp, seeds, taps)
    x = layers.Flatten()(x)
    features = [x]
    for units in hp.hidden_units:
        x = layers.Dense(units, kernel_initializer=components.kernel_initializer(hp, next(seeds)))(
            x
        )
        if hp.architecture is DigitArchitecture.cnn:
            x = layers.BatchNormalization()(x)
        x = components.activation_layer(hp)(x)
        features.append(x)
        if hp.dropout:
            x = layers.Dropout(hp.dropout, seed=next(seeds))(x)
    probabilities = layers.Dense(
        NUM_CLASSES,
        activation="softmax",
        dtype="float32",
        kernel_initializer=components.kernel_initializer(hp, next(seeds)),
        name=CLASSIFIER_OUTPUT,
    )(x)
    if hp.not_digit_gate:
        pools = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)
        pooled = [pool()(tap) for tap in taps for pool in pools]
        score = _gate_score(pooled + features, seeds)
        probabilities = GatedProbabilities(dtype="float32", name=f"{GATE_LAYER_PREFIX}_output")(
            [probabilities, score]
        )
    return keras.Model(images, probabilities, name=f"digit_{hp.architecture.value}")


def _gate_score(features: list[keras.KerasTensor], seeds) -> keras.KerasTensor:  # type: ignore[no-untyped-def]
    joined = features[0] if len(features) == 1 else layers.Concatenate()(features)
    joined = layers.Identity(name=GATE_FEATURES)(joined)
    x = layers.Dense(GATE_UNITS, activation="relu", name=f"{GATE_LAYER_PREFIX}_hidden")(joined)
    x = layers.Dropout(GATE_DROPOUT, seed=next(seeds), name=f"{GATE_LAYER_PREFIX}_dropout")(x)
    return layers.Dense(
        1, activation="sigmoid", dtype="float32", name=f"{GATE_LAYER_PREFIX}_score"
    )(x)


def classifier(model: keras.Model) -> keras.Model:
    """The classifier inside `model` (sharing its layers): `model` itself when it has no gate."""
    output = model.get_layer(CLASSIFIER_OUTPUT).output
    return model if output is model.output else keras.Model(model.input, output)


def has_gate(model: keras.Model) -> bool:
    return any(layer.name == GATE_FEATURES for layer in model.layers)


def gate_parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(features, head) of `model`'s gate: the model from the images to the classifier's
    features, and the head from those features to the score (sharing `model`'s layers)."""
    features = keras.Model(model.input, model.get_layer(GATE_FEATURES).output)
    inputs = keras.Input(shape=features.output.shape[1:], name="features")
    x = model.get_layer(f"{GATE_LAYER_PREFIX}_hidden")(inputs)
    x = model.get_layer(f"{GATE_LAYER_PREFIX}_dropout")(x)
    head = keras.Model(inputs, model.get_layer(f"{GATE_LAYER_PREFIX}_score")(x))
    return features, head


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


def _convolution_stages(x, hp: DigitHyperparameters, seeds, taps: list[keras.KerasTensor]):  # type: ignore[no-untyped-def]
    """The convolutions, each with batch normalisation, and dropout after each stage; each
    convolution's activations are appended to `taps`."""
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
        taps.append(x)
        if conv.last_of_stage and hp.dropout:
            x = layers.Dropout(hp.dropout, seed=next(seeds))(x)
    return x
