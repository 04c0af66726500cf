"""The asyncio SMTP session: reads the socket, applies timeouts and policy, delivers.

All framing, limits and sequencing are in the pure `core`; this module decides (relay, sender
ownership, authentication), stages and delivers messages, and writes replies.

Invariants (see also the package docstring):
- Replies are written in command order and flushed when the client's input is exhausted, so a
  pipelining client (RFC 2920 3.1) gets its replies in one write and a lock-step one at once.
- The 250 for a message is sent only after `Deliverer.deliver()` returned: the durability point.
- A staged message is aborted on every path that does not deliver it (error, RSET, EHLO, EOF,
  timeout, cancellation, crash).
- Every error a client can cause is a reply. An exception from a bug is logged, answered with
  421 and ends this connection only.
- Passwords exist only in the SASL `Success` and `_finish_auth`'s locals; nothing logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import secrets
import ssl
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, assert_never

from mailwright.auth import sasl
from mailwright.auth.authenticator import LoginsSuspended
from mailwright.capture.faults import decide
from mailwright.delivery import LocalRecipient, Refusal, RemoteRecipient
from mailwright.net.connection import Connection
from mailwright.net.pacing import CommandPacer
from mailwright.services import Services
from mailwright.smtp import responses as R
from mailwright.smtp.capture_mode import CaptureMode
from mailwright.smtp.commands import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Vrfy,
)
from mailwright.smtp.core import (
    NEED_DATA,
    AuthResponse,
    BadSequence,
    ChunkEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    Event,
    NeedData,
    ServerConnection,
)
from mailwright.smtp.parser import SyntaxErr
from mailwright.smtp.responses import Reply, render
from mailwright.smtp.state import State
from mailwright.store.api import (
    Account,
    Envelope,
    EnvelopeRecipient,
    InvalidAddress,
    StagedMessage,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from mailwright.mailauth.policy import Verdict

log = logging.getLogger("mailwright.smtp")

# RFC 6409 / 8314: the submission roles require AUTH before MAIL; "smtp" is the MX role.
SUBMISSION_LISTENERS: Final = frozenset({"submission", "submissions"})
# A client that never completes its TLS handshake must not hold the socket for the full
# command timeout (RFC 3207 gives none; Postfix's smtpd_starttls_timeout is 300 s per read).
TLS_HANDSHAKE_TIMEOUT: Final = 30.0
# RFC 4954 6 / RFC 4616 2: we offer no proxy authorization.
AUTHZID_REFUSED: Final = Reply(535, "5.7.8", "Authorization identity not allowed")
# RFC 4954 6: 454 4.7.0 "Temporary authentication failure" (the address is banned for a while).
AUTH_SUSPENDED: Final = Reply(454, "4.7.0", "Temporary authentication failure, try again later")
# max_session_time reached (config.SmtpConfig): as a timeout, 421 4.4.2 (RFC 3463 4.4.2).
SESSION_TIME_LIMIT: Final = Reply(421, "4.4.2", "Session time limit reached, closing connection")
# max_auth_failures reached: 421 and close (RFC 5321 3.8 allows 421 at any time).
TOO_MANY_AUTH_FAILURES: Final = Reply(
    421, "4.7.0", "Too many authentication failures, closing connection"
)
HELP_LINES: Final = (
    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
    "See RFC 5321 and https://www.rfc-editor.org/rfc/rfc5321",
)


def busy_reply(hostname: str) -> bytes:
    """RFC 5321 3.8 / 4.2.3: 421 when the service is not available (connection limit)."""
    return render(Reply(421, "4.7.0", f"{hostname} Too many connections, try again later"))


def _has_non_ascii(address: str) -> bool:
    return not address.isascii()


class Session(CaptureMode):
    def __init__(self, conn: Connection, services: Services, listener: str) -> None:
        self.conn = conn
        self.services = services
        self.listener = listener
        self.cfg = services.config.smtp
        self.hostname = services.config.hostname
        self.core = ServerConnection(
            max_command_line=self.cfg.max_command_line,
            max_data_line=self.cfg.max_data_line,
            max_message_size=self.cfg.max_message_size,
        )
        self.out = bytearray()
        self.errors = 0
        self.closing = False
        self.helo = ""
        self.esmtp = False
        self.account: Account | None = None
        self.sasl: sasl.SaslExchange | None = None
        self.auth_failures = 0
        self.pacer = CommandPacer(self.cfg.max_commands_per_second)
        # Capture mode (capture/): injected faults; `stalled` is a timeout@ fault (no reply
        # ever again), `any_auth` an AUTH taken without checking (capture.accept_any_auth).
        self.capture = services.capture
        self.stalled = False
        self.any_auth = False
        self._reset_transaction()

    # ----- plumbing ------------------------------------------------------------------------------
    def reply(self, reply: Reply) -> None:
        self.out += self.core.render(reply)
        # Every permanent error counts (as Postfix's smtpd_hard_error_limit does); past the
        # limit the client is misbehaving or probing: 421 and close (RFC 5321 4.2.3).
        if reply.code >= 500:
            self.errors += 1
            if self.errors >= self.cfg.max_errors and not self.closing:
                self.out += self.core.render(R.TOO_MANY_ERRORS)
                self.closing = True

    async def flush(self) -> None:
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            self.conn.write(data)
            if not self.conn.pending_output():
                return  # all handed to the kernel: nothing to wait for (and no timer to arm)
            try:
                # A client that pipelines without reading our replies would block this drain
                # forever (a slow-read attack): it gets the command timeout, then is dropped.
                async with asyncio.timeout(self.cfg.command_timeout):
                    await self.conn.drain()
            except TimeoutError:
                log.info("smtp %s: client stopped reading replies; closing", self.conn.peer_ip)
                self.closing = True

    def _reset_transaction(self) -> None:
        staged = getattr(self, "staged", None)
        if staged is not None:
            _abort(staged)
        self.mail: Mail | None = None
        self.recipients: list[tuple[EnvelopeRecipient, LocalRecipient | RemoteRecipient]] = []
        self.staged: StagedMessage | None = None
        self.chunk_error: Reply | None = None
        self.queue_id = ""

    def abort(self) -> None:
        self._reset_transaction()

    # ----- main loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.cfg.max_session_time
        deadline = loop.time() + limit if limit else None
        # When we began waiting for the next command line: command_timeout is a deadline for
        # the whole line, so a byte every few seconds (slowloris) does not keep it open.
        waiting_since: float | None = None
        self.out += render(Reply(220, "", f"{self.hostname} ESMTP mailwright ready"))
        while not self.closing:
            ev = self.core.next_event()
            if ev is NEED_DATA:
                await self.flush()
                if self.closing:
                    break
                now = loop.time()
                if self.core.reading_message:
                    # RFC 5321 4.5.3.2.5-6: the data timeouts are per block, i.e. per read.
                    waiting_since = None
                    timeout, expired = self.cfg.data_timeout, R.TIMEOUT
                else:
                    waiting_since = now if waiting_since is None else waiting_since
                    timeout = self.cfg.command_timeout - (now - waiting_since)
                    expired = R.TIMEOUT
                if deadline is not None and deadline - now < timeout:
                    timeout, expired = deadline - now, SESSION_TIME_LIMIT
                try:
                    if timeout <= 0:
                        raise TimeoutError
                    data = await self.conn.read(timeout)
                except TimeoutError:
                    self.out += self.core.render(expired)
                    break
                self.core.receive_data(data)
                continue
            assert not isinstance(ev, NeedData)
            waiting_since = None
            if not isinstance(ev, DataChunk | DataEnd | ChunkEnd | ConnectionClosed):
                delay = self.pacer.delay(loop.time())
                if delay:
                    await self.flush()
                    await asyncio.sleep(delay)
            if self.capture is not None and not isinstance(ev, DataChunk | ConnectionClosed):
                await self._injected_delay()
            await self.handle(ev)
            if self.stalled:
                await self._stall()
                break
        await self.flush()

    async def handle(self, ev: Event) -> None:
        match ev:
            case SyntaxErr(reply=reply):
                if self.sasl is not None:  # an overlong SASL line ends the exchange
                    self.sasl = None
                self.reply(reply)
            case BadSequence(command=cmd):
                self.reply(self._sequence_reply(cmd))
            case ConnectionClosed():
                self.closing = True
            case DataChunk(data=data):
                if self.staged is not None and self.chunk_error is None:
                    self._write(data)
            case DataEnd(error=error):
                await self._end_message(Data(), error)
            case ChunkEnd(command=cmd, error=error):
                await self._end_chunk(cmd, error)
            case AuthResponse(line=line):
                await self._auth_response(line)
            case _:
                await self.command(ev)

    def _sequence_reply(self, cmd: Command) -> Reply:
        if self.core.state is State.CONNECTED and not isinstance(cmd, Ehlo | Helo):
            return Reply(503, "5.5.1", "Send EHLO or HELO first")
        if isinstance(cmd, Mail):
            return Reply(503, "5.5.1", "Nested MAIL command")
        if isinstance(cmd, Rcpt):
            return Reply(503, "5.5.1", "Need MAIL before RCPT")
        if isinstance(cmd, Data | Bdat):
            return Reply(503, "5.5.1", "Need RCPT before DATA/BDAT")
        return R.BAD_SEQUENCE

    async def command(self, cmd: Command) -> None:
        match cmd:
            case Ehlo() | Helo():
                self._hello(cmd)
            case Mail():
                self._mail(cmd)
            case Rcpt():
                self._rcpt(cmd)
            case Data():
                self._data(cmd)
            case Bdat():
                self._bdat(cmd)
            case Rset():
                self._reset_transaction()
                self.core.transition(cmd, ok=True)
                self.reply(R.OK)
            case Noop():
                self.reply(R.OK)
            case Quit():
                self.reply(Reply(221, "2.0.0", f"{self.hostname} closing connection"))
                self.closing = True
            case Vrfy():
                # RFC 5321 3.5.3: 252 when we will not verify (no user enumeration).
                self.reply(Reply(252, "2.5.2", "Cannot VRFY user, but will accept message"))
            case Expn():
                self.reply(Reply(502, "5.5.1", "EXPN not available"))
            case Help():
                self.reply(Reply(214, "2.0.0", *HELP_LINES))
            case StartTls():
                await self._starttls(cmd)
            case Auth():
                await self._auth(cmd)
            case _:
                assert_never(cmd)

    # ----- greeting ------------------------------------------------------------------------------
    def _auth_allowed(self) -> bool:
        return self.services.authenticator.plaintext_allowed(self.conn)

    def _hello(self, cmd: Ehlo | Helo) -> None:
        # RFC 5321 4.1.4: EHLO/HELO also resets any transaction in progress.
        self._reset_transaction()
        self.helo = cmd.domain
        self.core.transition(cmd, ok=True)
        if isinstance(cmd, Helo):
            self.esmtp = False
            self.reply(Reply(250, "", f"{self.hostname}"))
            return
        self.esmtp = True
        lines = [
            f"{self.hostname} Hello {cmd.domain}",
            "PIPELINING",  # RFC 2920
            f"SIZE {self.cfg.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "SMTPUTF8",  # RFC 6531
            "ENHANCEDSTATUSCODES",  # RFC 2034
        ]
        if not self.conn.is_tls:
            lines.append("STARTTLS")  # RFC 3207 4.2: not after TLS
        if self._auth_allowed():
            lines.append("AUTH PLAIN LOGIN")  # RFC 4954; only where a password may be sent
        lines += ["CHUNKING", "BINARYMIME", "DSN", "HELP"]
        # The EHLO reply carries keywords, never enhanced codes (RFC 2034 3, RFC 5321 4.1.1.1).
        self.reply(Reply(250, "", *lines))

    # ----- transaction ---------------------------------------------------------------------------
    def _mail(self, cmd: Mail) -> None:
        reply = self._check_mail(cmd)
        if reply is not None:
            self.reply(reply)
            return
        self._reset_transaction()
        params = dict(cmd.params)
        if "AUTH" in params and self.account is None:
            params["AUTH"] = "<>"  # RFC 4954 5: not trusted from an unauthenticated client
        self.mail = Mail(cmd.address, params)
        self.core.transition(cmd, ok=True)
        self.reply(Reply(250, "2.1.0", "Sender OK"))

    def _check_mail(self, cmd: Mail) -> Reply | None:
        # Capture mode takes mail from any session: none of it ever leaves.
        if self.listener in SUBMISSION_LISTENERS and self.account is None and self.capture is None:
            return R.NEED_AUTH  # RFC 6409 4.3 / RFC 4954 6
        size = cmd.params.get("SIZE")
        if size is not None and int(size) > self.cfg.max_message_size:
            return R.TOO_BIG  # RFC 1870 6.1
        if _has_non_ascii(cmd.address) and "SMTPUTF8" not in cmd.params:
            return R.NON_ASCII_ADDRESS  # RFC 6531 3.5
        if (
            self.account is not None
            and not self.any_auth  # capture.accept_any_auth: any sender
            and not self.services.deliverer.sender_allowed(self.account, cmd.address)
        ):
            return R.NOT_OWNER  # RFC 6409 6.1: the submission server may check the sender
        return None

    def _rcpt(self, cmd: Rcpt) -> None:
        assert self.mail is not None
        if len(self.recipients) >= self.cfg.max_recipients:
            self.reply(R.TOO_MANY_RECIPIENTS)  # RFC 5321 4.5.3.1.10
            return
        if _has_non_ascii(cmd.address) and "SMTPUTF8" not in self.mail.params:
            self.reply(R.NON_ASCII_ADDRESS)
            return
        address = cmd.address
        if address.lower() == "postmaster":
            address = f"postmaster@{self.hostname}"  # RFC 5321 4.5.1
        if self.capture is not None:
            fault = decide("rcpt", [address], self.capture.faults, random.random())
            if fault is not None:
                self._inject(fault)
                return
        try:
            may_relay = self.account is not None  # never an open relay
            resolution = self.services.deliverer.resolve(address, may_relay=may_relay)
        except InvalidAddress:
            resolution = Refusal.BAD_ADDRESS
        except StorageUnavailable:
            self.reply(R.STORAGE_UNAVAILABLE)
            return
        match resolution:
            case Refusal.NO_SUCH_USER:
                self.reply(R.NO_SUCH_USER)
            case Refusal.RELAY_DENIED:
                self.reply(R.RELAY_DENIED)
            case Refusal.BAD_ADDRESS:
                self.reply(R.BAD_ADDRESS)
            case LocalRecipient() | RemoteRecipient():
                self.recipients.append((EnvelopeRecipient(address, dict(cmd.params)), resolution))
                self.core.transition(cmd, ok=True)
                self.reply(Reply(250, "2.1.5", "Recipient OK"))
            case _:
                assert_never(resolution)

    def _start_message(self) -> Reply | None:
        """Stage a message file and write the trace headers (RFC 5321 4.4) into it."""
        self.chunk_error = None
        try:
            self.staged = self.services.deliverer.stage()
        except (OSError, StorageUnavailable) as exc:
            log.warning("smtp %s: cannot stage a message: %s", self.conn.peer_ip, exc)
            return R.STORAGE_UNAVAILABLE
        self.queue_id = secrets.token_hex(6).upper()
        self._write(self._trace_headers())
        return self.chunk_error

    def _write(self, data: bytes) -> None:
        """Write message octets; a full disk fails this message (452), not the session."""
        assert self.staged is not None
        try:
            self.staged.write(data)
        except (OSError, StorageUnavailable) as exc:
            log.warning("smtp %s: cannot write message %s: %s", self.conn.peer_ip,
                        self.queue_id, exc)
            _abort(self.staged)
            self.staged = None
            self.chunk_error = R.INSUFFICIENT_STORAGE  # RFC 3463 4.3.1; keep draining

    def _data(self, cmd: Data) -> None:
        assert self.mail is not None
        if self.mail.params.get("BODY") == "BINARYMIME":
            # RFC 3030 3: BINARYMIME content can only be sent with BDAT.
            self.reply(Reply(503, "5.5.1", "BODY=BINARYMIME requires BDAT"))
            return
        error = self._start_message()
        if error is not None:
            self.chunk_error = None
            self.reply(error)
            return
        self.core.start_data()
        self.reply(Reply(354, "", "End data with <CR><LF>.<CR><LF>"))

    def _bdat(self, cmd: Bdat) -> None:
        if self.staged is None and self.chunk_error is None:
            self.chunk_error = self._start_message()

    async def _end_chunk(self, cmd: Bdat, error: Reply | None) -> None:
        error = error or self.chunk_error
        if error is not None or not cmd.last:
            if error is not None:
                self._reset_transaction()
                self.core.transition(cmd, ok=False)
                self.reply(error)
            else:
                self.core.transition(cmd, ok=True)
                self.reply(Reply(250, "2.0.0", f"{cmd.size} octets received"))
            return
        await self._end_message(cmd, None)

    async def _end_message(self, cmd: Data | Bdat, error: Reply | None) -> None:
        error = error or self.chunk_error
        if error is not None or self.staged is None or self.mail is None:
            self._reset_transaction()
            self.core.transition(cmd, ok=False)
            self.reply(error or R.STORAGE_UNAVAILABLE)
            return
        if self.capture is not None:
            addresses = [rcpt.address for rcpt, _ in self.recipients]
            fault = decide("data", addresses, self.capture.faults, random.random())
            if fault is not None:
                self._reset_transaction()
                self.core.transition(cmd, ok=False)
                self._inject(fault)
                return
        staged, self.staged = self.staged, None
        envelope = Envelope(
            mail_from=self.mail.address,
            mail_params=dict(self.mail.params),
            helo=self.helo,
            client_ip=self.conn.peer_ip,
            authenticated_as=self.account.address if self.account else None,
        )
        queue_id, recipients = self.queue_id, self.recipients
        try:
            verdict = await self._inbound_checks(staged, envelope)
            if verdict is not None and verdict.action in ("reject", "tempfail"):
                _abort(staged)
                log.info(
                    "smtp %s: %s %s from=<%s>: %s", self.conn.peer_ip, verdict.action,
                    queue_id, envelope.mail_from, verdict.reason,
                )
                self._reset_transaction()
                self.core.transition(cmd, ok=False)
                self.reply(Reply(verdict.code, verdict.status, _verdict_text(verdict)))
                return
            junk = verdict is not None and verdict.action == "junk"
            await self.services.deliverer.deliver(staged, envelope, recipients, junk=junk)
        except StorageUnavailable:
            _abort(staged)
            log.warning(
                "smtp %s: storage unavailable, message %s deferred", self.conn.peer_ip, queue_id
            )
            self._reset_transaction()
            self.core.transition(cmd, ok=False)
            self.reply(R.STORAGE_UNAVAILABLE)
            return
        except BaseException:
            _abort(staged)
            raise
        log.info(
            "smtp %s: accepted %s from=<%s> rcpts=%d size=%d",
            self.conn.peer_ip, queue_id, envelope.mail_from, len(recipients), staged.size,
        )
        self._reset_transaction()
        self.core.transition(cmd, ok=True)
        self.reply(Reply(250, "2.0.0", f"OK queued as {queue_id}"))

    async def _inbound_checks(self, staged: StagedMessage, envelope: Envelope) -> Verdict | None:
        """SPF/DKIM/DMARC (mailauth.inbound) for unauthenticated mail on the MX listener only:
        submission is authenticated, and its mail is ours to sign, not to judge. Adds the
        Authentication-Results header to the staged message; None when no checks ran."""
        inbound = self.services.inbound
        if inbound is None or self.listener != "smtp" or self.account is not None:
            return None
        # A DNS failure is a tempfail verdict, not an exception; a full disk while rewriting
        # the staged file is StorageUnavailable, answered like any other.
        result = await inbound.process(
            staged, client_ip=self.conn.peer_ip, helo=self.helo, mail_from=envelope.mail_from
        )
        return result.verdict

    def _trace_headers(self) -> bytes:
        """Return-Path and Received (RFC 5321 4.4), protocol names of RFC 3848 / RFC 6531 3.7.3."""
        assert self.mail is not None
        utf8 = "SMTPUTF8" in self.mail.params
        proto = "UTF8SMTP" if utf8 else "ESMTP" if self.esmtp else "SMTP"
        if self.conn.is_tls:
            proto += "S"
        if self.account is not None:
            proto += "A"
        if proto in ("SMTPS", "SMTPA", "SMTPSA"):
            proto = "E" + proto  # RFC 3848 only defines the suffixes for ESMTP
        tls = ""
        if self.conn.is_tls and self.conn.tls_version:
            tls = f"\r\n\t(using {self.conn.tls_version} with cipher {self.conn.tls_cipher})"
        rcpt = ""
        if len(self.recipients) == 1:
            rcpt = f"\r\n\tfor <{self.recipients[0][0].address}>"
        date = email.utils.format_datetime(datetime.now(UTC))
        header = (
            f"Return-Path: <{self.mail.address}>\r\n"
            f"Received: from {self.helo} ([{self.conn.peer_ip}])\r\n"
            f"\tby {self.hostname} (mailwright) with {proto} id {self.queue_id}{tls}{rcpt};"
            f"\r\n\t{date}\r\n"
        )
        return header.encode("utf-8", "replace")

    # ----- STARTTLS (RFC 3207) ------------------------------------------------------------------
    async def _starttls(self, cmd: StartTls) -> None:
        if self.conn.is_tls:
            self.reply(Reply(503, "5.5.1", "TLS already active"))
            return
        self.reply(Reply(220, "2.0.0", "Ready to start TLS"))
        await self.flush()
        # RFC 3207 4.2: discard what was pipelined after STARTTLS and forget the session.
        self.core.start_tls()
        self._reset_transaction()
        self.helo, self.esmtp, self.account, self.sasl = "", False, None, None
        try:
            await self.conn.start_tls(self.services.tls, timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, TimeoutError, ConnectionError, OSError) as exc:
            log.info("smtp %s: TLS handshake failed: %s", self.conn.peer_ip, exc)
            self.closing = True

    # ----- AUTH (RFC 4954) -----------------------------------------------------------------------
    async def _auth(self, cmd: Auth) -> None:
        if self.account is not None:
            self.reply(Reply(503, "5.5.1", "Already authenticated"))
            return
        if not self._auth_allowed():
            self.reply(R.ENCRYPTION_REQUIRED)  # RFC 4954 4, RFC 8314
            return
        if cmd.mechanism not in sasl.MECHANISMS:
            self.reply(Reply(504, "5.5.4", "Unrecognized authentication type"))
            return
        self.sasl = sasl.SaslExchange(cmd.mechanism)
        step = self.sasl.start(None)
        if cmd.initial is not None:
            # The initial response is taken as the answer to the first challenge, so "*" cancels
            # and "=" is an empty response, which PLAIN and LOGIN refuse as malformed (RFC 4954 4).
            step = self.sasl.step(cmd.initial.encode("ascii", "replace").strip())
        await self._sasl_step(step)

    async def _auth_response(self, line: bytes) -> None:
        if self.sasl is None:  # cannot happen: the core only yields these after a challenge
            self.reply(R.BAD_SEQUENCE)
            return
        await self._sasl_step(self.sasl.step(line.strip()))

    async def _sasl_step(self, step: sasl.SaslStep) -> None:
        if isinstance(step, sasl.Challenge):
            self.out += render(Reply(334, "", step.text), enhanced=False)
            self.core.expect_auth_response()
            return
        self.sasl = None
        match step:
            case sasl.Failure(cancelled=True):
                self.reply(R.AUTH_CANCELLED)  # RFC 4954 4
            case sasl.Failure(reason=sasl.PROXY_REFUSED):
                self.reply(AUTHZID_REFUSED)
            case sasl.Failure():
                self.reply(R.AUTH_MALFORMED)
            case sasl.Success(credentials=creds):
                if creds.authzid and creds.authzid != creds.username:
                    # SMTP has always compared case-sensitively; the exchange ignores case.
                    self.reply(AUTHZID_REFUSED)
                    return
                await self._finish_auth(creds.username, creds.password)
            case _:
                assert_never(step)

    async def _finish_auth(self, username: str, password: str) -> None:
        if self.capture is not None and self.services.config.capture.accept_any_auth:
            self._accept_any_auth(username)
            return
        try:
            account = await self.services.authenticator.authenticate(
                username, password, self.conn.peer_ip
            )
        except LoginsSuspended:
            self.reply(AUTH_SUSPENDED)  # banned for failed logins; logged by the authenticator
            return
        del password
        if account is None:
            log.info("smtp %s: authentication failed for %r", self.conn.peer_ip, username)
            self.reply(R.AUTH_FAILED)
            self.auth_failures += 1
            limit = self.cfg.max_auth_failures  # 0: no limit
            if limit and self.auth_failures >= limit and not self.closing:
                self.out += self.core.render(TOO_MANY_AUTH_FAILURES)
                self.closing = True
            return
        self.account = account
        log.info("smtp %s: authenticated as %s", self.conn.peer_ip, account.address)
        self.reply(R.AUTH_OK)


def _verdict_text(verdict: Verdict) -> str:
    if verdict.action == "reject":
        return f"Message refused: {verdict.reason}"
    return f"Temporary DNS failure checking the sender, try again later ({verdict.reason})"


def _abort(staged: StagedMessage) -> None:
    try:
        staged.abort()
    except Exception:  # cleanup must not hide the reason we are aborting
        log.exception("smtp: could not remove a staged message")


async def serve(conn: Connection, services: Services, listener: str) -> None:
    """Serve one SMTP connection until QUIT, EOF, timeout or error (services.py contract)."""
    session = Session(conn, services, listener)
    try:
        await session.run()
    except asyncio.CancelledError:
        # Server shutdown (RFC 5321 3.8): tell the client before the socket goes away.
        conn.write(render(R.SHUTTING_DOWN, enhanced=session.core.esmtp))
        raise
    except Exception:
        log.exception("smtp %s: session failed; closing with 421", conn.peer_ip)
        with contextlib.suppress(Exception):  # the peer may be gone already
            await asyncio.wait_for(conn.send(render(R.INTERNAL_ERROR)), 5)
    finally:
        session.abort()
        await conn.close()
