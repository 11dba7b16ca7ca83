"""The fuel-economy regressor: raw car features in, miles per gallon out.

Everything a request needs happens inside the model, so the SavedModel takes the features as
users give them: origin one-hot encoding, log transforms of the size features, normalisation
adapted on the training rows, an ensemble of small networks averaged, and the target scaling
undone.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from training import components
from training.cars import FEATURE_NAMES, ORIGINS
from training.hyperparameters import MpgHyperparameters, TargetTransform

LOG_FEATURES = ("displacement", "horsepower", "weight")
NUMERIC_FEATURES = tuple(name for name in FEATURE_NAMES if name != "origin")


@keras.saving.register_keras_serializable(package="perceptron")
class CarEncoder(layers.Layer):
    """Named raw features -> one vector per car: numeric features (some logged) then the
    origin one-hot. An origin code outside 1-3 encodes as all zeros."""

    def __init__(self, log_features: bool, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.log_features = log_features

    def call(self, inputs):  # type: ignore[no-untyped-def]
        columns = []
        for name in NUMERIC_FEATURES:
            value = ops.cast(inputs[name], "float32")
            if self.log_features and name in LOG_FEATURES:
                value = ops.log(ops.maximum(value, 1e-3))
            columns.append(value)
        origin = ops.cast(ops.round(ops.cast(inputs["origin"], "float32")), "int32") - 1
        one_hot = ops.one_hot(origin, len(ORIGINS))
        return ops.concatenate([ops.stack(columns, axis=-1), one_hot], axis=-1)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "log_features": self.log_features}


@keras.saving.register_keras_serializable(package="perceptron")
class TargetScale(layers.Layer):
    """Maps the networks' standardised output back to miles per gallon."""

    def __init__(self, mean: float, std: float, transform: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.mean = mean
        self.std = std
        self.transform = transform

    def call(self, standardised):  # type: ignore[no-untyped-def]
        return to_mpg(ops.squeeze(standardised, axis=-1), self.mean, self.std, self.transform)

    def get_config(self) -> dict[str, object]:
        return {
            **super().get_config(),
            "mean": self.mean,
            "std": self.std,
            "transform": self.transform,
        }


def to_mpg(standardised, mean: float, std: float, transform: str):  # type: ignore[no-untyped-def]
    """The networks' standardised output (a tensor) in miles per gallon."""
    value = standardised * std + mean
    if transform == TargetTransform.log.value:
        return ops.exp(value)
    if transform == TargetTransform.gallons_per_100_miles.value:
        return 100.0 / ops.maximum(value, 1e-3)
    return value


def mpg_mae_metric(mean: float, std: float, transform: TargetTransform) -> keras.metrics.Metric:
    """A member's mean absolute error in miles per gallon, logged each epoch as `mpg_mae`
    (and `val_mpg_mae`): the unit of the test MAE, where the loss and `mae` are in the
    standardised target's units (about 0.2 for a test MAE of 1.6 mpg)."""

    def mpg_mae(y_true, y_pred):  # type: ignore[no-untyped-def]
        truth = to_mpg(ops.reshape(ops.cast(y_true, "float32"), (-1,)), mean, std, transform.value)
        guess = to_mpg(ops.reshape(ops.cast(y_pred, "float32"), (-1,)), mean, std, transform.value)
        return ops.mean(ops.abs(truth - guess))

    return keras.metrics.MeanMetricWrapper(mpg_mae, name="mpg_mae")


def transform_target(mpg: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """The quantity the networks learn, before standardisation."""
    values = np.asarray(mpg, dtype=np.float64)
    if transform is TargetTransform.log:
        return np.asarray(np.log(values))
    if transform is TargetTransform.gallons_per_100_miles:
        return 100.0 / values
    return values


def feature_inputs() -> dict[str, keras.KerasTensor]:
    return {name: keras.Input(shape=(), name=name, dtype="float32") for name in FEATURE_NAMES}


def build_encoder(hp: MpgHyperparameters, train_features: dict[str, np.ndarray]) -> keras.Model:
    """Raw features -> normalised vector, with the normalisation adapted on `train_features`."""
    inputs = feature_inputs()
    encoder = CarEncoder(hp.log_features, name="encode")
    encoded_train = keras.ops.convert_to_numpy(encoder(train_features))
    normalise = layers.Normalization(name="normalise")
    normalise.adapt(encoded_train)
    return keras.Model(inputs, normalise(encoder(inputs)), name="car_features")


def build_member(hp: MpgHyperparameters, width: int, index: int) -> keras.Model:
    """One network of the ensemble: normalised vector -> standardised target."""
    seed = hp.seed * 1000 + index * 100
    vector = keras.Input(shape=(width,), name="features")
    x = vector
    for layer_index, units in enumerate(hp.hidden_units):
        x = layers.Dense(
            units, kernel_initializer=components.kernel_initializer(hp, seed + layer_index)
        )(x)
        x = components.activation_layer(hp)(x)
        if hp.dropout:
            x = layers.Dropout(hp.dropout, seed=seed + 50 + layer_index)(x)
    output = layers.Dense(
        1, kernel_initializer=components.kernel_initializer(hp, seed + 99), dtype="float32"
    )(x)
    return keras.Model(vector, output, name=f"member_{index + 1}")


def assemble(
    encoder: keras.Model,
    members: list[keras.Model],
    *,
    mean: float,
    std: float,
    transform: TargetTransform,
) -> keras.Model:
    """The exported regressor: encoder, the members averaged, target scale undone."""
    inputs = feature_inputs()
    vector = encoder(inputs)
    outputs = [member(vector) for member in members]
    averaged = outputs[0] if len(outputs) == 1 else layers.Average()(outputs)
    mpg = TargetScale(mean, std, transform.value, name="mpg")(averaged)
    return keras.Model(inputs, mpg, name="mpg_regressor")
