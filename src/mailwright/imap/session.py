"""The asyncio edge of IMAP: reads, writes, timeouts, authentication, APPEND streaming and IDLE.

Entry point (services.py): `await serve(conn, services, listener)`, listener "imap" or "imaps"
(for imaps the connection is already TLS, RFC 8314 3.3). Protocol decisions that need no I/O
live in the pure modules (`parser`, `grammar`, `state`, `selected`, `listing`, `fetch`,
`search_eval`, `responses`); the commands themselves are in `mailboxes` (not about messages) and
`messages` (the selected mailbox's messages). This module runs the connection.

Failure handling (STYLE.md 5): client mistakes are BAD/NO; after `max_errors` of them in a
row the connection is closed with BYE, and so it is after `max_auth_failures` failed logins.
The inactivity timer (RFC 9051 5.4: at least 30 minutes once logged in, PRE_AUTH_TIMEOUT
before) ends the session with BYE. A bug inside one command is logged with its traceback
and answered with `NO [SERVERBUG]`; the session carries on, as every command's store work is
atomic.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Final

from mailwright.auth.authenticator import LoginsSuspended
from mailwright.auth.sasl import (
    PROXY_REFUSED,
    Challenge,
    Failure,
    SaslExchange,
    SaslStep,
    Success,
)
from mailwright.imap import commands as c
from mailwright.imap import responses as r
from mailwright.imap.base import Close, SessionBase
from mailwright.imap.capabilities import ENABLEABLE, capabilities
from mailwright.imap.grammar import SyntaxErr
from mailwright.imap.mailboxes import MailboxCommands
from mailwright.imap.messages import MessageCommands
from mailwright.imap.parser import (
    NEED_DATA,
    AppendChunk,
    AppendEnd,
    Closed,
    Continuation,
    Done,
    NeedData,
    SaslResponse,
    TooBig,
)
from mailwright.imap.state import State, allowed, next_state, refused_read_only
from mailwright.net.connection import Connection
from mailwright.services import Services
from mailwright.store.api import NotFound, StagedMessage, StorageUnavailable

log = logging.getLogger("mailwright.imap")

TLS_HANDSHAKE_TIMEOUT: Final = 60.0
# RFC 9051 5.4 sets no minimum before authentication ("servers are allowed to use a shortened
# pre-authentication timer"); a silent unauthenticated connection only holds a slot. Dovecot
# gives a client 3 minutes to log in.
PRE_AUTH_TIMEOUT: Final = 180.0


def busy_reply(hostname: str) -> bytes:
    """Sent before closing a connection refused by a connection limit (RFC 9051 7.1.5)."""
    return r.untagged_status("BYE", f"{hostname} too many connections, try again later",
                             r.UNAVAILABLE)


async def serve(conn: Connection, services: Services, listener: str) -> None:
    """Run one IMAP session on `conn` until it ends; closes `conn`."""
    await ImapSession(conn, services, listener).run()


class ImapSession(MailboxCommands, MessageCommands, SessionBase):
    def __init__(self, conn: Connection, services: Services, listener: str) -> None:
        super().__init__(conn, services, listener)
        self.sasl: SaslExchange | None = None
        self.sasl_tag = ""
        self.append: _AppendInProgress | None = None
        self._second = 0
        self._commands_this_second = 0
        self.auth_failures = 0
        # config.ImapConfig login_timeout, then max_session_time once logged in: deadlines,
        # which (unlike the inactivity timer) a client trickling bytes does not push back.
        now = asyncio.get_running_loop().time()
        self.deadline: float | None = (
            now + self.config.login_timeout if self.config.login_timeout else None
        )
        self.expired = "Autologout; idle for too long"  # the BYE text when a read times out

    # ----- life cycle -------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            caps = self._capabilities()
            self.conn.write(r.untagged_status(
                "OK", f"{self.hostname} mailwright IMAP4rev2 ready", r.code_capability(caps)))
            await self._loop()
        except Close:
            await self.flush_quietly()
        except asyncio.CancelledError:
            self.conn.write(r.untagged_status("BYE", "Server shutting down"))
            raise
        except Exception:
            log.exception("imap: internal error, closing connection from %s", self.conn.peer_ip)
            self.conn.write(r.untagged_status("BYE", "Internal server error", r.SERVERBUG))
            await self.flush_quietly()
        finally:
            if self.append is not None:
                self.append.staged.abort()
            self.unselect()
            await self.conn.close()

    async def _loop(self) -> None:
        parser = self.parser
        while True:
            event = parser.next_event()
            if isinstance(event, NeedData):
                await self.flush()
                try:
                    data = await self.conn.read(self._inactivity_timeout())
                except TimeoutError:
                    self.conn.write(r.untagged_status("BYE", self.expired))
                    raise Close from None
                parser.receive_data(data)
                continue
            match event:
                case Closed():
                    return
                case SyntaxErr(tag=tag, text=text):
                    self._abort_append()
                    self.sasl = None
                    self.bad(tag, text)
                case Continuation():
                    self.conn.write(r.continuation("Ready for literal data"))
                case TooBig(tag=tag):
                    if self.state is State.NOT_AUTHENTICATED:  # as for any APPEND then
                        self.bad(tag, f"APPEND not valid in {self.state.value} state")
                        continue
                    limit = self.config.max_message_size
                    self.no(tag, f"Message too large (APPENDLIMIT {limit})", r.TOOBIG)
                case AppendChunk(data=data):
                    if self.append is not None:
                        self.append.write(data)
                case AppendEnd(tag=tag, error=error):
                    await self._append_end(tag, error)
                case SaslResponse():
                    await self._sasl_step(event.line)
                case Done():  # a DONE outside IDLE is a command named DONE: not one we know
                    self.bad(None, "DONE without IDLE")
                case _:
                    await self._command(event)

    def _inactivity_timeout(self) -> float:
        timeout = self.config.idle_timeout
        if self.state is State.NOT_AUTHENTICATED:
            timeout = min(timeout, PRE_AUTH_TIMEOUT)
        self.expired = "Autologout; idle for too long"
        if self.deadline is not None:
            left = self.deadline - asyncio.get_running_loop().time()
            if left < timeout:
                timeout = max(left, 0.0)
                self.expired = ("Login time limit reached"
                                if self.state is State.NOT_AUTHENTICATED
                                else "Session time limit reached")
        return timeout

    # ----- dispatch -----------------------------------------------------------------------------
    async def _command(self, cmd: c.Command) -> None:
        try:
            await self._pace()
            await self._checked(cmd)
        finally:
            if isinstance(cmd, c.Append) and self.append is None:
                # Refused, for whatever reason (state, mailbox, an error): the parser must not
                # ask for the literal ("+") and skips a non-synchronizing one (RFC 7888).
                self.parser.reject_append()

    async def _checked(self, cmd: c.Command) -> None:
        if not allowed(self.state, cmd):
            self.bad(cmd.tag, f"{type(cmd).__name__.upper()} not valid in {self.state.value} state")
            return
        if (self.selected is not None and self.selected.read_only and refused_read_only(cmd)):
            self.tagged(cmd.tag, "NO", "Mailbox is read-only (EXAMINE)", r.READ_ONLY)
            return
        try:
            ok = await self._run(cmd)
        except Close:
            raise
        except StorageUnavailable:
            log.warning("imap: storage unavailable for %s", type(cmd).__name__)
            ok = False
            self.tagged(cmd.tag, "NO", "Storage temporarily unavailable, try again",
                        r.UNAVAILABLE)
        except Exception:
            log.exception("imap: %s failed for %s", type(cmd).__name__, self.conn.peer_ip)
            ok = False
            self.tagged(cmd.tag, "NO", "Internal server error", r.SERVERBUG)
        if ok:
            self.errors = 0
        self.state = next_state(self.state, cmd, ok)

    async def _run(self, cmd: c.Command) -> bool:
        """Run one command; True when it succeeded (for the state table). Untagged updates
        about the selected mailbox go out before the tagged reply (RFC 9051 7.5.2)."""
        match cmd:
            case c.Capability(tag):
                self.conn.write(r.capability(self._capabilities()))
                return self.ok(tag, "CAPABILITY completed")
            case c.Noop(tag) | c.Check(tag):
                await self.send_updates(allow_expunge=True)
                return self.ok(tag, f"{type(cmd).__name__.upper()} completed")
            case c.Logout(tag):
                self.conn.write(r.untagged_status("BYE", "Logging out"))
                self.ok(tag, "LOGOUT completed")
                raise Close
            case c.Id(tag):
                self.conn.write(r.id_((("name", "mailwright"), ("vendor", "mailwright"),
                                       ("support-url", "https://github.com/mailwright"))))
                return self.ok(tag, "ID completed")
            case c.StartTls(tag):
                return await self._starttls(tag)
            case c.Login(tag, username, password):
                return await self._login_command(tag, username, password)
            case c.Authenticate():
                return await self._authenticate(cmd)
            case c.Enable(tag, caps):
                return self._enable(tag, caps)
            case c.Idle(tag):
                return await self._idle(tag)
            case c.Append():
                return await self._append_start(cmd)
            case _:
                return await self.dispatch(cmd)

    async def _pace(self) -> None:
        """At most `max_commands_per_second`; beyond that the client waits (a runaway loop or
        a flood slows itself down instead of the server)."""
        now = int(time.monotonic())
        if now != self._second:
            self._second, self._commands_this_second = now, 0
        self._commands_this_second += 1
        if self._commands_this_second > self.config.max_commands_per_second:
            await self.flush()
            await asyncio.sleep(1.0 - (time.monotonic() % 1.0))

    def _capabilities(self) -> list[str]:
        return capabilities(
            authenticated=self.state in (State.AUTHENTICATED, State.SELECTED),
            tls_active=self.conn.is_tls,
            plaintext_allowed=self.services.authenticator.plaintext_allowed(self.conn),
            append_limit=self.config.max_message_size,
        )

    # ----- not authenticated ----------------------------------------------------------------------
    async def _starttls(self, tag: str) -> bool:
        if self.conn.is_tls:
            self.bad(tag, "TLS is already active")
            return False
        self.ok(tag, "Begin TLS negotiation now")
        await self.flush(force=True)
        # RFC 9051 6.2.1 / CVE-2011-0411: nothing sent before the handshake is executed after it.
        self.parser.discard_buffer()
        try:
            await self.conn.start_tls(self.services.tls, TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            log.info("imap: STARTTLS handshake with %s failed: %s", self.conn.peer_ip, exc)
            raise Close from None
        return True

    async def _login_command(self, tag: str, username: str, password: str) -> bool:
        if not self.services.authenticator.plaintext_allowed(self.conn):
            self.no(tag, "Use STARTTLS (or port 993) before LOGIN", r.PRIVACYREQUIRED)
            return False
        return await self._verify(tag, username, password)

    async def _authenticate(self, cmd: c.Authenticate) -> bool:
        mechanism = cmd.mechanism.upper()
        if not self.services.authenticator.plaintext_allowed(self.conn):
            self.no(cmd.tag, "Use STARTTLS (or port 993) before AUTHENTICATE",
                    r.PRIVACYREQUIRED)
            return False
        try:
            exchange = SaslExchange(mechanism)
        except ValueError:
            self.no(cmd.tag, f"Unsupported mechanism {mechanism[:40]}", r.CANNOT)
            return False
        self.sasl, self.sasl_tag = exchange, cmd.tag
        return await self._sasl_outcome(exchange.start(cmd.initial_response))

    async def _sasl_step(self, line: bytes) -> None:
        exchange, tag = self.sasl, self.sasl_tag
        if exchange is None:  # the parser returns SaslResponse only after start_sasl()
            self.bad(None, "unexpected SASL response")
            return
        try:
            ok = await self._sasl_outcome(exchange.step(line))
        except (Close, asyncio.CancelledError):
            raise
        except Exception as exc:  # the authenticator's store failed: as `_checked` answers
            self.sasl, ok = None, False
            if isinstance(exc, StorageUnavailable):
                self.no(tag, "Storage temporarily unavailable, try again", r.UNAVAILABLE)
            else:
                log.exception("imap: AUTHENTICATE failed for %s", self.conn.peer_ip)
                self.no(tag, "Internal server error", r.SERVERBUG)
        if self.sasl is None:  # the exchange ended: the AUTHENTICATE command is complete
            if ok:
                self.errors = 0
            self.state = next_state(self.state, c.Authenticate(tag, "PLAIN"), ok)

    async def _sasl_outcome(self, step: SaslStep) -> bool:
        tag = self.sasl_tag
        match step:
            case Challenge(text=text):
                self.conn.write(r.continuation(data=text.encode("ascii")))
                self.parser.start_sasl(tag)
                return False
            case Failure(reason=reason) if reason == PROXY_REFUSED:
                self.sasl = None
                # RFC 9051 7.1 AUTHORIZATIONFAILED: acting as another identity is not offered.
                self.no(tag, "Not authorized to act as that user", r.AUTHORIZATIONFAILED)
                self._auth_failed()
                return False
            case Failure(reason=reason, cancelled=cancelled):
                self.sasl = None
                # RFC 9051 6.2.2: a cancelled or malformed exchange is rejected with BAD.
                text = "AUTHENTICATE cancelled" if cancelled else f"Invalid SASL data: {reason}"
                self.bad(tag, text)
                return False
            case Success(credentials=creds):
                self.sasl = None
                return await self._verify(tag, creds.username, creds.password)

    async def _verify(self, tag: str, username: str, password: str) -> bool:
        try:
            account = await self.services.authenticator.authenticate(
                username, password, self.conn.peer_ip
            )
        except LoginsSuspended:  # banned for failed logins; logged by the authenticator
            self.no(tag, "Too many failed logins, try again later", r.UNAVAILABLE)
            self._auth_failed()
            return False
        if account is None:
            log.info("imap: login failed for %r from %s", username, self.conn.peer_ip)
            self.no(tag, "Invalid credentials", r.AUTHENTICATIONFAILED)
            self._auth_failed()
            return False
        self.account = account
        self.state = State.AUTHENTICATED  # for the capability list below
        limit = self.config.max_session_time
        self.deadline = asyncio.get_running_loop().time() + limit if limit else None
        log.info("imap: %s logged in from %s", account.address, self.conn.peer_ip)
        self.ok(tag, "Logged in", r.code_capability(self._capabilities()))
        return True

    def _auth_failed(self) -> None:
        self.auth_failures += 1
        limit = self.config.max_auth_failures  # 0: no limit
        if limit and self.auth_failures >= limit:
            self.conn.write(r.untagged_status("BYE", "Too many failed login attempts"))
            raise Close

    # ----- authenticated -------------------------------------------------------------------------
    def _enable(self, tag: str, caps: tuple[str, ...]) -> bool:
        newly: list[str] = []
        for cap in caps:
            if cap not in ENABLEABLE or cap in self.enabled:
                continue  # RFC 5161 3.1: unknown ones are ignored
            self.enabled.add(cap)
            newly.append("IMAP4rev2" if cap == "IMAP4REV2" else cap)
            # RFC 9051 5.1 and appendix E 16, 24: an IMAP4rev2 client gets UTF-8 mailbox names
            # and response text, as UTF8=ACCEPT gives them to an IMAP4rev1 one (RFC 9755 says
            # IMAP4rev2 "includes everything in this extension").
            if cap in ("UTF8=ACCEPT", "IMAP4REV2"):
                self.utf8 = True
                self.parser.enable_utf8()
        self.conn.write(r.enabled(newly))
        return self.ok(tag, "ENABLE completed")

    async def _idle(self, tag: str) -> bool:
        """RFC 2177: send changes as they are committed until the client says DONE."""
        self.conn.write(r.continuation("idling"))
        self.parser.start_idle(tag)
        await self.send_updates(allow_expunge=True)
        await self.flush(force=True)
        read: asyncio.Task[bytes] | None = None
        changed: asyncio.Task[object] | None = None
        subscription = self.subscription
        if subscription is not None:
            # Changes are written out as they arrive, without waking this task (base.py).
            subscription.listener = self.push_in_idle
        try:
            while True:
                event = self.parser.next_event()
                if isinstance(event, Done):
                    return self.ok(tag, "IDLE terminated")
                if isinstance(event, Closed):
                    raise Close
                if event is not NEED_DATA:  # a line other than DONE (the parser said BAD)
                    if isinstance(event, SyntaxErr):
                        self.bad(event.tag, event.text)
                        return False
                    return self.bad(tag, "expected DONE")
                if read is None:
                    read = asyncio.ensure_future(self.conn.read(self._inactivity_timeout()))
                if changed is None and self.subscription is not None:
                    changed = asyncio.ensure_future(self.subscription.wait())
                waiting: set[asyncio.Future[object]] = {read}  # type: ignore[arg-type]
                if changed is not None:
                    waiting.add(changed)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if changed is not None and changed in done:
                    events = changed.result()
                    changed = None
                    await self.apply_changes(events)  # type: ignore[arg-type]
                    await self.send_updates(allow_expunge=True)
                    await self.flush(force=True)
                if read in done:
                    try:
                        data = read.result()
                    except TimeoutError:
                        self.conn.write(r.untagged_status("BYE", self.expired))
                        raise Close from None
                    read = None
                    self.parser.receive_data(data)
        finally:
            if subscription is not None:
                subscription.listener = None
            for task in (read, changed):
                if task is not None and not task.done():
                    task.cancel()

    # ----- APPEND (streamed: the parser hands out the literal in chunks) --------------------------
    async def _append_start(self, cmd: c.Append) -> bool:
        account = self.require_account()
        problem: tuple[str, r.Code | None] | None = None
        if cmd.size == 0:
            problem = ("Refusing an empty message", None)
        elif "\\Recent" in cmd.flags:
            problem = ("\\Recent cannot be set", None)
        else:
            box = await asyncio.to_thread(self.store.mailbox, account.id, cmd.mailbox)
            if box is None:
                problem = ("Mailbox does not exist", r.TRYCREATE)
        if problem is not None:
            self.no(cmd.tag, problem[0], problem[1])  # _command() tells the parser
            return False
        self.append = _AppendInProgress(cmd, self.store.stage())
        return True

    def _abort_append(self) -> None:
        if self.append is not None:
            self.append.staged.abort()
            self.append = None

    async def _append_end(self, tag: str, error: str | None) -> None:
        pending, self.append = self.append, None
        if pending is None:
            return
        if error is not None:
            pending.staged.abort()
            self.bad(tag, error)
            return
        if pending.failed:
            pending.staged.abort()
            log.warning("imap: storage unavailable for APPEND")
            self.no(tag, "Storage temporarily unavailable, try again", r.UNAVAILABLE)
            return
        account = self.require_account()
        cmd = pending.cmd
        when = int(cmd.internal_date.timestamp()) if cmd.internal_date is not None else None
        try:
            result = await self.store.append(account.id, cmd.mailbox, pending.staged,
                                             cmd.flags, when)
        except Exception as exc:
            # As `_checked` does for other commands: the store refused or failed, the
            # message is not kept (abort is idempotent), and the session carries on.
            pending.staged.abort()
            if isinstance(exc, NotFound):  # deleted while the message was arriving
                self.no(tag, "Mailbox does not exist", r.TRYCREATE)
            elif isinstance(exc, StorageUnavailable):
                log.warning("imap: storage unavailable for APPEND")
                self.no(tag, "Storage temporarily unavailable, try again", r.UNAVAILABLE)
            else:
                log.exception("imap: APPEND failed for %s", self.conn.peer_ip)
                self.no(tag, "Internal server error", r.SERVERBUG)
            return
        self.errors = 0
        await self.send_updates(allow_expunge=True)
        self.ok(tag, "APPEND completed", r.code_appenduid(result.uidvalidity, result.uid))


class _AppendInProgress:
    __slots__ = ("cmd", "failed", "staged")

    def __init__(self, cmd: c.Append, staged: StagedMessage) -> None:
        self.cmd = cmd
        self.staged = staged
        self.failed = False  # the disk refused a chunk (full, read-only): answered at the end

    def write(self, data: bytes) -> None:
        """A full disk fails this APPEND (NO at its end), not the session: the rest of the
        literal is read and dropped so that client and server stay in step."""
        if self.failed:
            return
        try:
            self.staged.write(data)
        except StorageUnavailable:
            self.failed = True  # StagedBlob.write removed its temp file already
