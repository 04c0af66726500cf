"""One authentication path for every protocol: policy (may this connection send a password?),
verification (argon2id in a worker thread) and throttling (a growing delay per address)."""

from __future__ import annotations

import asyncio

from mailwright.auth.passwords import verify_password
from mailwright.auth.throttle import FailureThrottle
from mailwright.config import AuthConfig
from mailwright.net.connection import Connection
from mailwright.store.api import Account, Store


class Authenticator:
    def __init__(self, store: Store, config: AuthConfig) -> None:
        self.store = store
        self.config = config
        self.throttle = FailureThrottle(config.failure_base_delay, config.failure_max_delay)

    def plaintext_allowed(self, conn: Connection) -> bool:
        """RFC 4954 4 / RFC 8314: PLAIN and LOGIN only inside TLS, on loopback, or when
        configured so."""
        if conn.is_tls or self.config.allow_plaintext:
            return True
        return self.config.allow_plaintext_loopback and conn.is_loopback

    async def authenticate(self, username: str, password: str, client_ip: str) -> Account | None:
        """The account, or None after the throttle delay: the same answer, in the same time, for
        an unknown user and a wrong password."""
        found = self.store.get_credentials(username)
        stored_hash = found[1] if found else None
        ok = await asyncio.to_thread(verify_password, stored_hash, password)
        if ok and found is not None:
            self.throttle.record_success(client_ip)
            return found[0]
        await asyncio.sleep(self.throttle.record_failure(client_ip))
        return None
