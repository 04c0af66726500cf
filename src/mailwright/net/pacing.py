"""Commands-per-second pacing for one connection: pure bookkeeping, the session owns the clock.

A client over its rate is not refused: it is made to wait until the next second (the session
sleeps for `delay()`), so a runaway or hostile loop on one connection slows itself down instead
of taking the event loop from every other client. Pacing rather than an error keeps a legitimate
burst (a pipelined batch of 1,000 RCPTs) working, only later.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CommandPacer:
    per_second: int  # 0: no limit
    _second: int = -1
    _count: int = 0

    def delay(self, now: float) -> float:
        """Count one command at monotonic time `now`; the seconds to wait before running it."""
        if not self.per_second:
            return 0.0
        second = int(now)
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        if self._count <= self.per_second:
            return 0.0
        # The command runs in the next second and counts there, so the rate stays bounded.
        self._second, self._count = second + 1, 1
        return second + 1 - now
