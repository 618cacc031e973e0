"""Client-side throttle: requests and estimated tokens per minute, paced as token buckets.

Each budget refills continuously at `per_minute / 60` a second and holds at most `burst_s`
seconds of it, so requests go out evenly instead of in a burst at the start of every minute (APIs
enforce per-minute limits at a finer grain). `acquire` reserves its slot under the lock and
sleeps outside it: callers are served in arrival order and the pace never exceeds the budgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

BURST_S = 1.0


class _Bucket:
    """One budget: level refills at `rate` a second up to `capacity`; may go negative (booked)."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self.stamp = now

    def delay(self, amount: float, now: float) -> float:
        """Seconds until `amount` (capped at the capacity, so huge requests still pass) is there."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)


class RateLimiter:
    """Blocks `acquire` until one more request of `tokens` fits the per-minute budgets."""

    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst_s: float = BURST_S,
    ) -> None:
        if requests_per_minute < 1 or tokens_per_minute < 1:
            raise ValueError(
                "llm endpoint requests_per_minute and tokens_per_minute must be >= 1, got "
                f"{requests_per_minute} and {tokens_per_minute}"
            )
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        now = clock()
        rps, tps = requests_per_minute / 60.0, tokens_per_minute / 60.0
        self._requests = _Bucket(rps, max(1.0, rps * burst_s), now)
        self._tokens = _Bucket(tps, max(1.0, tps * burst_s), now)
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Book one request of `tokens` in both budgets, sleep until its slot, return the wait."""
        with self._lock:
            now = self._clock()
            delay = max(self._requests.delay(1, now), self._tokens.delay(tokens, now))
            self._requests.level -= 1
            self._tokens.level -= tokens
        if delay > 0:
            log.debug("rate limit: waiting %.2f s", delay)
            self._sleep(delay)
        return delay
