"""training.cli: `python -m training digit|mpg [options]`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from training import cli, versions
from training.hyperparameters import DigitHyperparameters, MpgHyperparameters
from training.pipeline import DataPaths

REPO = Path(__file__).resolve().parents[2]


def _python_m_training(
    *args: str, cwd: Path = REPO, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs the command line as a user would, free of this shell's PERCEPTRON_* settings (and,
    given another `cwd`, of any .env file in the checkout)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    environment.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO), **env})
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "schema"), [("digit", DigitHyperparameters), ("mpg", MpgHyperparameters)]
)
def test_help_lists_every_hyperparameter_as_an_option(name: str, schema: type) -> None:
    result = _python_m_training(name, "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    for field, info in schema.model_fields.items():
        option = "--" + field.replace("_", "-")
        assert option in result.stdout, option
        if info.annotation is bool:
            assert "--no-" + field.replace("_", "-") in result.stdout
    for option in (
        "--data-dir",
        "--models-dir",
        "--cache-dir",
        "--no-download",
        "--promote",
        "--seed",
    ):
        assert option in result.stdout


def test_help_shows_choices_and_defaults() -> None:
    result = _python_m_training("digit", "--help", timeout=60)
    assert "{cnn,mlp}" in result.stdout
    assert "{sgd,momentum,adam,adamw,adagrad,rmsprop,adadelta,adamax,nadam}" in result.stdout
    epochs_help = result.stdout.split("--epochs EPOCHS", 2)[2].split("\n  --")[0]
    assert epochs_help.endswith("(default: 10)")  # the default CNN's


@pytest.mark.parametrize("name", ["digit", "mpg"])
def test_the_promote_default_is_the_apis(name: str) -> None:
    """A quick run from the command line must not replace a better served model: the command
    line promotes as POST /jobs does unless told otherwise."""
    from service.schemas.jobs import DigitJobRequest

    options = cli.build_parser().parse_args([name])
    assert options.promote == DigitJobRequest.model_fields["promote"].default.value == "auto"
    assert cli.build_parser().parse_args([name, "--promote", "always"]).promote == "always"


def test_an_invalid_value_exits_2_naming_the_option() -> None:
    result = _python_m_training("mpg", "--epochs", "0", timeout=60)
    assert result.returncode == 2
    assert "--epochs: Input should be greater than or equal to 1" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["digit", "--epochs", "-1"], "--epochs: Input should be greater than or equal to 0"),
        (["digit", "--epochs", "0"], "epochs 0 keeps a served network's weights: give start_from"),
        (["digit", "--epochs", "1000"], "--epochs: Input should be less than or equal to 100"),
        (["mpg", "--learning-rate", "-1"], "--learning-rate: Input should be greater than 0"),
        (["mpg", "--learning-rate", "fast"], "--learning-rate: Input should be a valid number"),
        (["digit", "--dropout", "0.95"], "--dropout: Input should be less than or equal to 0.9"),
        (
            ["mpg", "--hidden-units", "64,100000"],
            "--hidden-units: Input should be less than or equal to 2048",
        ),
        (["mpg", "--hidden-units", "16,abc"], "--hidden-units: Input should be a valid integer"),
        (["digit", "--optimizer", "sgdd"], "argument --optimizer: invalid choice: 'sgdd'"),
        (["digit", "--activation", "relu6"], "argument --activation: invalid choice: 'relu6'"),
        (["mpg", "--conv-filters", "8"], "unrecognized arguments: --conv-filters 8"),
        (
            ["digit", "--optimizer", "adam", "--momentum", "0.5"],
            "momentum applies to sgd, momentum and rmsprop",
        ),
        (["resnet"], "invalid choice: 'resnet'"),
    ],
)
def test_invalid_options_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert expected in capsys.readouterr().err


def test_options_become_validated_hyperparameters() -> None:
    options = cli.build_parser().parse_args(
        ["mpg", "--hidden-units", "32,16", "--no-log-features", "--learning-rate", "0.01",
         "--optimizer", "momentum", "--nesterov", "--loss", "huber", "--seed", "7"]
    )  # fmt: skip
    hp = MpgHyperparameters.model_validate(cli._hyperparameters(MpgHyperparameters, options))
    assert hp.hidden_units == [32, 16]
    assert hp.log_features is False
    assert hp.learning_rate == 0.01
    assert (hp.optimizer, hp.nesterov, hp.loss, hp.seed) == ("momentum", True, "huber", 7)
    # Options not given are left to the schema's defaults (the mlp's classic ones included).
    options = cli.build_parser().parse_args(["digit", "--architecture", "mlp"])
    digit = DigitHyperparameters.model_validate(cli._hyperparameters(DigitHyperparameters, options))
    assert digit == DigitHyperparameters.model_validate({"architecture": "mlp"})


def test_missing_data_exits_1_with_the_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    code = cli.main(
        ["mpg", "--data-dir", str(empty), "--cache-dir", str(tmp_path / "cache"), "--no-download",
         "--models-dir", str(tmp_path / "models"), "--epochs", "1"]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: auto-mpg.data not found")
    assert str(empty / "auto-mpg.data") in err
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
@pytest.mark.data
def test_a_tiny_real_run_prints_a_summary_and_writes_version_1_then_2(
    tmp_path: Path, data_paths: DataPaths
) -> None:
    models = tmp_path / "models"
    args = ["mpg", "--epochs", "5", "--ensemble-size", "1", "--models-dir", str(models)]
    args += ["--cache-dir", str(data_paths.cache_dir)]
    env = {"DATA_DIR": str(data_paths.data_dir)} if data_paths.data_dir else {}
    # A folder of its own, without the bundled versions a models folder otherwise starts from.
    env["PERCEPTRON_BUNDLED_MODELS_DIR"] = ""
    for version in (1, 2):
        result = _python_m_training(*args, cwd=tmp_path, **env)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "training on CPU: 5 epochs" in out or "training on GPU" in out
        assert "[member 1/1] epoch 5/5" in out
        assert "eta" in out
        assert f"mpg version {version}: test MAE " in out
        if version == 1:  # the default policy is auto: the first version has no rival
            assert "  served: no version is served yet" in out
        else:
            assert re.search(r"  (served|not served): test mae \S+ is .* version 1's", out), out
        assert f"  written to {models / 'mpg' / str(version)}" in out
        assert versions.list_versions(models, "mpg") == list(range(1, version + 1))
    metadata = versions.read_metadata(models / "mpg" / "2")
    assert metadata is not None
    assert metadata["version"] == 2
    assert metadata["command"] == "python -m training " + " ".join(args)
    assert (
        metadata["hyperparameters"]["epochs"],
        metadata["hyperparameters"]["ensemble_size"],
    ) == (5, 1)
    assert len(metadata["history"]) == 5
    assert f"test MAE {metadata['metrics']['mae']:.3f} mpg" in out


def test_a_preset_sets_its_values_and_options_beside_it_win() -> None:
    from training.presets import DIGIT_PRESETS

    options = cli.build_parser().parse_args(["digit", "--preset", "best", "--epochs", "3"])
    hp = DigitHyperparameters.model_validate(cli._hyperparameters(DigitHyperparameters, options))
    assert hp == DigitHyperparameters.model_validate({**DIGIT_PRESETS["best"], "epochs": 3})
    assert hp.conv_filters == [32, 64] and hp.epochs == 3
    plain = cli.build_parser().parse_args(["digit"])
    assert cli._hyperparameters(DigitHyperparameters, plain) == {}
