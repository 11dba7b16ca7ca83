"""Load generation with wrk (Debian's package; `make browser-deps` installs it).

Every run is closed-loop: `concurrency` connections, each sending its next request as soon as
the previous answer arrives, for `seconds`. A warm-up run of the same shape comes first and is
discarded. A Lua hook makes wrk print its figures as one JSON line, parsed into `LoadResult`
(tested on canned output without running anything).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.payloads import Payload
from bench.procstat import cpu_seconds, wait_idle

REQUEST_TIMEOUT_S = 60
"""Long enough for 64-image uploads queued behind 31 others at concurrency 32."""

_WRK_SCRIPT = """\
local file = assert(io.open({path}, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = {content_type}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\\nBENCH-JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"non_2xx\\": %d, " ..
    "\\"socket_errors\\": %d, \\"p50_us\\": %d, \\"p95_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"mean_us\\": %.1f, \\"max_us\\": %d}}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    """Requests answered (any status) during the measured run."""
    seconds: float
    errors: int
    """Non-2xx answers plus socket errors and timeouts."""
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        """Successful (2xx) requests per second: errors, 503s included, do not count."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Measurement:
    """One load run against one server: the tool's view plus the server's CPU."""

    load: LoadResult
    server_cpu_s: float
    client_cpu_s: float

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.load.requests if self.load.requests else 0.0


# -- parsers ---------------------------------------------------------------------------------


def parse_wrk(output: str) -> LoadResult:
    """Parses the line our wrk script's `done` hook writes."""
    match = re.search(r"^BENCH-JSON (\{.*\})$", output, re.MULTILINE)
    if not match:
        raise ValueError(f"no BENCH-JSON line in wrk's output:\n{output[-2000:]}")
    data = json.loads(match.group(1))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["non_2xx"] + data["socket_errors"],
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# -- runners ---------------------------------------------------------------------------------


def check_tool() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or make browser-deps)")


def command(url: str, payload: Payload, concurrency: int, seconds: float, out: Path) -> list[str]:
    """wrk's command line for one closed-loop run (its script is written to `out`)."""
    script = out / f"{payload.name}.lua"
    path, content_type = json.dumps(str(payload.path)), json.dumps(payload.content_type)
    script.write_text(_WRK_SCRIPT.format(path=path, content_type=content_type))
    return [
        "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT_S}s", "-s", str(script), url,
    ]  # fmt: skip


def _run_tool(command: list[str]) -> tuple[str, float]:
    """Runs wrk; returns its output and the CPU seconds it used."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output[-2000:]}")
    return output, usage.ru_utime + usage.ru_stime


def measure(
    url: str,
    payload: Payload,
    *,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    server_pid: int,
    out: Path,
    label: str,
) -> Measurement:
    """Warms up (discarded), then measures one closed-loop run; keeps the raw output."""
    out.mkdir(parents=True, exist_ok=True)
    wait_idle(server_pid)
    if warmup_s > 0:
        _run_tool(command(url, payload, concurrency, warmup_s, out))
        wait_idle(server_pid)
    argv = command(url, payload, concurrency, seconds, out)
    cpu_before = cpu_seconds(server_pid)
    output, client_cpu = _run_tool(argv)
    # Sampled around the whole tool run: before its first and after its last request the
    # server is idle, so this is the CPU the measured requests cost.
    server_cpu = cpu_seconds(server_pid) - cpu_before
    (out / f"{label}.txt").write_text(" ".join(argv) + "\n\n" + output)
    return Measurement(parse_wrk(output), server_cpu, client_cpu)
