"""Mixed closed-loop traffic for the soak test: `concurrency` clients, each sending its next
request as soon as the previous answer arrives, every request drawn at random from a weighted
mix (a digit upload, one car, a job-status poll).

wrk and hey send one fixed request; the soak needs several kinds and a URL that changes once
the training job exists, so this is a small asyncio client instead, one keep-alive connection
per client (`bench.http_connection`). It runs in the harness process, on the same cores as
the service, like the load tools do.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.http_connection import HttpConnection, ProtocolError

REQUEST_TIMEOUT_S = 60.0
FAILURES_KEPT = 50


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: `prepare` returns what to send now (method, path, body,
    content type), so a path may change during the run."""

    name: str
    weight: float
    prepare: Callable[[], tuple[str, str, bytes, str | None]]


@dataclass
class Tally:
    """What one traffic phase saw, per kind of request."""

    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    """The first failed requests, with when they were sent: to tie an error to an event."""
    began: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def record(self, kind: str, outcome: str, latency_ms: float) -> None:
        self.latencies_ms.setdefault(kind, []).append(latency_ms)
        self.statuses.setdefault(kind, Counter())[outcome] += 1
        if not outcome.startswith("2") and len(self.failures) < FAILURES_KEPT:
            sent = time.monotonic() - self.began - latency_ms / 1000
            self.failures.append(
                {"sent_at_s": round(sent, 2), "kind": kind, "outcome": outcome,
                 "latency_ms": round(latency_ms, 1)}
            )  # fmt: skip

    @property
    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.statuses.values())

    @property
    def errors(self) -> int:
        """Answers other than 2xx, and requests that got no answer at all."""
        return sum(n for c in self.statuses.values() for k, n in c.items() if not k.startswith("2"))

    def summary(self) -> dict[str, Any]:
        every = [x for values in self.latencies_ms.values() for x in values]
        kinds = {
            name: {"requests": len(values), **percentiles(values),
                   "outcomes": dict(self.statuses[name])}
            for name, values in sorted(self.latencies_ms.items())
        }  # fmt: skip
        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "errors": self.errors,
            "rps": self.requests / self.seconds if self.seconds else 0.0,
            **percentiles(every),
            "kinds": kinds,
            "failures": self.failures,
        }


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0)}


async def _client_loop(
    connection: HttpConnection,
    kinds: list[Kind],
    deadline: float,
    tally: Tally,
    rng: random.Random,
) -> None:
    weights = [k.weight for k in kinds]
    try:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            began = time.perf_counter()
            try:
                outcome = str(await connection.request(*kind.prepare()))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
                outcome = type(exc).__name__
            tally.record(kind.name, outcome, (time.perf_counter() - began) * 1000)
    finally:
        await connection.close()


async def run_traffic(
    host: str, port: int, kinds: list[Kind], *, concurrency: int, seconds: float, seed: int = 0
) -> Tally:
    """Runs the mix for `seconds` on `concurrency` connections; requests still in flight at
    the deadline are finished and counted (a closed loop never abandons one, so the service is
    never left with a backlog)."""
    tally = Tally()
    deadline = tally.began + seconds
    await asyncio.gather(
        *(
            _client_loop(
                HttpConnection(host, port, timeout_s=REQUEST_TIMEOUT_S),
                kinds,
                deadline,
                tally,
                random.Random(seed * 1000 + i),
            )
            for i in range(concurrency)
        )
    )
    tally.seconds = time.monotonic() - tally.began
    return tally
