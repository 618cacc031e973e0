"""Progress of long request loops: count, percentage, rate and ETA, logged at most every N s."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

INTERVAL_S = 10.0


class Progress:
    """Thread-safe counter that logs `label: done/total (pct) rate/s, ETA` every `interval_s`."""

    def __init__(
        self,
        label: str,
        total: int,
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.failed = 0
        self._interval = interval_s
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._lock = threading.Lock()

    def update(self, n: int = 1, failed: bool = False) -> None:
        """Count `n` finished items (failed ones too) and log if the interval has passed."""
        with self._lock:
            self.done += n
            self.failed += n if failed else 0
            now = self._clock()
            if now - self._last < self._interval and self.done < self.total:
                return
            self._last = now
            line = self.line(now)
        log.info(line)

    def line(self, now: float | None = None) -> str:
        """The progress line as of `now`."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        left = self.total - self.done
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.label}: {self.done}/{self.total} ({pct:.1f}%), {self.failed} failed, "
            f"{rate:.1f}/s, elapsed {elapsed:.0f} s, ETA {eta}"
        )
