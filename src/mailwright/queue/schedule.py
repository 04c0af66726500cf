"""The retry schedule: when a temporarily failed delivery is tried again.

RFC 5321 4.5.4.1: retry at least 30 minutes apart in general, give up after 4-5 days. We start
sooner (5 minutes, as Postfix's minimal_backoff_time), back off along the configured ladder,
repeat its last step, and stop at max_age (then the failure DSN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailwright.config import ConfigError

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_STEP = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")


def parse_duration(text: str) -> float:
    """"90s", "5m", "1h", "2d" or a bare number of seconds -> seconds. ValueError otherwise."""
    match = _STEP.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    steps: tuple[float, ...]  # seconds to wait after the 1st, 2nd, ... failure; never empty

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """ "5m,15m,30m,1h,2h,4h" -> RetrySchedule; ConfigError (queue.retry_schedule) if bad."""
        try:
            steps = tuple(parse_duration(part) for part in text.split(",") if part.strip())
        except ValueError as exc:
            raise ConfigError(f"queue.retry_schedule: {exc}") from None
        if not steps or any(step <= 0 for step in steps):
            raise ConfigError(
                f"queue.retry_schedule: expected positive durations such as "
                f"'5m,15m,1h', got {text!r}"
            )
        return cls(steps)

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt (1-based); the last step repeats."""
        return self.steps[min(max(attempts, 1), len(self.steps)) - 1]
