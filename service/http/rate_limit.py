"""Requests per client address within sliding windows (a minute, a day), counted by the `limits`
library.

With `redis_url` set the counts live in Redis, so every API replica (and every worker process of
one) adds to one count per client and a client gets the limit once, not once per process. With
no Redis they live in this process's memory. Should Redis fail, the request is counted in this
process's memory instead (logged), so an outage neither refuses every request nor lifts the limit.

The sliding window counter (two fixed windows, the older weighted by how much of it still
counts) needs two small keys per client, each expiring with its window: Redis evicts them
itself. The key is the client's address as service/http/client_address.py resolves it, so only
ever a valid IP address; an IPv6 client counts by its /64, the block one host is usually given.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from service.errors import TooManyRequests

log = logging.getLogger(__name__)

KEY_PREFIX = "perceptron-limits"
"""Prefix of the limiter's keys in Redis (the job queue's are `huey.*`)."""
REDIS_TIMEOUT_S = 0.5
"""How long a count may wait for Redis before it is counted in memory instead."""
FALLBACK_WARNING_INTERVAL_S = 60.0
"""At most one log line per this many seconds while Redis is failing."""
IPV6_CLIENT_PREFIX = 64
NON_IP_CLIENT = "not-an-address"
"""The one key for a peer the server reports without an IP address (a Unix socket)."""


def client_key(client: str | None) -> str:
    """The limiter's key for a client address: the address itself (IPv6: its /64)."""
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return NON_IP_CLIENT
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


_ITEMS: dict[str, type[RateLimitItem]] = {
    "minute": RateLimitItemPerMinute,
    "day": RateLimitItemPerDay,
}


@dataclass(frozen=True)
class Allowance:
    """`amount` requests per client in a sliding `period`; `setting` is cited in the refusal."""

    amount: int
    period: Literal["minute", "day"]
    setting: str

    @property
    def item(self) -> RateLimitItem:
        return _ITEMS[self.period](self.amount)


class RateLimiter:
    """Requests of one kind (`name`) per client, within every one of `allowances`. They are
    counted shortest window first, and a request refused by one is not counted by the longer
    ones after it: a client held back for the minute does not spend its day."""

    def __init__(
        self, name: str, allowances: Sequence[Allowance], redis_url: str | None = None
    ) -> None:
        if not allowances:
            raise ValueError("a rate limiter needs at least one allowance")
        self.name = name
        self.allowances = sorted(allowances, key=lambda allowance: allowance.item.get_expiry())
        self.redis_url = redis_url
        self._limiters: dict[bool, SlidingWindowCounterRateLimiter] = {}
        self._pools: list[ConnectionPool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned_at = -math.inf

    @property
    def shared(self) -> bool:
        """Whether the counts are shared with other processes (in Redis)."""
        return self.redis_url is not None

    async def take(self, client: str | None) -> None:
        """Counts one request of `client`; 429 with Retry-After when an allowance is spent."""
        key = client_key(client)
        for allowance in self.allowances:
            await self._take(allowance, key)

    async def _take(self, allowance: Allowance, key: str) -> None:
        item = allowance.item
        limiter = self._limiter(shared=self.shared)
        try:
            allowed = await limiter.hit(item, self.name, key)
        except StorageError as exc:
            self._warn(exc)
            limiter = self._limiter(shared=False)
            allowed = await limiter.hit(item, self.name, key)
        if not allowed:
            stats = await limiter.get_window_stats(item, self.name, key)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            raise TooManyRequests(
                f"at most {allowance.amount} requests a {allowance.period} from one address "
                f"({allowance.setting}); retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def _limiter(self, *, shared: bool) -> SlidingWindowCounterRateLimiter:
        """The limiter on Redis (`shared`) or on memory, made in the running event loop: the
        Redis client's connections and the memory storage's locks belong to one loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._limiters, self._pools, self._loop = {}, [], loop
        limiter = self._limiters.get(shared)
        if limiter is None:
            storage: Storage
            if shared and self.redis_url is not None:
                pool = ConnectionPool.from_url(
                    self.redis_url,
                    socket_timeout=REDIS_TIMEOUT_S,
                    socket_connect_timeout=REDIS_TIMEOUT_S,
                )
                self._pools.append(pool)
                storage = RedisStorage(
                    "async+" + self.redis_url,
                    wrap_exceptions=True,
                    implementation="redispy",
                    key_prefix=KEY_PREFIX,
                    connection_pool=pool,  # type: ignore[arg-type]  # documented; typed narrowly
                )
            else:
                storage = MemoryStorage()
            limiter = self._limiters[shared] = SlidingWindowCounterRateLimiter(storage)
        return limiter

    def _warn(self, error: StorageError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= FALLBACK_WARNING_INTERVAL_S:
            self._warned_at = now
            log.warning(
                "Redis did not answer the %s rate limit (%s); counting in this process's memory "
                "until it does",
                self.name,
                error.storage_error,
            )

    async def close(self) -> None:
        """Releases the Redis connections (called when the app stops)."""
        for pool in self._pools:
            await pool.aclose()
        self._limiters, self._pools, self._loop = {}, [], None
