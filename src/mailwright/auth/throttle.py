"""Failed-login throttling: a growing delay per client address, as Dovecot's auth penalty does.

Pure bookkeeping with an injected clock; the session sleeps for `delay_for(ip)` before it
answers a failed attempt, so a brute-forcer gets slower and slower while one honest typo costs
half a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# Forget an address's failures after this long without one (Dovecot: 1 hour for auth_penalty).
FORGET_AFTER: Final = 3600.0
# Bound the table so that a flood of source addresses cannot grow memory without limit.
MAX_TRACKED: Final = 100_000


@dataclass
class FailureThrottle:
    base_delay: float = 0.5
    max_delay: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    def failures(self, ip: str) -> int:
        count, last = self._failures.get(ip, (0, 0.0))
        if count and self.clock() - last > FORGET_AFTER:
            del self._failures[ip]
            return 0
        return count

    def record_failure(self, ip: str) -> float:
        """Count one failure and return the delay to apply before answering it."""
        count = self.failures(ip) + 1
        if len(self._failures) >= MAX_TRACKED and ip not in self._failures:
            self._failures.pop(next(iter(self._failures)))
        self._failures[ip] = (count, self.clock())
        return self.delay_for(ip)

    def delay_for(self, ip: str) -> float:
        count = self.failures(ip)
        if count == 0:
            return 0.0
        return min(self.max_delay, self.base_delay * float(2 ** min(count - 1, 30)))

    def record_success(self, ip: str) -> None:
        self._failures.pop(ip, None)
