"""Failed-login throttling, as Dovecot's auth penalty and fail2ban do it together.

- A growing delay per client address AND per account name: the session sleeps
  `record_failure(ip, account)` seconds (the larger of the two penalties) before it answers a
  failed attempt. The per-address one slows a brute-forcer on one address; the per-account one
  slows a distributed guesser (a botnet trying one mailbox from many addresses). A delay is only
  ever applied to a *failed* attempt, so the account's owner who knows the password is never
  slowed down by someone else's guessing.
- A temporary ban per address: after `ban_after` failures, every attempt from that address is
  refused for `ban_time` seconds without checking the password (a temporary error, as fail2ban
  would by dropping the address). There is deliberately no ban per account: anyone could then lock
  any user out of their mailbox by failing on purpose.

Pure bookkeeping with an injected clock; the authenticator does the sleeping and the logging.
Account names are tracked whether or not the account exists, so that the penalty (and so the
timing) is the same for an unknown user and a wrong password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# Forget failures after this long without one (Dovecot: 1 hour for auth_penalty).
FORGET_AFTER: Final = 3600.0
# Bound each table so that a flood of addresses or of made-up account names cannot grow memory
# without limit; the oldest entry goes first. Addresses and accounts have separate tables, so a
# flood of account names cannot push an address's count (and its ban) out.
MAX_TRACKED: Final = 100_000


@dataclass
class _Counts:
    """Failures per key, each with the time of the last one; forgotten after FORGET_AFTER."""

    clock: Callable[[], float]
    entries: dict[str, tuple[int, float]] = field(default_factory=dict)

    def get(self, key: str) -> int:
        count, last = self.entries.get(key, (0, 0.0))
        if count and self.clock() - last > FORGET_AFTER:
            del self.entries[key]
            return 0
        return count

    def add(self, key: str) -> int:
        count = self.get(key) + 1
        self.entries.pop(key, None)  # re-insert: the dict's order is then least recent first
        if len(self.entries) >= MAX_TRACKED:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = (count, self.clock())
        return count

    def clear(self, key: str) -> None:
        self.entries.pop(key, None)


@dataclass
class FailureThrottle:
    base_delay: float = 0.5
    max_delay: float = 10.0
    # Failures from one address that start a ban (0: never ban), and how long it lasts.
    ban_after: int = 0
    ban_time: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _ips: _Counts = field(init=False)
    _accounts: _Counts = field(init=False)
    _banned: dict[str, float] = field(default_factory=dict, init=False)  # ip -> until

    def __post_init__(self) -> None:
        self._ips = _Counts(self.clock)
        self._accounts = _Counts(self.clock)

    def failures(self, ip: str) -> int:
        return self._ips.get(ip)

    def account_failures(self, account: str) -> int:
        return self._accounts.get(account)

    def record_failure(self, ip: str, account: str | None = None) -> float:
        """Count one failure (for the address, and the account when given) and return the delay
        to apply before answering it. Starts a ban once the address reaches `ban_after`."""
        count = self._ips.add(ip)
        if account is not None:
            self._accounts.add(account)
        if self.ban_after and count >= self.ban_after:
            if len(self._banned) >= MAX_TRACKED and ip not in self._banned:
                self._banned.pop(next(iter(self._banned)))
            self._banned[ip] = self.clock() + self.ban_time
        return self.delay_for(ip, account)

    def delay_for(self, ip: str, account: str | None = None) -> float:
        count = max(self._ips.get(ip), self._accounts.get(account) if account is not None else 0)
        if count == 0:
            return 0.0
        return min(self.max_delay, self.base_delay * float(2 ** min(count - 1, 30)))

    def banned_for(self, ip: str) -> float:
        """Seconds left of the address's ban; 0.0 when it may try."""
        until = self._banned.get(ip)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._banned[ip]
            return 0.0
        return left

    def record_success(self, ip: str, account: str | None = None) -> None:
        self._ips.clear(ip)
        if account is not None:
            self._accounts.clear(account)
