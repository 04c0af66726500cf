"""A real remote SMTP server for outbound tests: aiosmtpd in its own thread, told how to behave.

Why aiosmtpd and not a second mailwright: the queue must cope with peers that misbehave in ways
our own server never would (drop mid-DATA, refuse STARTTLS, hide 8BITMIME), and aiosmtpd lets a
test pick each reply. The peer records what it received so tests assert on the wire result.

    peer = SmtpPeer(starttls=True, eightbitmime=False).start()
    peer.rcpt_replies["bad@x.test"] = "550 5.1.1 no such user"
    ... deliver to peer.host:peer.port ...
    [message] = peer.wait_for(1)          # event-based: returns once one message is accepted
    assert message.tls and message.data == expected

Behaviour knobs (attributes; change them between attempts, the peer reads them per command):
    greeting       None (normal 220) or a full reply line sent instead, then the peer hangs up
                   (e.g. "421 4.3.2 busy", "554 5.7.1 go away")
    drop           None | "connect" (close before the greeting) | "mail" (close on MAIL, no
                   reply) | "rcpt" | "data" (after 354 and the first data line) | "dot" (after
                   the whole message, before the final reply)
    ehlo_reply     None or a reply line refusing EHLO (e.g. "502 5.5.1 no EHLO"): HELO fallback
    mail_reply     None or the reply to MAIL (e.g. "451 4.3.0 later")
    rcpt_reply     None or the reply to every RCPT; rcpt_replies: address -> reply (wins)
    data_reply     None ("250 2.0.0 OK") or the reply after the final dot (message not recorded
                   unless it starts with 2)
    starttls_reply None or a reply refusing STARTTLS after advertising it (e.g. "454 4.7.0 no")
    tls_broken     True: answer STARTTLS with 220, then hang up instead of the TLS handshake
    delay          seconds to wait before every reply line (a slow peer, for timeouts)
Constructor-only: host/port (bind several peers to one port on 127.0.0.2, 127.0.0.3... to act as
the MXes of one network: remote_smtp_port is one number), starttls (advertise STARTTLS),
implicit_tls (TLS from the first byte, RFC 8314), auth=(user, password) (advertise AUTH after
TLS and require it), eightbitmime / smtputf8 / dsn / pipelining (advertise them or not),
size (SIZE limit, None: not advertised), hostname (the greeting name).

Records: `messages` (accepted ones, `ReceivedMessage`), `sessions` (`SessionRecord` for every
connection, with the commands received in order). The certificate is self-signed, made with
mailwright.net.tls, valid for 127.0.0.1/localhost: `peer.cert_path` for a verifying client.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailwright.net.tls import server_context, write_self_signed

DEFAULT_TIMEOUT = 10.0
DROP_POINTS = frozenset({"connect", "mail", "rcpt", "data", "dot"})
# DSN parameters (RFC 3461) that aiosmtpd itself would refuse with 555.
_DSN_PARAMS = frozenset({"NOTIFY", "ORCPT", "RET", "ENVID"})


@dataclass
class ReceivedMessage:
    mail_from: str
    mail_params: dict[str, str | None]  # as sent (case kept), e.g. {"BODY": "8BITMIME"}
    rcpt: list[tuple[str, dict[str, str | None]]]  # accepted recipients with their params
    data: bytes  # the message after dot-unstuffing, CRLF line ends, without the final "."
    tls: bool
    ehlo: str
    auth_user: str | None
    session: int  # index into SmtpPeer.sessions

    @property
    def recipients(self) -> list[str]:
        return [address for address, _ in self.rcpt]


@dataclass
class SessionRecord:
    index: int
    ehlo: str = ""
    tls: bool = False
    auth_user: str | None = None
    commands: list[str] = field(default_factory=list)  # "MAIL FROM:<a> BODY=8BITMIME", "RSET"...
    # True when MAIL arrived with more commands already buffered behind it (RFC 2920 pipelining).
    pipelined: bool = False


def _parse_path_params(arg: str) -> tuple[str, dict[str, str | None]]:
    """'FROM:<a@b> K=V K2' -> ('a@b', {'K': 'V', 'K2': None}), case of values kept."""
    _, _, rest = arg.partition(":")
    rest = rest.strip()
    if rest.startswith("<"):
        path, _, params_text = rest[1:].partition(">")
    else:
        path, _, params_text = rest.partition(" ")
    params: dict[str, str | None] = {}
    for item in params_text.split():
        key, eq, value = item.partition("=")
        params[key.upper()] = value if eq else None
    return path, params


_tls_dir: Path | None = None
_tls_lock = threading.Lock()


def _tls_files() -> tuple[Path, Path]:
    """One self-signed pair per test process (EC keys are cheap, but files need a home)."""
    global _tls_dir
    with _tls_lock:
        if _tls_dir is None:
            _tls_dir = Path(tempfile.mkdtemp(prefix="smtp-peer-tls-"))
            atexit.register(shutil.rmtree, _tls_dir, True)
            write_self_signed(_tls_dir / "cert.pem", _tls_dir / "key.pem", "peer.example.test")
    return _tls_dir / "cert.pem", _tls_dir / "key.pem"


class _Handler:
    """aiosmtpd hooks: decide replies from the peer's knobs and record what was accepted."""

    def __init__(self, peer: SmtpPeer, conn: _PeerSMTP) -> None:
        self.peer = peer
        self.conn = conn

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        peer = self.peer
        if peer.ehlo_reply is not None:
            return [peer.ehlo_reply]
        session.host_name = hostname  # aiosmtpd leaves this to the hook when one exists
        self.conn.record.ehlo = hostname
        keywords = [line[4:] for line in responses[1:] if line[4:] != "HELP"]
        keep: list[str] = []
        for keyword in keywords:
            name = keyword.split(" ", 1)[0].upper()
            if name == "8BITMIME" and not peer.eightbitmime:
                continue
            if name == "AUTH" and peer.auth is None:
                continue
            keep.append(keyword)
        if peer.pipelining:
            keep.append("PIPELINING")
        if peer.dsn:
            keep.append("DSN")
        keep.append("ENHANCEDSTATUSCODES")
        lines = [responses[0][4:], *keep]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        self.conn.record.ehlo = hostname
        return f"250 {self.peer.hostname}"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:
        reply = self.peer.mail_reply
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        self.conn.mail_params = _parse_path_params(self.conn.last_arg)[1]
        self.conn.rcpt = []
        return reply or "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        options: list[str],
    ) -> str:
        peer = self.peer
        if peer.drop == "rcpt":
            self.conn.hang_up()
        reply = peer.rcpt_replies.get(address.lower(), peer.rcpt_reply)
        if reply is not None and not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        self.conn.rcpt.append((address, _parse_path_params(self.conn.last_arg)[1]))
        return reply or "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        peer = self.peer
        if peer.drop == "dot":
            self.conn.hang_up()
        reply = peer.data_reply or "250 2.0.0 OK queued"
        if reply.startswith("2"):
            content = envelope.original_content or b""
            record = self.conn.record
            peer._add_message(
                ReceivedMessage(
                    mail_from=envelope.mail_from or "",
                    mail_params=dict(self.conn.mail_params),
                    rcpt=list(self.conn.rcpt),
                    data=bytes(content),
                    tls=record.tls,
                    ehlo=record.ehlo,
                    auth_user=record.auth_user,
                    session=record.index,
                )
            )
        return reply


class _PeerSMTP(SMTP):
    """aiosmtpd's SMTP with recording, DSN parameters accepted, and the drop/delay knobs."""

    def __init__(self, peer: SmtpPeer, **kwargs: Any) -> None:
        self.peer = peer
        self.record = peer._new_session()
        self.last_arg = ""
        self.mail_params: dict[str, str | None] = {}
        self.rcpt: list[tuple[str, dict[str, str | None]]] = []
        super().__init__(_Handler(peer, self), **kwargs)
        if peer.implicit_tls:
            # The whole connection is TLS: AUTH may be offered at once (aiosmtpd only knows
            # STARTTLS, and would warn if asked for auth_require_tls=False).
            self._auth_require_tls = False
        for name, method in list(self._smtp_methods.items()):
            self._smtp_methods[name] = self._recorded(name, method)

    def _recorded(
        self, name: str, method: Callable[[str | None], Any]
    ) -> Callable[[str | None], Any]:
        async def run(arg: str | None) -> None:
            self.last_arg = arg or ""
            self.record.commands.append(f"{name} {arg}" if arg else name)
            if name == "MAIL":
                self.record.pipelined = self.record.pipelined or bool(self._reader._buffer)  # type: ignore[attr-defined]
                if self.peer.drop == "mail":
                    self.hang_up()
            await method(arg)

        return run

    def hang_up(self) -> None:
        """Close the connection without a reply; the CancelledError ends aiosmtpd's loop."""
        assert self.transport is not None
        self.transport.close()
        raise asyncio.CancelledError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if transport.get_extra_info("ssl_object") is not None:
            self.record.tls = True
        super().connection_made(transport)

    async def _handle_client(self) -> None:
        peer = self.peer
        if peer.drop == "connect":
            assert self.transport is not None
            self.transport.close()
            return
        if peer.greeting is not None:
            await super().push(peer.greeting)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: Any) -> None:
        if self.peer.delay:
            await asyncio.sleep(self.peer.delay)
        await super().push(status)

    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None and self.peer.dsn:
            for key in _DSN_PARAMS:
                result.pop(key, None)
        return result

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.peer.starttls_reply is not None:
            await self.push(self.peer.starttls_reply)
            return
        if self.peer.tls_broken:
            await self.push("220 2.0.0 Ready to start TLS")
            self.hang_up()
        await super().smtp_STARTTLS(arg)
        self.record.tls = True

    async def smtp_DATA(self, arg: str) -> None:
        if self.peer.drop == "data" and self.envelope is not None and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")
            self.hang_up()
        await super().smtp_DATA(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        await super().smtp_AUTH(arg)
        assert self.session is not None
        data = self.session.auth_data
        if self.session.authenticated and isinstance(data, LoginPassword):
            self.record.auth_user = data.login.decode()


class SmtpPeer:
    """See the module docstring. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "peer.example.test",
        starttls: bool = True,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        eightbitmime: bool = True,
        smtputf8: bool = True,
        dsn: bool = True,
        pipelining: bool = True,
        size: int | None = 10 * 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.hostname = hostname
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.eightbitmime = eightbitmime
        self.smtputf8 = smtputf8
        self.dsn = dsn
        self.pipelining = pipelining
        self.size = size
        # Knobs (module docstring).
        self.greeting: str | None = None
        self.drop: str | None = None
        self.ehlo_reply: str | None = None
        self.mail_reply: str | None = None
        self.rcpt_reply: str | None = None
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.starttls_reply: str | None = None
        self.tls_broken = False
        self.delay = 0.0
        # Records.
        self.messages: list[ReceivedMessage] = []
        self.sessions: list[SessionRecord] = []
        self.cert_path, self._key_path = _tls_files()
        self._tls_context = server_context(self.cert_path, self._key_path)
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conns: list[_PeerSMTP] = []

    # ----- records ------------------------------------------------------------------------------
    def _new_session(self) -> SessionRecord:
        with self._cond:
            record = SessionRecord(index=len(self.sessions))
            self.sessions.append(record)
            self._cond.notify_all()
            return record

    def _add_message(self, message: ReceivedMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
        """Block until predicate() (checked whenever a session or message is recorded)."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"SmtpPeer {self.host}:{self.port}: condition not met in {timeout}s "
                    f"({len(self.messages)} messages, {len(self.sessions)} sessions)"
                )

    def wait_for(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[ReceivedMessage]:
        """Wait until at least `count` messages were accepted; return them all (a copy)."""
        self.wait_until(lambda: len(self.messages) >= count, timeout)
        with self._cond:
            return list(self.messages)

    # ----- life cycle ---------------------------------------------------------------------------
    def _factory(self) -> _PeerSMTP:
        assert self._loop is not None
        if self.drop is not None and self.drop not in DROP_POINTS:
            raise ValueError(f"unknown drop point {self.drop!r}")
        conn = _PeerSMTP(
            self,
            hostname=self.hostname,
            data_size_limit=self.size,
            enable_SMTPUTF8=self.smtputf8,
            tls_context=self._tls_context if self.starttls and not self.implicit_tls else None,
            auth_required=self.auth is not None,
            authenticator=self._authenticate,
            loop=self._loop,
        )
        self._conns.append(conn)
        return conn

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.auth
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    def start(self) -> SmtpPeer:
        self._thread = threading.Thread(
            target=self._main, name=f"smtp-peer-{self.host}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(DEFAULT_TIMEOUT):
            raise RuntimeError("SmtpPeer did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                server = loop.run_until_complete(
                    loop.create_server(
                        self._factory,
                        self.host,
                        self.port,
                        ssl=self._tls_context if self.implicit_tls else None,
                    )
                )
            except BaseException as exc:  # reported to start()
                self._error = exc
                return
            finally:
                if self._error is not None:
                    self._ready.set()
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
            server.close()
            for conn in self._conns:
                if conn.transport is not None:
                    conn.transport.close()
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
        finally:
            loop.close()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(DEFAULT_TIMEOUT)

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this peer's certificate (for verify=True tests)."""
        ctx = ssl.create_default_context(cafile=str(self.cert_path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
