"""The shell examples of the README and of the docs that hold the README's depth, as a reader
copies them (`make docs-check` runs this file).

Every command of every ```sh block is taken, kind by kind:

* `curl` examples run for real, in order (the README's first), against `python -m service api`
  on a fresh state folder seeded with the bundled models (no worker, so a job stays queued; no
  admin token, as after `make run`), from the repository folder, through bash, with
  `$PERCEPTRON_ADMIN_TOKEN` empty. Their HTTP status must be a success, and an answer written
  under an example (`# {"mpg":26.57,...}`) must match the real one;
* `.venv/bin/python -m training ...` and `.venv/bin/perceptron train ...` are parsed and
  validated by the real command line (training them would take minutes to an hour); `--help`
  runs;
* `make` targets must exist (`make --dry-run`), with their `ARGS` valid for the command line,
  and the settings a command sets before `make` (`PERCEPTRON_PORT=8001 make run`) must exist;
* `docker compose` needs a Docker engine: its profiles and services must exist in
  docker-compose.yml; `cp` sources must exist; `set -a; . ./.env; set +a` must load .env.example.

A command of another kind fails the test: teach this file how to check it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service.settings_doc import accepted_env_names
from tests.conftest import BUNDLED_MODELS, REPO
from training import versions

README = REPO / "README.md"
DOCUMENTS = (README, REPO / "docs" / "api.md", REPO / "docs" / "training.md")
"""The README and the pages its first steps send readers on to, in the order they are read."""
README_ORIGIN = "http://127.0.0.1:8000"
JOB_PLACEHOLDER = "4f1c..."
READY_TIMEOUT_S = 180.0


ENVIRONMENT_WORD = re.compile(r"^([A-Z_][A-Z0-9_]*)=")


@dataclass
class Example:
    line: int
    command: str
    expected: list[str] = field(default_factory=list)
    """The comment lines written under the command: what it prints."""
    document: str = "README.md"

    @property
    def words(self) -> list[str]:
        # As the shell reads it: a backslash-newline joins two lines.
        return shlex.split(self.command.replace("\\\n", " "), comments=True)

    @property
    def environment(self) -> dict[str, str]:
        """The variables set in front of the command (`PERCEPTRON_PORT=8001 make run`)."""
        assignments = itertools.takewhile(ENVIRONMENT_WORD.match, self.words)
        return dict(word.split("=", 1) for word in assignments)

    @property
    def argv(self) -> list[str]:
        return self.words[len(self.environment) :]

    @property
    def where(self) -> str:
        return f"{self.document} line {self.line}"


def readme_examples(text: str, document: str = "README.md") -> list[Example]:
    """The commands of the ```sh blocks, continuation lines and multi-line quotes joined."""
    examples: list[Example] = []
    in_block = False
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            in_block = line.strip() == "```sh" if not in_block else False
            continue
        if not in_block:
            continue
        if not pending:
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                if examples:
                    examples[-1].expected.append(line.lstrip()[1:].strip())
                continue
            start = number
        pending.append(line)
        joined = "\n".join(pending)
        if joined.endswith("\\"):
            continue
        try:
            shlex.split(joined, comments=True)
        except ValueError:  # a quote still open: the command goes on on the next line
            continue
        examples.append(Example(start, joined, document=document))
        pending = []
    assert not pending, f"{document} line {start}: unfinished command"
    return examples


EXAMPLES = [
    example
    for path in DOCUMENTS
    for example in readme_examples(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
]


def _kind(example: Example) -> str:
    argv = example.argv
    if argv[0] == "curl":
        return "curl"
    if argv[0] == "make":
        return "make"
    if argv[:2] == ["docker", "compose"]:
        return "docker"
    if argv[:3] == [".venv/bin/python", "-m", "training"]:
        return "training"
    if argv[:2] == [".venv/bin/perceptron", "train"]:
        return "training"
    if argv[0] == "cp":
        return "cp"
    if argv == shlex.split("set -a; . ./.env; set +a"):
        return "load-env"
    return "unknown"


def _of_kind(kind: str) -> list[Example]:
    return [e for e in EXAMPLES if _kind(e) == kind]


def _ids(examples: list[Example]) -> list[str]:
    return [f"{Path(e.document).stem}-line{e.line}" for e in examples]


def test_every_example_is_of_a_kind_this_file_checks() -> None:
    assert len(EXAMPLES) > 30
    unknown = [f"{e.where}: {e.command}" for e in EXAMPLES if _kind(e) == "unknown"]
    assert not unknown


def test_variables_set_before_a_command_are_settings() -> None:
    """`PERCEPTRON_PORT=8001 make run` names a setting the service reads (or the Makefile's
    PYTHON), and only `make` commands are written that way."""
    known = accepted_env_names() | {"PYTHON"}
    with_environment = [e for e in EXAMPLES if e.environment]
    assert any("PERCEPTRON_PORT" in e.environment for e in with_environment)
    for example in with_environment:
        assert set(example.environment) <= known, example.where
        assert _kind(example) == "make", example.where


# -- the training command line ------------------------------------------------------------


def _training_argv(example: Example) -> list[str]:
    argv = example.argv
    return argv[3:] if argv[0] == ".venv/bin/python" else argv[2:]


@pytest.mark.parametrize("example", _of_kind("training"), ids=_ids(_of_kind("training")))
def test_training_commands_parse_and_validate(example: Example) -> None:
    from training.cli import _hyperparameters, build_parser
    from training.hyperparameters import HYPERPARAMETERS

    argv = _training_argv(example)
    if "--help" in argv:
        result = subprocess.run(
            [sys.executable, "-m", "training", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0 and "--learning-rate" in result.stdout, result.stderr
        return
    options = build_parser().parse_args(argv)
    schema = HYPERPARAMETERS[options.model]
    schema.model_validate(_hyperparameters(schema, options))


def test_every_example_script_is_installed_by_make() -> None:
    """The README's `.venv/bin/...` programs: python from the venv, the others from
    pyproject's console scripts (installed by `make develop`, which make run/test run)."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for example in EXAMPLES:
        program = example.argv[0]
        if program.startswith(".venv/bin/") and program != ".venv/bin/python":
            assert f'\n{program.removeprefix(".venv/bin/")} = "' in pyproject, program
    assert "\nrun: develop\n" in makefile
    assert "install-dev:\n\t@$(MAKE) --no-print-directory develop" in makefile


# -- make, docker, files ------------------------------------------------------------------


@pytest.mark.parametrize("example", _of_kind("make"), ids=_ids(_of_kind("make")))
def test_make_targets_exist(example: Example, tmp_path: Path) -> None:
    argv = example.argv
    target = argv[1]
    variables = dict(word.split("=", 1) for word in argv[2:] if "=" in word)
    result = subprocess.run(
        # A venv path that does not exist: the dry run prints the recipe without touching .venv.
        ["make", "--dry-run", "-C", str(REPO), target, f"VENV={tmp_path / 'venv'}"]
        + [f"{k}={v}" for k, v in variables.items()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if "ARGS" in variables:
        from training.cli import build_parser

        model = target.removeprefix("train-")
        assert f"-m training {model} {variables['ARGS']}" in result.stdout
        build_parser().parse_args([model, *shlex.split(variables["ARGS"])])


@pytest.mark.parametrize("example", _of_kind("docker"), ids=_ids(_of_kind("docker")))
def test_docker_compose_examples_name_real_profiles_and_services(example: Example) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    argv = example.argv
    for option, value in itertools.pairwise(argv):
        if option == "--profile":
            assert value in profiles, value
        if option == "--scale":
            assert value.split("=")[0] in services, value


@pytest.mark.parametrize("example", _of_kind("cp"), ids=_ids(_of_kind("cp")))
def test_copied_files_exist(example: Example) -> None:
    assert (REPO / example.argv[1]).is_file(), example.argv[1]


def test_loading_env_gives_the_shell_the_token(tmp_path: Path) -> None:
    [example] = _of_kind("load-env")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        ["bash", "-c", example.command + '\nprintf %s "$PERCEPTRON_ADMIN_TOKEN"'],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "change-me", result.stderr


# -- curl against a live service --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def readme_service(root: Path, bundled: Path) -> Iterator[str]:
    """`python -m service api` as `make run` starts it, minus the worker (a job stays queued,
    so nothing trains): a fresh state folder under `root`, which the start seeds from the
    bundled versions in `bundled`. Yields its origin once it is ready."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    env.update(
        PYTHONPATH=str(REPO),
        TF_CPP_MIN_LOG_LEVEL="2",
        PERCEPTRON_PORT=str(port),
        PERCEPTRON_STATE_DIR=str(root / "var"),
        PERCEPTRON_BUNDLED_MODELS_DIR=str(bundled),
    )
    log = root / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "api"],
            cwd=root,  # no .env from the checkout
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(origin + "/readyz", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "the service did not become ready"
                time.sleep(0.5)
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def live_origin(tmp_path_factory: pytest.TempPathFactory, bundled_models: Path) -> Iterator[str]:
    with readme_service(tmp_path_factory.mktemp("readme"), bundled_models) as origin:
        yield origin


STATUS_MARK = "\n@@status="


def _run_curl(example: Example, origin: str, job_id: str | None) -> tuple[int, str, int]:
    """Runs the example as written (through bash, from the repository folder) and answers
    curl's exit status, its output and the HTTP status."""
    command = example.command.replace(README_ORIGIN, origin)
    if JOB_PLACEHOLDER in command:
        assert job_id, f"{example.where} needs a job created by an earlier example"
        command = command.replace(JOB_PLACEHOLDER, job_id)
    streaming = " -N " in f" {command} "
    extra = f"-sS --max-time {3 if streaming else 30} -w '{STATUS_MARK}%{{http_code}}'"
    command = command.replace("curl ", f"curl {extra} ", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    env["PERCEPTRON_ADMIN_TOKEN"] = ""  # as after `make run` with no .env
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output, _, status = result.stdout.rpartition(STATUS_MARK)
    if streaming and result.returncode == 28:  # the stream of a queued job stays open
        return 0, result.stdout, 200
    assert status.strip().isdigit(), (example.command, result.stdout, result.stderr)
    return result.returncode, output, int(status)


def _expected_fields(expected: list[str]) -> dict[str, object]:
    """`"key":value` pairs with plain values in the example's output comment."""
    text = " ".join(line for line in expected if line.startswith("{"))
    fields: dict[str, object] = {}
    for key, value in re.findall(r'"(\w+)":\s*(-?\d+(?:\.\d+)?|"[^"]*"|\[\])', text):
        fields[key] = json.loads(value)
    return fields


def check_curl_examples(origin: str) -> None:
    """Runs every curl example in reading order and checks its status and written answer."""
    curls = _of_kind("curl")
    assert len(curls) >= 15
    job_id = None
    for example in curls:
        exit_code, output, status = _run_curl(example, origin, job_id)
        where = f"{example.where}: {example.command}\n{output[-1500:]}"
        assert exit_code == 0, where
        assert 200 <= status < 300, where
        location = re.search(r"^location: /jobs/([0-9a-f-]+)", output, re.MULTILINE | re.I)
        if location:
            job_id = location.group(1)
        for line in example.expected:
            if line.startswith("HTTP/1.1 "):
                assert status == int(line.split()[1]), where
        wanted = _expected_fields(example.expected)
        if wanted:
            answer = json.loads(output)
            for key, value in wanted.items():
                if isinstance(value, float):
                    assert answer[key] == pytest.approx(value, abs=0.005), (key, where)
                else:
                    assert answer[key] == value, (key, where)
    assert job_id, "no example created a job"


def test_curl_examples_work_as_written(live_origin: str) -> None:
    check_curl_examples(live_origin)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.slow
def test_a_version_trained_from_the_command_line_leaves_the_readme_checks_passing(
    tmp_path: Path, data_paths, bundled_models: Path
) -> None:
    """A reader follows the README: trains an mpg version that is served whatever its figures
    (`--promote always`), as `.venv/bin/python -m training mpg` does from the checkout, with
    every default path. It lands in the state folder, is served there, and changes neither the
    repository's bundled models nor what the README's checks see."""
    checkout = tmp_path / "checkout"  # the folder the command runs in: its var/ is the state
    checkout.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    if data_paths.data_dir is not None:
        env["DATA_DIR"] = str(data_paths.data_dir)
    env["PERCEPTRON_CACHE_DIR"] = str(data_paths.cache_dir)
    bundled_before = _snapshot(BUNDLED_MODELS)
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "mpg",
            "--epochs",
            "5",
            "--ensemble-size",
            "1",
            "--early-stopping-patience",
            "0",
            "--promote",
            "always",
        ],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    state_models = checkout / "var" / "models"
    new_version = versions.list_versions(state_models, "mpg")[-1]
    assert new_version > max(versions.list_versions(bundled_models, "mpg"))
    assert f"written to var/models/mpg/{new_version}" in trained.stdout
    assert versions.served_version(state_models, "mpg") == new_version
    assert _snapshot(BUNDLED_MODELS) == bundled_before, "training wrote into models/"

    with readme_service(tmp_path / "readme", bundled_models) as origin:
        check_curl_examples(origin)
