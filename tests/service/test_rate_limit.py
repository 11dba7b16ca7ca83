"""Per-client limits across replicas (service/http/rate_limit.py): with Redis configured, two API
processes count one allowance per client between them; when Redis stops answering, each
process goes on counting in its own memory rather than refusing or letting everything through."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from service.errors import TooManyRequests
from service.http.rate_limit import KEY_PREFIX, RateLimiter
from tests.live_service import LiveService, free_port, service_env
from tests.samples.test_feedback_api import send

PER_MINUTE = 10


@pytest.mark.slow
def test_two_api_processes_on_one_redis_share_one_allowance(
    redis_server, redis_url: str, tmp_path: Path
) -> None:
    replicas = []
    try:
        for name in ("a", "b"):
            state = tmp_path / name
            state.mkdir()
            env = service_env(
                state,
                free_port(),
                workers="1",
                redis_url=redis_url,
                feedback_per_minute=str(PER_MINUTE),
            )
            replicas.append(LiveService("api", env, state / "api.log"))
        for replica in replicas:
            replica.wait_ready()
        clients = [httpx.Client(base_url=replica.url(""), timeout=30) for replica in replicas]
        statuses = [send(clients[n % 2], 7).status_code for n in range(3 * PER_MINUTE)]
        for client in clients:
            client.close()
    finally:
        for replica in replicas:
            replica.stop()
    assert statuses.count(201) == PER_MINUTE, statuses
    assert statuses.count(429) == 2 * PER_MINUTE, statuses
    assert set(statuses[: 2 * 5]) == {201}  # both replicas took their part of the allowance
    with redis_server.client() as client:
        assert client.keys(f"{KEY_PREFIX}*"), "nothing was counted in Redis"


def test_without_redis_answering_each_process_counts_in_memory(caplog) -> None:
    with socket_nobody_listens_on() as port:
        limiter = RateLimiter("test", 2, "PERCEPTRON_TEST", redis_url=f"redis://127.0.0.1:{port}/0")

        async def three_requests() -> list[bool]:
            results = []
            for _ in range(3):
                try:
                    await limiter.take("198.51.100.1")
                    results.append(True)
                except TooManyRequests:
                    results.append(False)
            await limiter.close()
            return results

        with caplog.at_level(logging.WARNING, logger="service.http.rate_limit"):
            assert asyncio.run(three_requests()) == [True, True, False]
    warnings = [r for r in caplog.records if "counting in this process's memory" in r.message]
    assert len(warnings) == 1  # once, not once per request


class socket_nobody_listens_on:
    """A loopback port that refuses connections (bound, never listening), for the test's life."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return int(self.socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
