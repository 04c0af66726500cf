"""Concurrent-connection limits per listener: per client address and in total.

Pure bookkeeping (no sockets, no clock) so it can be tested without a server. The listener asks
`try_acquire(ip)` when a connection arrives and calls `release(ip)` exactly once when it ends; a
refused connection gets the protocol's busy reply (SMTP 421 4.7.0, POP3 -ERR [SYS/TEMP]) and is
closed without a session. The per-address limit keeps one abusive peer from taking every slot
(Postfix's smtpd_client_connection_count_limit); the total bounds memory and file descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ConnectionLimiter:
    max_per_ip: int
    max_total: int
    _per_ip: dict[str, int] = field(default_factory=dict)
    _total: int = 0

    @property
    def total(self) -> int:
        return self._total

    def count(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)

    def try_acquire(self, ip: str) -> bool:
        """Take a slot for `ip`; False (and nothing taken) when either limit is reached.

        A limit of 0 means "no limit" (the README documents this for both settings).
        """
        if self.max_total and self._total >= self.max_total:
            return False
        current = self._per_ip.get(ip, 0)
        if self.max_per_ip and current >= self.max_per_ip:
            return False
        self._per_ip[ip] = current + 1
        self._total += 1
        return True

    def release(self, ip: str) -> None:
        current = self._per_ip.get(ip, 0)
        if current <= 0:
            raise RuntimeError(f"release({ip!r}) without a matching acquire")
        if current == 1:
            del self._per_ip[ip]  # forget idle addresses, so the table stays small
        else:
            self._per_ip[ip] = current - 1
        self._total -= 1
