"""The "http" listener: the web inbox's aiohttp server on the mail server's own event loop.

Plain HTTP, no TLS: it is meant for loopback (the default, 127.0.0.1:8025 with `serve
--capture`), where TLS protects nothing, and it has no authentication (docs/web.md).
`stop()` ends the event streams first, so a browser sees a finished response, not a reset.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Final

from aiohttp import web

from mailwright.web.app import KEEPALIVE_SECONDS, create_app, stop_streams

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox

# Requests in flight get this long to finish on stop; an event stream ends at once.
SHUTDOWN_TIMEOUT: Final = 2.0
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(listen_host: str, hostname: str) -> frozenset[str] | None:
    """Host names a request may use: the loopback names, our hostname and the listen address;
    None (anything) when listening on a wildcard address, where we cannot know the names."""
    try:
        if ipaddress.ip_address(listen_host).is_unspecified:
            return None
    except ValueError:
        if not listen_host:
            return None
    return frozenset({*_LOOPBACK_NAMES, hostname.lower(), listen_host.lower()})


class HttpListener:
    def __init__(
        self, box: CaptureBox | None, hostname: str, *, keepalive: float = KEEPALIVE_SECONDS
    ) -> None:
        self._box = box
        self._hostname = hostname
        self._keepalive = keepalive
        self._runner: web.AppRunner | None = None
        self.bound: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve; the (host, port) bound. OSError when the address is unusable."""
        app = create_app(
            self._box, allowed_hosts=allowed_hosts(host, self._hostname), keepalive=self._keepalive
        )
        # handler_cancellation: a client that goes away cancels its handler, so an event
        # stream's subscription ends at once, not at its next keep-alive write.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT, handler_cancellation=True
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.bound = (str(address[0]), int(address[1]))
        return self.bound

    @property
    def url(self) -> str | None:
        if self.bound is None:
            return None
        host, port = self.bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await stop_streams(runner.app)
        await runner.cleanup()
