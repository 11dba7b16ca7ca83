"""The settings training needs: where the data sets, their download cache and the models are,
and the serving policy's pins (promotion compares a new version with the one served).

Versions are written to the models folder, in the state folder by default; the versions bundled
with the code are read-only seeds copied into it (training/bundled.py).

Each field is read from `PERCEPTRON_<FIELD>` (upper case), or from a `.env` file in the working
folder. The service's settings (`service.settings.Settings`) extend this class, so training and
the service read the same variables the same way, and training needs nothing from the service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
"""The trained versions shipped with the code: the repository's `models/` folder, `/app/models`
in the container image."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perceptron"


class TrainingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PERCEPTRON_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    state_dir: Path = Path("var")
    """Folder of what the service writes: the trained model versions (models_dir), the
    default job database and queue."""
    models_dir: Path = Field(default_factory=lambda data: Path(data["state_dir"]) / "models")
    """Folder of the versioned SavedModels that are served, `<models_dir>/<name>/<integer
    version>/`, with the pins (`pin.json`): trained versions are written here, and every
    bundled version it lacks is copied here when the service, a worker or training starts."""
    bundled_models_dir: Path | None = Field(default_factory=lambda: BUNDLED_MODELS_DIR)
    """The versions shipped with the code, read-only seeds of models_dir (empty: none).
    `python -m service reset-models` returns models_dir to exactly these."""
    data_dir: Path | None = Field(
        None, validation_alias=AliasChoices("PERCEPTRON_DATA_DIR", "DATA_DIR", "data_dir")
    )
    """Folder holding mnist.npz and auto-mpg.data (also read from DATA_DIR)."""
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    """Where data sets are downloaded when the data folder lacks them."""
    download_data: bool = True
    """Download missing data sets from their canonical locations."""
    pinned_versions: dict[str, int] = Field(default_factory=dict)
    """Versions to serve instead of the newest, as JSON: {"digit": 3}. The API's pin wins."""

    @field_validator("data_dir", "bundled_models_dir", mode="before")
    @classmethod
    def _blank_folder_means_unset(cls, value: Any) -> Any:
        # Compose files pass `VAR=${VAR:-}`: an empty value must mean "not configured".
        return None if isinstance(value, str) and not value.strip() else value


def describe_settings_error(error: ValidationError) -> str:
    """One line for a person starting a command with bad settings: each problem with the
    environment variable to change, instead of pydantic's multi-line report."""
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in item["loc"])
        name = f"PERCEPTRON_{field.upper()}" if field else ""
        problems.append(message if not name or name in message else f"{name}: {message}")
    return "cannot start: " + "; ".join(problems)
