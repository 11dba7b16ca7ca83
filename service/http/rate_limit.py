"""Requests per client address, as token buckets: a steady rate with bursts of the same size.
In-process: with several server processes each counts its own share."""

from __future__ import annotations

import math
import time

from service.errors import TooManyRequests

MAX_TRACKED_CLIENTS = 10_000
"""Past this many addresses the buckets that have refilled are forgotten (they hold nothing)."""


class RateLimiter:
    def __init__(self, per_minute: int, setting: str) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self.setting = setting
        self._buckets: dict[str, tuple[float, float]] = {}
        """client -> (tokens, when they were counted)."""

    def take(self, client: str) -> None:
        """Spends one request of `client`'s allowance; 429 with Retry-After when none is left."""
        now = time.monotonic()
        tokens, then = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.per_second)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / self.per_second)
            raise TooManyRequests(
                f"at most {self.capacity:g} requests a minute from one address ({self.setting}); "
                f"retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        full_after = self.capacity / self.per_second
        self._buckets = {
            client: (tokens, then)
            for client, (tokens, then) in self._buckets.items()
            if now - then < full_after
        }
