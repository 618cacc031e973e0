"""Client-side throttle: requests and estimated tokens per sliding 60-second window."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW_S = 60.0


class RateLimiter:
    """Blocks `acquire` until one more request of `tokens` fits the per-minute budgets."""

    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
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
        self._sent: deque[tuple[float, int]] = deque()
        self._tokens = 0
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> float:
        """Wait until the request fits both budgets, record it, and return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay(tokens)
                if delay <= 0:
                    self._sent.append((self._clock(), tokens))
                    self._tokens += tokens
                    return waited
            if waited == 0.0:
                log.debug("rate limit: waiting %.1f s", delay)
            self._sleep(delay)
            waited += delay

    def _delay(self, tokens: int) -> float:
        now = self._clock()
        while self._sent and now - self._sent[0][0] >= WINDOW_S:
            self._tokens -= self._sent.popleft()[1]
        if not self._sent:
            return 0.0  # a request larger than the whole token budget still goes out alone
        fits = (
            len(self._sent) < self.requests_per_minute
            and self._tokens + tokens <= self.tokens_per_minute
        )
        return 0.0 if fits else self._sent[0][0] + WINDOW_S - now
