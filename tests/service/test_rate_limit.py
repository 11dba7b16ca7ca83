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
from service.http.rate_limit import KEY_PREFIX, Allowance, RateLimiter
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


def test_the_daily_cap_is_shared_through_redis_and_spared_by_minute_refusals(
    redis_url: str,
) -> None:
    """Two limiters on one Redis (two processes, as far as the counts go) share each allowance;
    a request the minute refuses does not spend the day."""
    allowances = [
        Allowance(2, "minute", "PERCEPTRON_FEEDBACK_PER_MINUTE"),
        Allowance(3, "day", "PERCEPTRON_FEEDBACK_PER_DAY"),
    ]
    replicas = [RateLimiter("feedback", allowances, redis_url=redis_url) for _ in range(2)]

    async def requests(client: str, count: int) -> list[str]:
        results = []
        for n in range(count):
            try:
                await replicas[n % 2].take(client)
                results.append("ok")
            except TooManyRequests as refused:
                results.append("day" if "a day" in refused.message else "minute")
        return results

    async def scenario() -> tuple[list[str], list[str]]:
        first = await requests("198.51.100.7", 4)
        # The minute's refusals above did not count towards the day: a third request in a new
        # minute is still allowed, the fourth is refused for the day.
        await _forget_minute_windows(redis_url)
        second = await requests("198.51.100.7", 2)
        for limiter in replicas:
            await limiter.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert first == ["ok", "ok", "minute", "minute"]
    assert second == ["ok", "day"]


async def _forget_minute_windows(redis_url: str) -> None:
    """Ends the current minute for every client (its windows' keys deleted from Redis)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(f"{KEY_PREFIX}*/minute*")]
        assert keys, "no minute window was counted in Redis"
        await client.delete(*keys)
    finally:
        await client.aclose()


def test_without_redis_answering_each_process_counts_in_memory(caplog) -> None:
    with socket_nobody_listens_on() as port:
        limiter = RateLimiter(
            "test",
            [Allowance(2, "minute", "PERCEPTRON_TEST")],
            redis_url=f"redis://127.0.0.1:{port}/0",
        )

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
