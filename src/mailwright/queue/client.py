"""The outbound SMTP client: one session to one hop, carrying one or more messages.

Why our own client and not aiosmtplib: aiosmtplib sends commands one at a time (no RFC 2920
PIPELINING, so a 20-recipient message costs 20 round trips), wants the whole message in memory
(we stream a file of up to 50 MiB in 64 KiB chunks), and reports refused recipients only in
bulk, while the queue needs exactly one final reply per recipient (with its enhanced code) and
the raw EHLO keywords to decide 8BITMIME, SMTPUTF8 and DSN before sending.

Invariants:
- `send()` returns exactly one final `Reply` per recipient address, or raises `HostFailure`
  when the session broke before that (then nothing is known: the queue retries, and a duplicate
  is possible but never a loss).
- A message is never sent to a peer that cannot take it: 8-bit content without 8BITMIME gets
  554 5.6.3 (RFC 6152 3), an internationalised envelope without SMTPUTF8 gets 553 5.6.7
  (RFC 6531 3.2), a message over the peer's SIZE gets 552 5.3.4 (RFC 1870 6), all without a
  byte of it sent. DSN parameters go out only when the peer offers DSN (RFC 3461 4).
- TLS: "require"/"implicit" hops fail (HostFailure) rather than talk in plaintext;
  "opportunistic" uses STARTTLS when offered and, when the handshake fails, reconnects once in
  plaintext, as Postfix's "may" level does. Credentials (smart host) only ever go over TLS.
- Timeouts follow RFC 5321 4.5.3.2, with the one configured `command_timeout` for every reply
  and every data block.
- File reads are plain blocking reads of 64 KiB: the files are local and usually cached, and a
  thread hop per chunk would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mailwright.queue.routing import Hop
    from mailwright.store.api import EnvelopeRecipient

# Bounded memory while streaming the message (and the unit of the data-block timeout).
CHUNK_SIZE: Final = 64 * 1024
# RFC 5321 4.5.3.1.5 allows 512 octets per reply line; real servers send longer text, so allow
# much more, but bound it so a hostile peer cannot make us buffer without end.
MAX_REPLY_LINE: Final = 8192
MAX_REPLY_LINES: Final = 200
# QUIT is a courtesy: do not wait the full command timeout for its reply.
QUIT_TIMEOUT: Final = 5.0
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_8BIT = re.compile(rb"[\x80-\xff]")


@dataclass(frozen=True, slots=True)
class Reply:
    """A parsed SMTP reply; `enhanced` is the RFC 3463 code sent, else derived from the class."""

    code: int
    enhanced: str
    text: str  # the lines' text (enhanced codes removed), joined with "\n"

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    def __str__(self) -> str:
        """One line, as for logs and the DSN Diagnostic-Code ("550 5.1.1 no such user")."""
        text = " ".join(self.text.split("\n"))
        return " ".join(part for part in (str(self.code), self.enhanced, text) if part)


def parse_reply(lines: Sequence[bytes]) -> Reply:
    """Complete reply lines ("250-a", "250 b", CRLF stripped) -> Reply (RFC 5321 4.2.1).

    Raises ValueError when they are not a well-formed reply.
    """
    if not lines:
        raise ValueError("empty reply")
    code_text = lines[0][:3]
    texts: list[str] = []
    enhanced = ""
    for i, raw in enumerate(lines):
        last = i == len(lines) - 1
        if raw[:3] != code_text or not code_text.isdigit():
            raise ValueError(f"malformed reply line {raw[:80]!r}")
        sep = raw[3:4]
        if (last and sep not in (b" ", b"")) or (not last and sep != b"-"):
            raise ValueError(f"malformed reply line {raw[:80]!r}")
        text = raw[4:].decode("utf-8", errors="replace")
        match = _ENHANCED.match(text)
        # RFC 2034 4: the enhanced code's class equals the reply's first digit.
        if match and match.group(1) == chr(code_text[0]):
            if i == 0:
                enhanced = match.group(0).strip()
            text = text[match.end():]
        texts.append(text)
    code = int(code_text)
    if not enhanced and code // 100 in (2, 4, 5):
        enhanced = f"{code // 100}.0.0"
    return Reply(code, enhanced, "\n".join(texts))


class DotStuffer:
    """Transparency for DATA (RFC 5321 4.5.2), chunk by chunk, in bounded memory.

    A line starting with "." gets another "."; a bare LF becomes CRLF (RFC 5321 2.3.8: only CRLF
    ends a line on the wire); `end()` closes the message with CRLF "." CRLF.
    """

    def __init__(self) -> None:
        self._line_start = True
        self._cr = False  # the previous chunk ended with CR (a CRLF may be split)

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        head = b""
        if self._cr and data[:1] == b"\n":
            head, data = b"\n", data[1:]
            self._line_start, self._cr = True, False
            if not data:
                return head
        data = _BARE_LF.sub(b"\r\n", data)
        stuffed = data.replace(b"\r\n.", b"\r\n..")
        if self._line_start and data[:1] == b".":
            stuffed = b"." + stuffed
        self._line_start = data.endswith(b"\r\n")
        self._cr = data.endswith(b"\r")
        return head + stuffed

    def end(self) -> bytes:
        if self._cr:
            return b"\n.\r\n"
        return b".\r\n" if self._line_start else b"\r\n.\r\n"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for one session: envelope as stored, content from a file."""

    mail_from: str
    mail_params: Mapping[str, str | None]  # as stored (BODY, RET, ENVID, SMTPUTF8)
    recipients: Sequence[EnvelopeRecipient]
    path: Path
    offset: int  # stream the file from here (the runner skips our Return-Path)
    prefix: bytes = b""  # header lines sent before the file's bytes (DKIM-Signature)


class HostFailure(Exception):
    """This hop failed as a whole: try the next one, or defer (connect error, timeout, refused
    greeting or EHLO, TLS required but unavailable, 421, the connection lost mid-session)."""

    def __init__(self, message: str, reply: Reply | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.reply = reply
        self.permanent = permanent


class _TlsHandshakeFailed(HostFailure):
    """STARTTLS was accepted but the handshake failed (opportunistic hops retry in plaintext)."""


_unverified: ssl.SSLContext | None = None


def unverified_context() -> ssl.SSLContext:
    """Encryption without authentication: the norm for MX-to-MX STARTTLS (RFC 7435)."""
    global _unverified
    if _unverified is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _unverified = ctx
    return _unverified


async def connect(
    hop: Hop,
    *,
    helo: str,
    tls_context: ssl.SSLContext,
    connect_timeout: float,
    command_timeout: float,
) -> OutboundSession:
    """Open a ready session (greeting, EHLO, STARTTLS/AUTH as the hop says); HostFailure if not.

    `tls_context` is used when `hop.verify`; otherwise the peer's certificate is not checked.
    """
    context = tls_context if hop.verify else unverified_context()
    session = OutboundSession(hop, helo, context, command_timeout)
    try:
        await session._open(connect_timeout, starttls=True)
    except _TlsHandshakeFailed:
        await session._abort()
        if hop.tls != "opportunistic":
            raise
        session = OutboundSession(hop, helo, context, command_timeout)
        await session._open(connect_timeout, starttls=False)
    return session


class OutboundSession:
    """An SMTP session to one hop (see the module docstring); make it with `connect()`."""

    def __init__(
        self, hop: Hop, helo: str, tls_context: ssl.SSLContext, command_timeout: float
    ) -> None:
        self.hop = hop
        self.extensions: Mapping[str, str] = {}
        self.is_tls = False
        self._helo = helo
        self._tls_context = tls_context
        self._timeout = command_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._broken = False
        self._used = False

    # ----- opening ------------------------------------------------------------------------------
    async def _open(self, connect_timeout: float, *, starttls: bool) -> None:
        hop = self.hop
        implicit = hop.tls == "implicit"
        try:
            async with asyncio.timeout(connect_timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    hop.address,
                    hop.port,
                    ssl=self._tls_context if implicit else None,
                    server_hostname=hop.host if implicit else None,
                    limit=MAX_REPLY_LINE,
                )
        except (OSError, TimeoutError) as exc:
            raise HostFailure(f"connect to {self._where()} failed: {_describe(exc)}") from None
        self.is_tls = implicit
        try:
            # RFC 5321 3.1 / 4.5.3.2.1: the 220 greeting; anything else ends the session.
            greeting = await self._read_reply()
            if greeting.code != 220:
                raise self._failure("greeting", greeting)
            await self._hello()
            if hop.tls in ("require", "opportunistic") and starttls:
                await self._starttls()
            if hop.tls == "require" and not self.is_tls:
                raise HostFailure(f"{self._where()}: TLS required but STARTTLS not offered")
            if hop.auth is not None:
                await self._authenticate(*hop.auth)
        except BaseException:
            await self._abort()
            raise

    async def _hello(self) -> None:
        reply, lines = await self._command_lines(f"EHLO {self._helo}")
        if reply.code == 250:
            extensions: dict[str, str] = {}
            for line in lines[1:]:  # the first line is the server's name (RFC 5321 4.1.1.1)
                keyword, _, params = line.partition(" ")
                extensions[keyword.upper()] = params
            self.extensions = extensions
            return
        if reply.code == 421 or reply.temporary:
            raise self._failure("EHLO", reply)
        # RFC 5321 3.2: a server that does not know EHLO answers 500/502; fall back to HELO.
        reply = await self._command(f"HELO {self._helo}")
        if reply.code != 250:
            raise self._failure("HELO", reply)
        self.extensions = {}

    async def _starttls(self) -> None:
        if "STARTTLS" not in self.extensions:
            return
        reply = await self._command("STARTTLS")
        if reply.code != 220:
            if reply.code == 421 or self.hop.tls == "require":
                raise self._failure("STARTTLS", reply)
            return  # RFC 3207 4: the session goes on in plaintext (opportunistic)
        assert self._writer is not None
        try:
            await self._writer.start_tls(
                self._tls_context,
                server_hostname=self.hop.host,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
            self._broken = True
            raise _TlsHandshakeFailed(
                f"{self._where()}: TLS handshake failed: {_describe(exc)}"
            ) from None
        self.is_tls = True
        # RFC 3207 4.2: forget everything learnt before TLS and say EHLO again.
        await self._hello()

    async def _authenticate(self, user: str, password: str) -> None:
        if not self.is_tls:
            # RFC 4954 4 / RFC 8314: never credentials over plaintext.
            raise HostFailure(f"{self._where()}: refusing to send credentials without TLS")
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            # RFC 4616 2: authzid NUL authcid NUL passwd.
            token = _b64(f"\0{user}\0{password}")
            reply = await self._command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            reply = await self._command("AUTH LOGIN")
            if reply.code == 334:
                reply = await self._command(_b64(user))
            if reply.code == 334:
                reply = await self._command(_b64(password))
        else:
            raise HostFailure(
                f"{self._where()}: no AUTH PLAIN or LOGIN offered", permanent=True
            )
        if reply.code != 235:
            raise self._failure("AUTH", reply)

    # ----- sending ------------------------------------------------------------------------------
    async def send(self, outgoing: Outgoing) -> dict[str, Reply]:
        """Address -> final reply (module docstring); HostFailure if the session broke first."""
        if self._broken or self._writer is None:
            raise HostFailure(f"{self._where()}: session already closed")
        try:
            return await self._send(outgoing)
        except HostFailure:
            self._broken = True
            raise
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            self._broken = True
            raise HostFailure(f"{self._where()}: connection lost: {_describe(exc)}") from None

    async def _send(self, outgoing: Outgoing) -> dict[str, Reply]:
        addresses = [r.address for r in outgoing.recipients]
        if self._used:
            reply = await self._command("RSET")  # RFC 5321 4.1.1.5: a clean transaction
            if reply.code != 250:
                raise self._failure("RSET", reply)
        self._used = True
        refusal = self._refusal(outgoing)
        if refusal is not None:
            return dict.fromkeys(addresses, refusal)
        commands = [self._mail_command(outgoing)]
        commands += [self._rcpt_command(r) for r in outgoing.recipients]
        results: dict[str, Reply] = {}
        accepted: list[str] = []
        if "PIPELINING" in self.extensions:
            # RFC 2920 3.1: MAIL, the RCPTs and DATA go as one group; replies come in order.
            self._write_lines([*commands, "DATA"])
            mail = await self._read_reply()
            rcpt_replies = [await self._read_reply() for _ in outgoing.recipients]
            data = await self._read_reply()
        else:
            mail = await self._command(commands[0])
            rcpt_replies = []
            if mail.code == 250:
                rcpt_replies = [await self._command(c) for c in commands[1:]]
            data = None
        self._check_closing(mail, *rcpt_replies)
        if mail.code != 250:
            if data is not None and data.code == 354:
                await self._abort_data()
            return dict.fromkeys(addresses, mail)
        for address, reply in zip(addresses, rcpt_replies, strict=True):
            if reply.code in (250, 251):
                accepted.append(address)
            else:
                results[address] = reply
        if not accepted:
            if data is not None and data.code == 354:
                await self._abort_data()
            return results
        if data is None:
            data = await self._command("DATA")
        if data.code != 354:
            self._check_closing(data)
            results.update(dict.fromkeys(accepted, data))
            return results
        final = await self._stream(outgoing)
        self._check_closing(final)
        results.update(dict.fromkeys(accepted, final))
        return results

    def _refusal(self, outgoing: Outgoing) -> Reply | None:
        """The reply every recipient gets when this peer cannot take the message at all."""
        body = (outgoing.mail_params.get("BODY") or "").upper()
        if body == "BINARYMIME":
            # RFC 3030 3: binary content needs BDAT, which we do not speak.
            return Reply(554, "5.6.3", "binary content cannot be relayed with DATA")
        if "8BITMIME" not in self.extensions and self._has_8bit(outgoing):
            # RFC 6152 3: no 8-bit data to a server that did not offer 8BITMIME.
            return Reply(554, "5.6.3", f"{self.hop.host} does not accept 8-bit content")
        if self._needs_smtputf8(outgoing) and "SMTPUTF8" not in self.extensions:
            # RFC 6531 3.2 / 3.6: an internationalised envelope needs SMTPUTF8.
            return Reply(553, "5.6.7", f"{self.hop.host} does not support SMTPUTF8")
        limit = self.extensions.get("SIZE", "").strip()
        if limit.isdigit() and int(limit) > 0 and self._size(outgoing) > int(limit):
            # RFC 1870 6: do not send a message larger than the announced limit.
            return Reply(552, "5.3.4", f"message exceeds the size limit of {self.hop.host}")
        return None

    def _mail_command(self, outgoing: Outgoing) -> str:
        params: list[str] = []
        body = (outgoing.mail_params.get("BODY") or "").upper()
        if body == "8BITMIME" and "8BITMIME" in self.extensions:
            params.append("BODY=8BITMIME")
        if "SIZE" in self.extensions:
            params.append(f"SIZE={self._size(outgoing)}")
        if self._needs_smtputf8(outgoing):
            params.append("SMTPUTF8")
        if "DSN" in self.extensions:  # RFC 3461 4.3/4.4
            for key in ("RET", "ENVID"):
                value = outgoing.mail_params.get(key)
                if value:
                    params.append(f"{key}={value}")
        return " ".join([f"MAIL FROM:<{outgoing.mail_from}>", *params])

    def _rcpt_command(self, recipient: EnvelopeRecipient) -> str:
        params: list[str] = []
        if "DSN" in self.extensions:  # RFC 3461 4.1/4.2
            for key in ("NOTIFY", "ORCPT"):
                value = recipient.params.get(key)
                if value:
                    params.append(f"{key}={value}")
        return " ".join([f"RCPT TO:<{recipient.address}>", *params])

    @staticmethod
    def _needs_smtputf8(outgoing: Outgoing) -> bool:
        return (
            "SMTPUTF8" in {k.upper() for k in outgoing.mail_params}
            or not outgoing.mail_from.isascii()
            or any(not r.address.isascii() for r in outgoing.recipients)
        )

    @staticmethod
    def _size(outgoing: Outgoing) -> int:
        return len(outgoing.prefix) + max(0, outgoing.path.stat().st_size - outgoing.offset)

    @staticmethod
    def _has_8bit(outgoing: Outgoing) -> bool:
        if _8BIT.search(outgoing.prefix):
            return True
        with outgoing.path.open("rb") as f:
            f.seek(outgoing.offset)
            while chunk := f.read(CHUNK_SIZE):
                if _8BIT.search(chunk):
                    return True
        return False

    async def _stream(self, outgoing: Outgoing) -> Reply:
        """Send the dot-stuffed content and the final "."; return the reply to it."""
        writer = self._writer
        assert writer is not None
        stuffer = DotStuffer()
        with outgoing.path.open("rb") as f:
            f.seek(outgoing.offset)
            chunk = outgoing.prefix or f.read(CHUNK_SIZE)
            while chunk:
                writer.write(stuffer.feed(chunk))
                # RFC 5321 4.5.3.2.5: a time limit per data block.
                async with asyncio.timeout(self._timeout):
                    await writer.drain()
                chunk = f.read(CHUNK_SIZE)
        writer.write(stuffer.end())
        # RFC 5321 4.5.3.2.6: wait for the reply to the final ".".
        return await self._read_reply()

    async def _abort_data(self) -> None:
        """The server said 354 though nothing may be sent: end an empty message at once."""
        self._write_lines(["."])
        await self._read_reply()

    # ----- wire ---------------------------------------------------------------------------------
    def _write_lines(self, commands: Sequence[str]) -> None:
        assert self._writer is not None
        for command in commands:
            if "\r" in command or "\n" in command:
                raise ValueError("line break inside an SMTP command")  # a bug upstream
        self._writer.write("".join(f"{c}\r\n" for c in commands).encode("utf-8"))

    async def _command(self, command: str) -> Reply:
        return (await self._command_lines(command))[0]

    async def _command_lines(self, command: str) -> tuple[Reply, list[str]]:
        self._write_lines([command])
        return await self._read_reply_lines()

    async def _read_reply(self) -> Reply:
        return (await self._read_reply_lines())[0]

    async def _read_reply_lines(self) -> tuple[Reply, list[str]]:
        reader = self._reader
        assert reader is not None
        raw: list[bytes] = []
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    line = await reader.readuntil(b"\n")
                    raw.append(line.rstrip(b"\r\n"))
                    if raw[-1][3:4] != b"-" or len(raw) >= MAX_REPLY_LINES:
                        break
        except TimeoutError:
            self._broken = True
            raise HostFailure(f"{self._where()}: timeout waiting for a reply") from None
        except asyncio.IncompleteReadError:
            self._broken = True
            raise HostFailure(f"{self._where()}: connection closed by the server") from None
        except (asyncio.LimitOverrunError, ValueError):
            self._broken = True
            raise HostFailure(f"{self._where()}: reply line too long") from None
        except (OSError, ssl.SSLError) as exc:
            self._broken = True
            raise HostFailure(f"{self._where()}: connection lost: {_describe(exc)}") from None
        try:
            reply = parse_reply(raw)
        except ValueError as exc:
            self._broken = True
            raise HostFailure(f"{self._where()}: {exc}") from None
        texts = reply.text.split("\n") if raw else []
        return reply, texts

    def _check_closing(self, *replies: Reply) -> None:
        """RFC 5321 3.8: 421 means the server is closing the channel, whatever the command."""
        for reply in replies:
            if reply.code == 421:
                self._broken = True
                raise HostFailure(f"{self._where()}: {reply}", reply)

    def _failure(self, stage: str, reply: Reply) -> HostFailure:
        self._broken = True
        permanent = reply.permanent and reply.code != 421
        return HostFailure(f"{self._where()}: {stage} refused: {reply}", reply, permanent)

    def _where(self) -> str:
        hop = self.hop
        address = f"[{hop.address}]" if ":" in hop.address else hop.address
        return f"{hop.host} ({address}:{hop.port})"

    # ----- closing ------------------------------------------------------------------------------
    async def close(self) -> None:
        """QUIT politely when the session is still sound, then close; never raises."""
        writer = self._writer
        if writer is None:
            return
        if not self._broken:
            with contextlib.suppress(Exception):
                self._write_lines(["QUIT"])
                async with asyncio.timeout(min(self._timeout, QUIT_TIMEOUT)):
                    await self._read_reply()
        await self._abort()

    async def _abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        broken, self._broken = self._broken, True
        with contextlib.suppress(Exception):
            if broken:
                # Nothing more to say, and a half-done TLS layer would otherwise linger in
                # its shutdown timeout: drop the socket at once.
                writer.transport.abort()
            else:
                writer.close()
            async with asyncio.timeout(QUIT_TIMEOUT):
                await writer.wait_closed()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
