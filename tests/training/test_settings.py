"""Training owns its settings; the service's extend them, never the other way round."""

from __future__ import annotations

import ast

from service.settings import Settings
from tests.conftest import REPO
from training.settings import TrainingSettings


def test_training_imports_nothing_from_the_service() -> None:
    offenders = []
    for path in sorted((REPO / "training").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "service"]
    assert offenders == []


def test_the_service_reads_the_training_settings_the_same_way(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERCEPTRON_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PERCEPTRON_PINNED_VERSIONS", '{"mpg": 3}')
    training = TrainingSettings(_env_file=None)  # type: ignore[call-arg]
    service = Settings(_env_file=None)  # type: ignore[call-arg]
    assert set(TrainingSettings.model_fields) < set(Settings.model_fields)
    for name in TrainingSettings.model_fields:
        assert getattr(service, name) == getattr(training, name), name
    assert training.data_dir == tmp_path / "data" and training.pinned_versions == {"mpg": 3}
