"""`make develop` (run by `make run` and `make test`): the project installed in editable mode,
offline, so `.venv/bin/perceptron` and `.venv/bin/perceptron-train` exist as the README says."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO


def _venv_over_the_locked_dependencies(root: Path) -> Path:
    """A fresh venv that sees the locked dependencies of the one running the tests (through a
    .pth file) but not the project: what `make install` leaves behind, without the download."""
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages")]
    ours = ours or [sysconfig.get_paths()["purelib"]]
    (site_packages / "locked.pth").write_text("\n".join(ours) + "\n")
    for lock in (REPO / "requirements").glob("*.lock"):
        (venv / f".installed-{lock.stem}").touch()  # the lock is installed: make skips it
    return venv


def test_make_develop_installs_the_console_scripts_offline(tmp_path: Path) -> None:
    venv = _venv_over_the_locked_dependencies(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERCEPTRON_", "PIP_"))}
    # No index can be reached: the install must not need one.
    env.update(PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_NO_INDEX="1")
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "develop", f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    scripts = {
        "perceptron": ["train", "mpg", "--help"],
        "perceptron-train": ["digit", "--help"],
    }
    for script, args in scripts.items():
        run = subprocess.run(
            [str(venv / "bin" / script), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # from any folder: the script finds the editable project
            env=env,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "--learning-rate" in run.stdout and "--promote" in run.stdout
    service_help = subprocess.run(
        [str(venv / "bin" / "perceptron"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert "{api,worker,run,train,healthcheck,migrate,reset-models}" in service_help.stdout
