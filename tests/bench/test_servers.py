"""bench.servers: what a server under test is started with (starting one is `python -m bench`'s
job, not a test's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.servers import ServerSpec, _environment


def test_a_server_serves_exactly_the_folder_named_with_a_private_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERCEPTRON_ADMIN_TOKEN", "from-the-shell")
    models = tmp_path / "models"
    env = _environment(ServerSpec("ours", models, env={"PERCEPTRON_WORKERS": "2"}), 8123, tmp_path)
    assert env["PERCEPTRON_MODELS_DIR"] == str(models.resolve())
    assert env["PERCEPTRON_BUNDLED_MODELS_DIR"] == ""  # no seeds copied into the folder measured
    assert env["PERCEPTRON_STATE_DIR"] == str(tmp_path)
    assert (env["PERCEPTRON_PORT"], env["PERCEPTRON_WORKERS"]) == ("8123", "2")
    assert "PERCEPTRON_ADMIN_TOKEN" not in env  # the shell's settings do not leak in
    single = _environment(ServerSpec("ours-1", models), 8123, tmp_path)
    assert single["PERCEPTRON_WORKERS"] == "1"
