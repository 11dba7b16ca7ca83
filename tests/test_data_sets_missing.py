"""Without the data sets, the tests that need them are skipped with the reason, and
`-m "not data"` (make test-fast) runs none of them; a DATA_DIR that is set but empty fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# One test that reads a data set directly, one that needs the tiny models trained from them
# (so it is marked `data` by the conftest, not by hand), one that needs neither.
DIRECT = "tests/training/test_data.py::test_real_mnist_has_the_keras_layout"
INDIRECT = "tests/service/test_registry.py::test_pin_body_is_validated"
NO_DATA = "tests/service/test_start_errors.py::test_a_bad_value_names_its_variable"


def _pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_") and k != "DATA_DIR"
    }
    environment.update(
        PERCEPTRON_CACHE_DIR=str(tmp_path / "empty-cache"),
        PERCEPTRON_DOWNLOAD_DATA="false",  # as offline: nothing may be fetched
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_the_data_sets_their_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    result = _pytest(tmp_path, DIRECT, INDIRECT, NO_DATA)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout and "skipped" in result.stdout, result.stdout[-3000:]
    assert "needs the data sets, which are not available here: mnist.npz not found" in (
        result.stdout
    )
    assert "error" not in result.stdout.lower().split("short test summary")[-1]


def test_not_data_selects_only_tests_that_need_no_data(tmp_path: Path) -> None:
    result = _pytest(tmp_path, "-m", "not data", DIRECT, INDIRECT, NO_DATA)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout and "deselected" in result.stdout
    assert "skipped" not in result.stdout


def test_a_data_dir_that_is_set_but_empty_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = _pytest(tmp_path, INDIRECT, DATA_DIR=str(tmp_path / "data"))
    assert result.returncode != 0
    assert f"DATA_DIR={tmp_path / 'data'} is set but unusable" in result.stdout
