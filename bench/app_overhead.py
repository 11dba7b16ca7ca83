"""The service's own cost per request, without HTTP: the ASGI app called in process with the
bench's request bodies, so what is measured is our code and FastAPI's, not uvicorn, the load
tool or the kernel. CPU is read for the whole process and for the event loop's thread alone
(the model runs on its own thread).

`--against REV` measures an earlier commit the same way in the same run (a git worktree of it,
rounds alternating), which is how the per-request changes of issue 15 were compared:

    python -m bench overhead --against 2b5ab07 --requests mpg-one:32,digit-canvas:1

Run on its own (`python bench/app_overhead.py ...`) it measures the code on PYTHONPATH: that is
how the worktree of `--against` is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MULTIPART = "multipart/form-data; boundary=perceptron-bench-boundary"
"""As bench.payloads.MULTIPART (imported there; not here, where the code measured may be an
older commit's)."""
BODIES = {"mpg-one": ("/mpg", "application/json"), "digit-canvas": ("/digit", MULTIPART)}
WARMUP_REQUESTS = 200


def measure(payloads: Path, name: str, concurrency: int, requests: int) -> dict[str, float]:
    """One round in this process: req/s, CPU ms per request (process and loop thread)."""
    from service.app import create_app
    from service.logs import configure_logging
    from service.settings import Settings

    path, content_type = BODIES[name]
    body = (payloads / f"{name}.body").read_bytes()
    settings = Settings()
    configure_logging("INFO", json_lines=True)
    # The access log is formatted and written, as when serving, to a file that costs nothing.
    logging.getLogger().handlers[0].stream = Path(os.devnull).open("w")  # noqa: SIM115
    app = create_app(settings)
    headers = [
        (b"host", b"localhost"),
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        if status != 200:
            raise SystemExit(f"{name}: answered {status}")

    async def run() -> dict[str, float]:
        async with app.router.lifespan_context(app):
            for _ in range(WARMUP_REQUESTS):
                await one()
            left = requests

            async def client() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await one()

            wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            loop = time.thread_time() - loop
        return {
            "rps": requests / wall,
            "cpu_ms": cpu / requests * 1000,
            "loop_cpu_ms": loop / requests * 1000,
        }

    return asyncio.run(run())


def _round_in_subprocess(
    root: Path, payloads: Path, models_dir: Path, name: str, concurrency: int, requests: int
) -> dict[str, float]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PERCEPTRON_")},
        "PYTHONPATH": str(root),
        "PERCEPTRON_WORKERS": "1",
        "PERCEPTRON_MODELS_DIR": str(models_dir.resolve()),
    }
    with tempfile.TemporaryDirectory(prefix="overhead-") as state:
        env["PERCEPTRON_STATE_DIR"] = state
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--payloads",
            str(payloads),
            "--one",
            f"{name}:{concurrency}:{requests}",
        ]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the measurement in {root} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(
    repo: Path,
    against: str | None,
    requests: list[tuple[str, int]],
    count: int,
    rounds: int,
    models_dir: Path,
) -> list[dict[str, Any]]:
    """Median over `rounds` of each request kind at its concurrency, for this checkout and,
    with `against`, for that commit, rounds alternating."""
    from bench.payloads import build

    with tempfile.TemporaryDirectory(prefix="overhead-") as scratch:
        payloads = Path(scratch) / "payloads"
        build(payloads)
        roots = {"this checkout": repo}
        if against:
            worktree = Path(scratch) / "against"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(worktree), against],
                cwd=repo,
                check=True,
                capture_output=True,
            )
            roots = {against: worktree, "this checkout": repo}
        try:
            rows = []
            for name, concurrency in requests:
                samples: dict[str, list[dict[str, float]]] = {label: [] for label in roots}
                for _ in range(rounds):
                    for label, root in roots.items():
                        samples[label].append(
                            _round_in_subprocess(
                                root, payloads, models_dir, name, concurrency, count
                            )
                        )
                for label, results in samples.items():
                    rows.append(
                        {
                            "code": label,
                            "request": name,
                            "c": concurrency,
                            **{
                                key: statistics.median(r[key] for r in results)
                                for key in ("rps", "cpu_ms", "loop_cpu_ms")
                            },
                        }
                    )
            return rows
        finally:
            if against:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(worktree)],
                    cwd=repo,
                    capture_output=True,
                )


def render(rows: list[dict[str, Any]], rounds: int) -> str:
    lines = [
        f"Medians of {rounds} rounds, each a fresh process, rounds alternating.",
        "",
        "| code | request | c | req/s | CPU ms/req | loop thread CPU ms/req |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['code']} | {row['request']} | {row['c']} | {row['rps']:,.0f} | "
            f"{row['cpu_ms']:.3f} | {row['loop_cpu_ms']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python bench/app_overhead.py")
    parser.add_argument("--payloads", type=Path, required=True)
    parser.add_argument("--one", required=True, metavar="NAME:C:N")
    options = parser.parse_args()
    name, concurrency, count = options.one.split(":")
    print(json.dumps(measure(options.payloads, name, int(concurrency), int(count))))


if __name__ == "__main__":
    main()
