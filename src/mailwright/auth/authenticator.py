"""One authentication path for every protocol: policy (may this connection send a password?),
verification (argon2id in a worker thread) and throttling (a growing delay per address and per
account, and a temporary ban per address: auth/throttle.py). Every failure and every ban is
logged here, with the address and the user name, once for all protocols."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

from mailwright.auth.passwords import verify_password
from mailwright.auth.throttle import FailureThrottle
from mailwright.config import AuthConfig
from mailwright.net.connection import Connection
from mailwright.store.api import Account, InvalidAddress, Store, normalize_address

log = logging.getLogger("mailwright.auth")


class LoginsSuspended(Exception):
    """The client's address is banned for too many failed logins: each session answers with a
    temporary error (SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP], IMAP NO [UNAVAILABLE])."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


def address_key(ip: str) -> str:
    """The unit the per-address penalty counts: one IPv4 address, or one IPv6 /64 (the
    smallest block an ISP hands a customer, so a client cannot escape its penalty by walking
    through the 2**64 addresses of its own network). IPv4-mapped IPv6 counts as IPv4."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def account_key(username: str) -> str:
    """The unit the per-account penalty counts: the canonical address, as the store looks it
    up, so that "Alice@Example.TEST" and "alice@example.test" share one penalty."""
    try:
        return normalize_address(username)
    except InvalidAddress:
        return username.strip().lower()


class Authenticator:
    def __init__(self, store: Store, config: AuthConfig) -> None:
        self.store = store
        self.config = config
        self.throttle = FailureThrottle(
            config.failure_base_delay,
            config.failure_max_delay,
            ban_after=config.ban_after,
            ban_time=config.ban_time,
        )

    def plaintext_allowed(self, conn: Connection) -> bool:
        """RFC 4954 4 / RFC 8314: PLAIN and LOGIN only inside TLS, on loopback, or when
        configured so."""
        if conn.is_tls or self.config.allow_plaintext:
            return True
        return self.config.allow_plaintext_loopback and conn.is_loopback

    async def authenticate(self, username: str, password: str, client_ip: str) -> Account | None:
        """The account, or None after the throttle delay: the same answer, in the same time, for
        an unknown user and a wrong password. Raises LoginsSuspended, without looking at the
        password, while the address is banned."""
        ip, user = address_key(client_ip), account_key(username)
        banned = self.throttle.banned_for(ip)
        if banned:
            log.warning("auth: refused login for %r from %s: address banned for %.0f s more",
                        username, client_ip, banned)
            raise LoginsSuspended(banned)
        found = self.store.get_credentials(username)
        stored_hash = found[1] if found else None
        ok = await asyncio.to_thread(verify_password, stored_hash, password)
        if ok and found is not None:
            self.throttle.record_success(ip, user)
            return found[0]
        delay = self.throttle.record_failure(ip, user)
        log.warning(
            "auth: failed login for %r from %s (%d failures from this address, %d for this "
            "user; answering in %.2f s)", username, client_ip, self.throttle.failures(ip),
            self.throttle.account_failures(user), delay,
        )
        banned = self.throttle.banned_for(ip)
        if banned:
            log.warning("auth: banning %s for %.0f s after %d failed logins (last user %r)",
                        ip, banned, self.throttle.failures(ip), username)
        await asyncio.sleep(delay)
        return None
