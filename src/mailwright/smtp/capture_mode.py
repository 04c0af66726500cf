"""Capture mode in an SMTP session (docs/testing.md): AUTH taken unchecked
(capture.accept_any_auth) and the injected faults of capture/faults.py.

A mixin of `Session`, kept apart because none of it runs outside capture mode; the fault
decisions themselves are pure (capture/faults.py), this is only how a session acts them out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mailwright.capture.faults import Fault
from mailwright.smtp import responses as R
from mailwright.smtp.core import ServerConnection
from mailwright.smtp.responses import Reply
from mailwright.store.api import Account, InvalidAddress

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox
    from mailwright.config import SmtpConfig
    from mailwright.net.connection import Connection
    from mailwright.services import Services

log = logging.getLogger("mailwright.smtp")


class CaptureMode:
    # Set by Session.__init__: `stalled` is a timeout@ fault (no reply ever again), `any_auth`
    # an AUTH taken without checking.
    conn: Connection
    services: Services
    cfg: SmtpConfig
    core: ServerConnection
    out: bytearray
    account: Account | None
    closing: bool
    capture: CaptureBox | None
    stalled: bool
    any_auth: bool

    def reply(self, reply: Reply) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        raise NotImplementedError

    def _accept_any_auth(self, username: str) -> None:
        """capture.accept_any_auth: any credentials are good. The session is the named local
        account if there is one, else stands for the capture account; any sender is allowed."""
        assert self.capture is not None
        try:
            account = self.services.store.get_account(username)
        except InvalidAddress:
            account = None
        self.account = account or Account(self.capture.account_id() or 0, username)
        self.any_auth = True
        log.info("smtp %s: capture mode, AUTH as %r accepted unchecked", self.conn.peer_ip,
                 username)
        self.reply(R.AUTH_OK)

    def _inject(self, fault: Fault) -> None:
        if fault.timeout:
            self.stalled = True
            return
        self.reply(Reply(fault.code, fault.status, fault.text))
        if fault.code == 421:
            self.closing = True  # RFC 5321 3.8: 421 means the server closes

    async def _injected_delay(self) -> None:
        assert self.capture is not None
        delay = self.capture.faults.reply_delay
        if delay:
            await self.flush()
            await asyncio.sleep(delay)

    async def _stall(self) -> None:
        """A timeout@ fault: answer nothing more, and read (and drop) whatever comes until the
        client gives up (EOF) or our command timeout passes, then close as on any timeout."""
        await self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.command_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.out += self.core.render(R.TIMEOUT)
                return
            try:
                data = await self.conn.read(remaining)
            except TimeoutError:
                continue
            if not data:
                return

