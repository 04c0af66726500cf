"""The asyncio edge of POP3: reads, writes, timeouts, authentication, the lock and the store.

Entry point (services.py): `await serve(conn, services, listener)`, listener "pop3" or "pop3s"
(for pop3s the connection is already TLS, RFC 8314 3.3). Protocol decisions that need no I/O live
in the pure modules (`core`, `parser`, `state`, `maildrop`, `stuffing`, `responses`); this module
only does what needs the outside world, and maps each outcome to a reply.

Failure handling (STYLE.md 5): client mistakes are -ERR replies; after `max_errors` of them the
connection is closed. The idle timeout (RFC 1939 3: at least 10 minutes) closes the connection
without entering UPDATE, so nothing is deleted. Any other exception is a bug: it is logged with
its traceback, the client gets one -ERR [SYS/TEMP] and this connection (only) is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Final, assert_never

from mailwright.auth.authenticator import LoginsSuspended
from mailwright.auth.sasl import (
    MECHANISMS,
    PROXY_REFUSED,
    Challenge,
    Failure,
    SaslExchange,
    SaslStep,
    Success,
)
from mailwright.net.connection import Connection
from mailwright.net.pacing import CommandPacer
from mailwright.pop3 import responses as r
from mailwright.pop3.commands import (
    Auth,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    SaslResponse,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from mailwright.pop3.core import NEED_DATA, BadSequence, Closed, LineTooLong, Pop3Connection
from mailwright.pop3.maildrop import Maildrop
from mailwright.pop3.parser import SyntaxErr
from mailwright.pop3.state import State
from mailwright.pop3.stuffing import ByteStuffer, TopCutter
from mailwright.services import Services
from mailwright.store.api import Account, StorageUnavailable, StoredMessage

log = logging.getLogger("mailwright.pop3")

# Messages up to this size are read in one call on the event loop: a 64 KiB read from the page
# cache takes microseconds, far less than a thread hand-off, and most mail is smaller (this is
# what keeps RETR of 1,000 x 4 KB messages well under Dovecot's 345 ms). Larger messages are
# read in worker threads, chunk by chunk, so one big message never stalls other sessions.
INLINE_READ_LIMIT: Final = 64 * 1024
# Chunk size for large messages: big enough to amortise the thread hand-off, small enough that
# a slow reader's buffered output stays bounded (we drain after each chunk).
READ_CHUNK: Final = 256 * 1024
# Unsent output above which a session waits for the client to read (asyncio's default high-water
# mark): bounds memory per slow reader, e.g. one pipelining many RETRs without reading.
BACKLOG_LIMIT: Final = 64 * 1024
# The STLS handshake must finish in this time (a stalled handshake holds a connection slot).
TLS_HANDSHAKE_TIMEOUT: Final = 60.0
# The deadlines of config.Pop3Config (login_timeout, max_session_time) and max_auth_failures;
# SYS/TEMP (RFC 3206 4): trying again later may work.
LOGIN_TIME_LIMIT: Final = r.err("Login time limit reached", r.RespCode.SYS_TEMP)
SESSION_TIME_LIMIT: Final = r.err("Session time limit reached", r.RespCode.SYS_TEMP)
TOO_MANY_AUTH_FAILURES: Final = r.err("Too many authentication failures", r.RespCode.AUTH)


def _read_small(path: Path) -> bytes:
    """A small file in one unbuffered read, on purpose on the event loop (INLINE_READ_LIMIT)."""
    with open(path, "rb", buffering=0) as f:
        return f.readall()


def busy_reply(hostname: str) -> bytes:
    """Sent before closing a connection refused by a connection limit (RFC 3206 4: SYS/TEMP)."""
    return r.err(f"{hostname} too many connections, try again later", r.RespCode.SYS_TEMP)


async def serve(conn: Connection, services: Services, listener: str) -> None:
    """Run one POP3 session on `conn` until it ends; closes `conn` and releases the lock."""
    await Pop3Session(conn, services, listener).run()


class _Close(Exception):
    """Internal: end the session after the replies written so far are flushed."""


class Pop3Session:
    def __init__(self, conn: Connection, services: Services, listener: str) -> None:
        self.conn = conn
        self.services = services
        self.listener = listener
        self.config = services.config.pop3
        self.hostname = services.config.hostname
        self.core = Pop3Connection(self.config.max_command_line)
        self.errors = 0
        self.username: str | None = None  # from USER, until PASS
        self.sasl: SaslExchange | None = None  # during AUTH
        self.account: Account | None = None
        self.maildrop: Maildrop | None = None
        self.locked: int | None = None  # account id whose lock this session holds
        self.auth_failures = 0
        self.pacer = CommandPacer(self.config.max_commands_per_second)
        # Before login the login deadline, after it the session one (None: no limit); a
        # deadline, unlike the idle timeout, is not reset by a client trickling bytes.
        self.deadline: float | None = None
        self.deadline_reply = LOGIN_TIME_LIMIT

    # ----- life cycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            self.conn.write(r.greeting(self.hostname))
            await self._loop()
        except _Close:
            await self._flush_quietly()
        except asyncio.CancelledError:
            # Server shutdown (it cancels only sessions waiting for their client). Nothing is
            # committed: the client's DELEs stay undone, as after a dropped connection.
            self.conn.write(r.SHUTTING_DOWN)
            raise
        except Exception:
            log.exception("pop3: internal error, closing connection from %s", self.conn.peer_ip)
            self.conn.write(r.INTERNAL_ERROR)
            await self._flush_quietly()
        finally:
            self._release_lock()
            await self.conn.close()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.config.login_timeout:
            self.deadline = loop.time() + self.config.login_timeout
        while True:
            event = self.core.next_event()
            if event is NEED_DATA:
                await self._flush()  # RFC 2449 6.6: reply to a pipelined batch in one go
                timeout, expired = self.config.idle_timeout, r.IDLE_TIMEOUT
                if self.deadline is not None and self.deadline - loop.time() < timeout:
                    timeout, expired = self.deadline - loop.time(), self.deadline_reply
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    data = await self.conn.read(timeout)
                except TimeoutError:
                    self.conn.write(expired)
                    raise _Close from None
                self.core.receive_data(data)
                continue
            if isinstance(event, Closed):
                return
            delay = self.pacer.delay(loop.time())
            if delay:  # over max_commands_per_second: the client waits, others do not
                await self._flush(force=True)
                await asyncio.sleep(delay)
            if isinstance(event, SyntaxErr | BadSequence | LineTooLong):
                self._end_sasl()  # RFC 5034 4: a malformed response fails the exchange
                self._error(event.reply.encode())
            elif isinstance(event, SaslResponse):
                await self._sasl_step(event)
            else:
                await self._command(event)

    async def _flush(self, force: bool = False) -> None:
        """Back-pressure: wait while much output is unsent; a client that stops reading for the
        idle timeout is dropped.

        asyncio's transport sends what it can at once and the rest as the socket allows, so a
        small backlog needs no waiting; skipping the timed drain then saves a timer per reply
        (a third of the server's time per RETR of a 4 KB message).
        """
        transport = self.conn.writer.transport
        if not force and transport.get_write_buffer_size() < BACKLOG_LIMIT:
            return
        try:
            async with asyncio.timeout(self.config.idle_timeout):
                await self.conn.drain()
        except TimeoutError:
            raise _Close from None

    async def _flush_quietly(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self.conn.drain()
        except TimeoutError:
            pass

    def _error(self, reply: bytes) -> None:
        """Send a client-caused -ERR; too many of them end the session."""
        self.conn.write(reply)
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self.conn.write(r.TOO_MANY_ERRORS)
            raise _Close

    def _release_lock(self) -> None:
        if self.locked is not None:
            self.services.pop3_locks.discard(self.locked)
            self.locked = None

    # ----- dispatch -------------------------------------------------------------------------------
    async def _command(self, cmd: Command) -> None:
        match cmd:
            case Capa():
                self._capa()
            case User(name=name):
                self._user(name)
            case Pass(password=password):
                await self._pass(password)
            case Auth(mechanism=mechanism, initial=initial):
                await self._auth(mechanism, initial)
            case Stls():
                await self._stls()
            case Quit():
                await self._quit()
            case Stat():
                count, size = self._drop().stat()
                self.conn.write(r.ok(f"{count} {size}"))
            case List(msg=n):
                self._list(n)
            case Uidl(msg=n):
                self._uidl(n)
            case Retr(msg=n):
                if (m := self._message(n)) is not None:
                    await self._send_message(m, r.ok(f"{m.size} octets"), None)
            case Top(msg=n, lines=lines):
                if (m := self._message(n)) is not None:
                    first = r.ok("Top of message follows")
                    await self._send_message(m, first, TopCutter(lines))
            case Dele(msg=n):
                if self._drop().delete(n):
                    self.conn.write(r.ok(f"Message {n} deleted"))
                else:
                    self._error(r.NO_SUCH_MESSAGE)
            case Rset():
                count = self._drop().reset()
                self.conn.write(r.ok(f"Maildrop has {count} messages"))
            case Noop():
                self.conn.write(r.ok())
            case _:
                assert_never(cmd)

    def _list(self, n: int | None) -> None:
        drop = self._drop()
        if n is None:
            count, size = drop.stat()
            lines = (f"{num} {octets}" for num, octets in drop.listing())
            self.conn.write(r.multiline(r.ok(f"{count} messages ({size} octets)"), lines))
        elif (m := self._message(n)) is not None:
            self.conn.write(r.ok(f"{n} {m.size}"))

    def _uidl(self, n: int | None) -> None:
        if n is None:
            lines = (f"{num} {uid}" for num, uid in self._drop().uid_listing())
            self.conn.write(r.multiline(r.ok("Unique-ID listing follows"), lines))
        elif (m := self._message(n)) is not None:
            self.conn.write(r.ok(f"{n} {m.uidl}"))

    def _drop(self) -> Maildrop:
        assert self.maildrop is not None, "the state table admits this only in TRANSACTION"
        return self.maildrop

    def _message(self, n: int) -> StoredMessage | None:
        m = self._drop().get(n)
        if m is None:
            self._error(r.NO_SUCH_MESSAGE)
        return m

    def _capa(self) -> None:
        caps = r.capabilities(
            authenticated=self.core.state is State.TRANSACTION,
            tls_active=self.conn.is_tls,
            plaintext_allowed=self._plaintext_allowed(),
        )
        self.conn.write(r.multiline(r.ok("Capability list follows"), caps))

    def _plaintext_allowed(self) -> bool:
        return self.services.authenticator.plaintext_allowed(self.conn)

    # ----- AUTHORIZATION --------------------------------------------------------------------------
    def _user(self, name: str) -> None:
        if not self._plaintext_allowed():
            self._error(r.TLS_REQUIRED)
            return
        # The same +OK for every name (RFC 1939 7 allows it), so USER reveals nobody.
        self.username = name
        self.core.set_state(State.USER_GIVEN)
        self.conn.write(r.ok("Send your password"))

    async def _pass(self, password: str) -> None:
        username, self.username = self.username, None
        assert username is not None, "the state table admits PASS only after USER"
        await self._login(username, password)  # from USER_GIVEN

    async def _auth(self, mechanism: str | None, initial: str | None) -> None:
        allowed = self._plaintext_allowed()
        if mechanism is None:
            # Bare AUTH: list the mechanisms (pre-RFC 5034 clients such as Outlook probe this).
            mechs = MECHANISMS if allowed else ()
            self.conn.write(r.multiline(r.ok("Supported mechanisms follow"), mechs))
            return
        if not allowed:
            self._error(r.TLS_REQUIRED)
            return
        if mechanism not in MECHANISMS:
            self._error(r.err("Unsupported authentication mechanism"))
            return
        self.username = None
        if self.core.state is State.USER_GIVEN:
            self.core.set_state(State.AUTHORIZATION)
        self.sasl = SaslExchange(mechanism)
        self.core.set_state(State.SASL)
        step = self.sasl.start(None)
        if initial is not None:
            # The initial response is taken as the answer to the first challenge, so "*" cancels
            # and "=" is an empty response, which PLAIN and LOGIN refuse as malformed (RFC 5034 4).
            step = self.sasl.step(initial.encode("ascii", "replace"))
        await self._sasl_outcome(step)

    async def _sasl_step(self, response: SaslResponse) -> None:
        assert self.sasl is not None, "SASL state without an exchange"
        await self._sasl_outcome(self.sasl.step(response.data.encode("ascii", "replace")))

    async def _sasl_outcome(self, step: SaslStep) -> None:
        match step:
            case Challenge(text=text):
                self.core.set_state(State.SASL)
                self.conn.write(r.continuation(text))
            case Failure(cancelled=True):
                self._end_sasl()
                self._error(r.err("Authentication cancelled"))  # RFC 5034 4
            case Failure(reason=reason) if reason == PROXY_REFUSED:
                # We offer no proxy authorization (RFC 4616 2): acting as another user fails.
                log.info("pop3: refused authzid from %s", self.conn.peer_ip)
                self._end_sasl()
                self._error(r.INVALID_CREDENTIALS)
            case Failure(reason=reason):
                self._end_sasl()
                self._error(r.err(f"Invalid SASL response: {reason}"))
            case Success(credentials=creds):
                await self._login(creds.username, creds.password)  # from SASL
            case _:
                assert_never(step)

    def _end_sasl(self) -> None:
        self.sasl = None
        if self.core.state is State.SASL:
            self.core.set_state(State.AUTHORIZATION)

    async def _login(self, username: str, password: str) -> None:
        """Verify (the authenticator sleeps the growing failure delay), then lock and open.

        Called in USER_GIVEN or SASL; ends in TRANSACTION, or in AUTHORIZATION on any failure.
        """
        self.username = None
        self.sasl = None
        try:
            account = await self.services.authenticator.authenticate(
                username, password, self.conn.peer_ip
            )
        except LoginsSuspended:  # banned for failed logins; logged by the authenticator
            self.core.set_state(State.AUTHORIZATION)
            self._error(r.err("Too many failed logins, try again later", r.RespCode.SYS_TEMP))
            return
        if account is None:
            log.info("pop3: login failed for %r from %s", username, self.conn.peer_ip)
            self.core.set_state(State.AUTHORIZATION)
            self._error(r.INVALID_CREDENTIALS)
            self.auth_failures += 1
            limit = self.config.max_auth_failures  # 0: no limit
            if limit and self.auth_failures >= limit:
                self.conn.write(TOO_MANY_AUTH_FAILURES)
                raise _Close
            return
        locks = self.services.pop3_locks
        if account.id in locks:
            log.info("pop3: maildrop locked: %s from %s", account.address, self.conn.peer_ip)
            self.core.set_state(State.AUTHORIZATION)
            self._error(r.IN_USE)  # RFC 1939 8 and RFC 2449 8.1.1
            return
        locks.add(account.id)  # before any await, so no second session slips in
        self.locked = account.id
        try:
            messages = await asyncio.to_thread(self.services.store.pop3_messages, account.id)
        except StorageUnavailable:
            log.warning("pop3: storage unavailable opening maildrop of %s", account.address)
            self._release_lock()
            self.core.set_state(State.AUTHORIZATION)
            self.conn.write(r.STORAGE_TEMP)
            return
        self.account = account
        self.maildrop = Maildrop(messages)
        self.core.set_state(State.TRANSACTION)
        most = self.config.max_session_time
        self.deadline = asyncio.get_running_loop().time() + most if most else None
        self.deadline_reply = SESSION_TIME_LIMIT
        count, size = self.maildrop.stat()
        log.info("pop3: %s logged in from %s (%d messages)", account.address, self.conn.peer_ip,
                 count)
        self.conn.write(r.ok(f"Logged in, {count} messages ({size} octets)"))

    async def _stls(self) -> None:
        if self.conn.is_tls:
            self._error(r.err("Already using TLS"))
            return
        self.conn.write(r.ok("Begin TLS negotiation"))
        await self._flush(force=True)
        # RFC 2595 4 / CVE-2011-0411: nothing sent before the handshake may be executed after it.
        self.core.discard_buffer()
        try:
            await self.conn.start_tls(self.services.tls, TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            log.info("pop3: STLS handshake with %s failed: %s", self.conn.peer_ip, exc)
            raise _Close from None
        # The session starts over: a USER given in plaintext does not carry into TLS.
        self.username = None
        if self.core.state is State.USER_GIVEN:
            self.core.set_state(State.AUTHORIZATION)

    async def _quit(self) -> None:
        if self.core.state is not State.TRANSACTION:
            self.conn.write(r.ok(f"{self.hostname} mailwright POP3 signing off"))
            raise _Close
        # RFC 1939 6: UPDATE removes the marked messages; +OK only once that is durable.
        self.core.set_state(State.UPDATE)
        account, drop = self.account, self._drop()
        assert account is not None
        uids = drop.deleted_uids()
        if uids:
            try:
                await self.services.store.pop3_commit(account.id, uids, account.pop3_policy)
            except StorageUnavailable:
                log.warning("pop3: storage unavailable committing for %s", account.address)
                self.conn.write(r.err("Some deleted messages not removed", r.RespCode.SYS_TEMP))
                raise _Close from None
            log.info("pop3: %s removed %d messages (policy %s)", account.address, len(uids),
                     account.pop3_policy)
        self._release_lock()
        left = len(drop)
        self.conn.write(r.ok(f"{self.hostname} mailwright POP3 signing off ({left} messages left)"))
        raise _Close

    # ----- TRANSACTION: sending a message ---------------------------------------------------------
    async def _send_message(self, msg: StoredMessage, first: bytes, cut: TopCutter | None) -> None:
        """RETR / TOP: the +OK line, the byte-stuffed message, CRLF.CRLF (RFC 1939 3)."""
        path = self.services.store.blob_path(msg.blob)
        stuffer = ByteStuffer()
        if msg.size <= INLINE_READ_LIMIT:
            try:
                data = _read_small(path)
            except OSError as exc:
                self._unreadable(msg, exc)
                return
            body = cut.feed(data) if cut is not None else data
            self.conn.write(first + stuffer.feed(body) + stuffer.finish())
            await self._flush()
            return
        try:
            f = await asyncio.to_thread(path.open, "rb")
        except OSError as exc:
            self._unreadable(msg, exc)
            return
        try:
            self.conn.write(first)
            while True:
                chunk = await asyncio.to_thread(f.read, READ_CHUNK)
                if not chunk:
                    break
                if cut is not None:
                    chunk = cut.feed(chunk)
                self.conn.write(stuffer.feed(chunk))
                await self._flush()  # back-pressure: never buffer more than a chunk or so
                if cut is not None and cut.done:
                    break
        except OSError as exc:
            # Mid-response the client cannot be told in-band; closing is the only honest answer.
            log.error("pop3: reading message %s failed mid-stream: %s", msg.blob, exc)
            raise _Close from None
        finally:
            f.close()
        self.conn.write(stuffer.finish())

    def _unreadable(self, msg: StoredMessage, exc: OSError) -> None:
        log.error("pop3: cannot read message file %s: %s", msg.blob, exc)
        self.conn.write(r.err("Message temporarily unavailable", r.RespCode.SYS_TEMP))

