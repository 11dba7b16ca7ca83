"""The hyperparameter vocabulary of training jobs: one validated schema per model.

The command line (`python -m training`), the API's `POST /jobs` and the web page's training form
all take these classes as they are. Bounds keep every job finite; unknown names are errors.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Activation(StrEnum):
    relu = "relu"
    leaky_relu = "leaky_relu"
    sigmoid = "sigmoid"
    tanh = "tanh"
    elu = "elu"
    gelu = "gelu"
    selu = "selu"
    swish = "swish"


class Initializer(StrEnum):
    glorot_uniform = "glorot_uniform"
    glorot_normal = "glorot_normal"
    xavier_uniform = "xavier_uniform"
    xavier_normal = "xavier_normal"
    he_uniform = "he_uniform"
    he_normal = "he_normal"
    kaiming_uniform = "kaiming_uniform"
    kaiming_normal = "kaiming_normal"
    lecun_normal = "lecun_normal"
    random_uniform = "random_uniform"
    random_normal = "random_normal"
    zeros = "zeros"
    ones = "ones"
    constant = "constant"


class Optimizer(StrEnum):
    sgd = "sgd"
    momentum = "momentum"
    """SGD with momentum (0.9 unless `momentum` says otherwise)."""
    adam = "adam"
    adamw = "adamw"
    adagrad = "adagrad"
    rmsprop = "rmsprop"
    adadelta = "adadelta"
    adamax = "adamax"
    nadam = "nadam"


MOMENTUM_OPTIMIZERS = frozenset({Optimizer.sgd, Optimizer.momentum, Optimizer.rmsprop})


class Schedule(StrEnum):
    constant = "constant"
    exponential = "exponential"
    cosine = "cosine"
    one_cycle = "one_cycle"
    """Linear warm-up from a tenth of `learning_rate` over `warmup_epochs`, then cosine decay
    to `cosine_alpha` of it: converges in fewer epochs than a plain cosine."""


class DigitArchitecture(StrEnum):
    cnn = "cnn"
    mlp = "mlp"


class DigitLoss(StrEnum):
    cross_entropy = "cross_entropy"
    hinge = "hinge"
    """Multi-class (categorical) hinge loss on the softmax output."""
    mse = "mse"


class MpgLoss(StrEnum):
    mse = "mse"
    mae = "mae"
    huber = "huber"


class TargetTransform(StrEnum):
    mpg = "mpg"
    """Learn miles per gallon directly."""
    gallons_per_100_miles = "gallons_per_100_miles"
    """Learn fuel consumption, which grows about linearly with weight and engine size."""
    log = "log"


class UserSamples(StrEnum):
    none = "none"
    """Train on MNIST only."""
    accepted = "accepted"
    """Train on MNIST plus the samples accepted in review (`POST /digit/feedback`, then
    `PATCH /samples/{id}`), repeated `user_samples_repeat` times; a stratified
    `user_samples_holdout` of them is kept out of training as a second test set."""


class StartFrom(StrEnum):
    scratch = "scratch"
    """New weights, initialised by `kernel_initializer`."""
    served = "served"
    """Fine-tune: the served version's network and weights. The network fields (architecture,
    conv_filters, hidden_units, activation, augment, dropout) are taken from that version."""


class PromotePolicy(StrEnum):
    auto = "auto"
    """Serve the new version only if its test metric is at least as good as the served one's."""
    always = "always"
    never = "never"


DEFAULT_PROMOTE_POLICY = PromotePolicy.auto
"""The policy of a training run that names none, from the command line and the API alike: a
quick experiment must not replace a better served model."""


Units = Annotated[int, Field(ge=1, le=2048)]


class TrainingHyperparameters(BaseModel):
    """What every training job shares: optimisation, schedule, regularisation, initialisation."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    epochs: int = Field(10, ge=1, description="Passes over the training data")
    batch_size: int = Field(128, ge=1, le=4096)
    optimizer: Optimizer = Optimizer.adam
    learning_rate: float = Field(1e-3, gt=0, le=10)
    momentum: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="For sgd, momentum (default 0.9) and rmsprop; sgd defaults to 0",
    )
    nesterov: bool = Field(False, description="Nesterov momentum, for sgd and momentum")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Decoupled weight decay")
    lr_schedule: Schedule = Schedule.constant
    decay_rate: float = Field(0.9, gt=0, le=1, description="Exponential decay factor")
    decay_steps: int | None = Field(
        None, ge=1, le=10_000_000, description="Steps per decay; default one epoch"
    )
    staircase: bool = Field(False, description="Exponential decay in whole steps")
    cosine_alpha: float = Field(0.0, ge=0, le=1, description="Final learning-rate fraction")
    warmup_epochs: float = Field(
        1.0, ge=0, le=100, description="one_cycle: epochs of linear warm-up to the peak rate"
    )
    activation: Activation = Activation.relu
    leaky_relu_slope: float = Field(0.01, gt=0, lt=1, description="Negative slope of leaky_relu")
    kernel_initializer: Initializer = Initializer.glorot_uniform
    initializer_value: float = Field(0.0, ge=-10, le=10, description="Value for constant")
    initializer_scale: float = Field(
        0.05, gt=0, le=10, description="random_uniform limit / random_normal stddev"
    )
    dropout: float = Field(0.0, ge=0, le=0.9)
    validation_split: float = Field(0.1, ge=0.05, le=0.5)
    early_stopping_patience: int = Field(0, ge=0, le=1000, description="0 turns it off")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    mixed_precision: bool | None = Field(
        None,
        description="Half-precision compute on a GPU (bfloat16 where the GPU has it, else "
        "float16); default: on when training on a GPU; always off on a CPU",
    )
    jit_compile: bool | None = Field(
        None,
        description="XLA-compile the training step; default: Keras's choice (always with JAX; "
        "on TensorFlow only on a GPU and without augmentation, whose image transform XLA "
        "cannot compile)",
    )
    max_train_samples: int | None = Field(
        None, ge=10, description="Train on the first N training rows only (quick jobs)"
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainingHyperparameters:
        if self.momentum is not None and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ValueError(
                f"momentum applies to sgd, momentum and rmsprop, not {self.optimizer.value}"
            )
        if self.nesterov and self.optimizer not in (Optimizer.sgd, Optimizer.momentum):
            raise ValueError("nesterov applies to sgd and momentum only")
        return self

    @property
    def effective_momentum(self) -> float:
        if self.momentum is not None:
            return self.momentum
        return 0.9 if self.optimizer is Optimizer.momentum else 0.0


_MLP_DEFAULTS: dict[str, Any] = {
    # The classic Keras MNIST MLP: 784-512 ReLU, dropout 0.2, softmax, Adam, batch 128.
    "epochs": 2,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "lr_schedule": "constant",
    "dropout": 0.2,
    "hidden_units": [512],
    "augment": False,
    "augment_uploads": False,
    "negatives": 0.0,
    "not_digit_gate": False,
    "kernel_initializer": "glorot_uniform",
}


_FINE_TUNE_DEFAULTS: dict[str, Any] = {
    # Fine-tuning nudges weights that already reach 99.6%: a tenth of the CNN's peak rate
    # (3e-4 learnt the style better than 1e-4 for the same MNIST validation accuracy), decayed
    # over one epoch (bench/RESULTS.md, "Learning from feedback").
    "epochs": 1,
    "learning_rate": 3e-4,
    "lr_schedule": "cosine",
}

NETWORK_FIELDS = (
    "architecture",
    "conv_filters",
    "hidden_units",
    "activation",
    "leaky_relu_slope",
    "augment",
    "dropout",
)
"""The fields that shape the network (and its weights): fine-tuning takes them from the served
version."""


def _document_defaults(schema: dict[str, Any]) -> None:
    for name, value in _MLP_DEFAULTS.items():
        schema["properties"][name]["x-mlp-default"] = value
    for name, value in _FINE_TUNE_DEFAULTS.items():
        schema["properties"][name]["x-fine-tune-default"] = value


class DigitHyperparameters(TrainingHyperparameters):
    """Digit classifier. The defaults shown are the CNN's; with architecture mlp, any field left
    out takes the classic MLP's default instead: 2 epochs, one hidden layer of 512 units,
    dropout 0.2, a constant learning rate of 0.001, no augmentation, no negatives, no
    not-a-digit gate, glorot_uniform."""

    # The MLP's defaults are also published per field as `x-mlp-default` in the JSON schema
    # (the web page's placeholders read them), and fine-tuning's as `x-fine-tune-default`.

    model_config = ConfigDict(json_schema_extra=_document_defaults)

    architecture: DigitArchitecture = DigitArchitecture.cnn
    epochs: int = Field(
        10,
        ge=0,
        le=100,
        description="Passes over the training data; 0, when starting from the served version, "
        "keeps its weights and trains only a new not-a-digit gate",
    )
    batch_size: int = Field(128, ge=1, le=4096)
    learning_rate: float = Field(3e-3, gt=0, le=10)
    lr_schedule: Schedule = Schedule.one_cycle
    cosine_alpha: float = Field(0.01, ge=0, le=1)
    dropout: float = Field(0.1, ge=0, le=0.9)
    kernel_initializer: Initializer = Initializer.he_uniform
    conv_filters: list[Annotated[int, Field(ge=1, le=256)]] = Field(
        [16, 32],
        min_length=1,
        max_length=3,
        description="CNN: filters of each convolution stage (each halves the image)",
    )
    hidden_units: list[Units] = Field(
        [128],
        max_length=6,
        description="Dense layers before the softmax (CNN head; the MLP's hidden layers)",
    )
    augment: bool = Field(
        True, description="Random rotation, zoom, shift and stroke thickness while training"
    )
    augment_uploads: bool = Field(
        False,
        description="Also what preprocessing leaves of a photo or scan while training: "
        "perspective and shear, fat and thin strokes, gaps, fragments of lines, blur, grain. "
        "Off by default: it is not yet measured to keep the default recipe's MNIST accuracy",
    )
    negatives: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Pictures holding no digit (letters, shapes, scribbles, textures) added to "
        "each epoch, as a share of the training rows (0.15 is the share measured); they teach "
        "the model to spread its probability, which the service's reject option reads. Off "
        "(0) by default: it costs MNIST accuracy (fine-tunes with it read 99.50 to 99.59 percent)",
    )
    not_digit_gate: bool = Field(
        True,
        description="After the classifier, train a small head on its frozen features that "
        "tells a digit from a picture holding none (trained on generated letters, shapes, "
        "scribbles and textures); where it sees no digit the ten probabilities are spread, "
        "which the service's reject option reads. It leaves the classifier's answers as they "
        "are and adds about a fifth to the default run's time",
    )
    loss: DigitLoss = DigitLoss.cross_entropy
    label_smoothing: float = Field(0.0, ge=0, le=0.3, description="For cross_entropy")
    user_samples: UserSamples = Field(
        UserSamples.none, description="none: MNIST only; accepted: MNIST plus accepted samples"
    )
    # 5 is the better of 5 and 20 on validation (bench/RESULTS.md, "Learning from feedback"):
    # with 160 trained samples beside 10,800 MNIST rows, 20 repeats learn the style a little
    # better but cost more than 0.1 points of MNIST validation accuracy. Against all 54,000
    # rows the same weight takes about 5 times as many repeats.
    user_samples_repeat: int = Field(
        5,
        ge=1,
        le=1000,
        description="accepted: times each trained user sample appears per epoch",
    )
    user_samples_holdout: float = Field(
        0.2,
        ge=0.05,
        le=0.5,
        description="accepted: share of each label's samples held out as a second test set",
    )
    start_from: StartFrom = Field(
        StartFrom.scratch,
        description="scratch: new weights; served: fine-tune the served version (defaults "
        "then 1 epoch, learning rate 0.0003, cosine)",
    )

    @model_validator(mode="before")
    @classmethod
    def _architecture_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if str(data.get("start_from", "")) == "served":
            data = {**_FINE_TUNE_DEFAULTS, **data}
        if str(data.get("architecture", "")) == "mlp":
            return {**_MLP_DEFAULTS, **data}
        return data

    @model_validator(mode="after")
    def _check_digit(self) -> DigitHyperparameters:
        if self.epochs == 0 and self.start_from is not StartFrom.served:
            raise ValueError("epochs 0 keeps a served network's weights: give start_from served")
        if self.label_smoothing and self.loss is not DigitLoss.cross_entropy:
            raise ValueError("label_smoothing applies to the cross_entropy loss only")
        if self.architecture is DigitArchitecture.mlp and not self.hidden_units:
            raise ValueError("the mlp architecture needs at least one hidden layer")
        return self


class MpgHyperparameters(TrainingHyperparameters):
    """Fuel-economy regressor. Normalisation and origin one-hot encoding are built into the
    exported model; `ensemble_size` networks are trained with different seeds and averaged."""

    epochs: int = Field(1000, ge=1, le=5000)
    batch_size: int = Field(32, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=10)
    validation_split: float = Field(
        0.1,
        ge=0.05,
        le=0.5,
        description="Each ensemble member holds out its own random share of the 314 rows",
    )
    early_stopping_patience: int = Field(50, ge=0, le=1000, description="0 turns it off")
    hidden_units: list[Units] = Field(
        [32, 32],
        min_length=1,
        max_length=6,
        description="Chosen by 5-fold cross-validation on the training rows (bench/RESULTS.md)",
    )
    loss: MpgLoss = MpgLoss.mae
    huber_delta: float = Field(1.0, gt=0, le=100, description="For huber")
    ensemble_size: int = Field(5, ge=1, le=10)
    log_features: bool = Field(
        True, description="Log-transform displacement, horsepower and weight"
    )
    target_transform: TargetTransform = Field(
        TargetTransform.mpg, description="What the networks learn before it is turned into mpg"
    )


MODEL_NAMES: tuple[str, ...] = ("digit", "mpg")
ModelName = Literal["digit", "mpg"]
HYPERPARAMETERS: dict[str, type[TrainingHyperparameters]] = {
    "digit": DigitHyperparameters,
    "mpg": MpgHyperparameters,
}
