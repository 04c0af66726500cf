"""What every protocol session is handed: the configuration and the shared services.

Session entry points (the contract between `server` and each protocol package):
    async def mailwright.smtp.session.serve(conn: Connection, services: Services, listener: str)
        listener is "smtp" (MX role) or "submission"/"submissions" (AUTH required before MAIL)
    async def mailwright.pop3.session.serve(conn: Connection, services: Services, listener: str)
        listener is "pop3" or "pop3s"
    def <protocol>.session.busy_reply(hostname: str) -> bytes
        the one reply sent before closing a connection refused by a connection limit.
For implicit-TLS listeners (submissions, pop3s) the connection is already TLS when serve() starts.
A session owns its connection: it closes it when it ends, including on cancellation.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailwright.auth.authenticator import Authenticator
from mailwright.config import Config
from mailwright.delivery import Deliverer
from mailwright.mailauth.inbound import InboundChecker
from mailwright.net.resolver import Resolver
from mailwright.store.api import Store

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox


@dataclass
class Services:
    config: Config
    store: Store
    deliverer: Deliverer
    authenticator: Authenticator
    tls: ssl.SSLContext
    # Account ids whose POP3 maildrop is held by a session (RFC 1939 8: exclusive-access lock).
    pop3_locks: set[int] = field(default_factory=set)
    # DNS for the queue and the inbound checks ([dns]); built by the server at start.
    resolver: Resolver | None = None
    # SPF/DKIM/DMARC on the MX listener (mailauth.inbound); None when [inbound] checks = false.
    inbound: InboundChecker | None = None
    # Capture mode ([capture] enabled): the box and its fault settings; None when off.
    capture: CaptureBox | None = None
