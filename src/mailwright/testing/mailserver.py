"""`MailServer`: the whole mailwright server inside a test process (docs/testing.md).

Invariants:
- Every listener is on 127.0.0.1 port 0 (the kernel picks a free port), so parallel test
  processes (pytest-xdist workers) never collide; listeners this class does not know stay off.
- The server's configuration comes from the arguments only, never from the process's
  MAILWRIGHT_* environment: a developer's shell must not change what a test sees.
- Sync use runs the server on its own event loop in a daemon thread; async use (`async with`)
  runs it on the caller's loop. Either way every helper that touches the server runs on the
  server's loop, so the change bus delivers to it and the capture box is used from its loop.
- `wait_for` subscribes to the change bus (and to the capture box) before it reads what is
  already there, so a message that arrives in between is seen, never missed; it is woken by
  those events, never by polling.
- Importing this module loads the whole server (about 0.4 s, once per process), so that
  `start()` costs only the server's own start (15-50 ms): a name imported from
  `mailwright.testing` means a server is wanted. The pytest plugin imports this module only
  when a test asks for `mail_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

# The server and what its start would otherwise import (module docstring).
import mailwright.imap.session
import mailwright.pop3.session
import mailwright.server
import mailwright.smtp.session
import mailwright.web.listener  # noqa: F401
from mailwright.testing.messages import MailMessage
from mailwright.testing.sources import (
    CaptureSource,
    LocalSource,
    Source,
    describe_wanted,
    wait_for_message,
)

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox
    from mailwright.capture.faults import FaultSettings
    from mailwright.config import Config
    from mailwright.server import Server
    from mailwright.store.api import Store

T = TypeVar("T")

HOST: Final = "127.0.0.1"
# The listeners MailServer turns on (config.LISTENER_NAMES), each on port 0.
PROTOCOL_LISTENERS: Final = (
    "smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps",
)
# How long start() and stop() may take before the test fails loudly, not hangs.
LIFECYCLE_TIMEOUT: Final = 30.0
# Sessions still open at stop() (a client the test forgot to close) get this long to finish.
STOP_GRACE: Final = 2.0

# Test accounts get cheap argon2id hashes: t=1, m=1 MiB, p=1 hash in ~1 ms here, where the
# production parameters (RFC 9106: t=3, m=64 MiB, p=4) take 150-350 ms. The parameters are in
# the hash, so logins verify as cheaply. Fine for throwaway passwords, never for real ones.
_TEST_HASH_TIME_COST: Final = 1
_TEST_HASH_MEMORY_KIB: Final = 1024
_TEST_HASH_PARALLELISM: Final = 1


def _hash_test_password(password: str) -> str:
    import argon2

    hasher = argon2.PasswordHasher(
        time_cost=_TEST_HASH_TIME_COST,
        memory_cost=_TEST_HASH_MEMORY_KIB,
        parallelism=_TEST_HASH_PARALLELISM,
    )
    return hasher.hash(password)


@dataclass(frozen=True, slots=True)
class Account:
    """A mailbox made by `MailServer.add_account`: log in with `address` and `password`."""

    address: str
    password: str


class MailServer:
    """A real mailwright server (SMTP, submission, POP3, IMAP, and the web inbox when present)
    on free loopback ports and a temporary data directory, for tests.

    ``with MailServer() as mail:`` runs it on its own thread and event loop; ``async with
    MailServer() as mail:`` runs it on the current loop; ``start()``/``stop()`` (or
    ``await astart()``/``await astop()``) do the same without a ``with``.

    Arguments:
        capture: mail to domains without local accounts is kept in the capture box, never
            relayed (`outbound`, `messages(to=...)`), as Mailpit does. False: real relaying.
        durable: False (default) skips fsync: fast, and a crash may lose mail, which a test
            server never needs to survive. True: the production durability contract.
        faults: server-wide fault injection (`mailwright.capture.FaultSettings`), capture only.
        http: start the web inbox and JSON API on a free port (`http_url`), when installed.
        hostname: the server's name in greetings and its self-signed certificate.
        accept_any_auth: in capture mode, any SMTP AUTH username and password succeed.
        data_dir: keep the data here (and leave it after stop) instead of a temporary directory.
        env: more MAILWRIGHT_* settings, as `mailwright serve` reads them (mailwright.config),
            e.g. ``{"MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE": "10000"}``; applied last.

    The inbound SPF/DKIM/DMARC checks are off (they would ask the internet's DNS about test
    domains); turn them on with ``env={"MAILWRIGHT_INBOUND_CHECKS": "true"}``.

    In async code (on the loop the server runs on), use the awaitable helpers `amessages`,
    `aoutbound`, `await_for` and `aclear`: the plain ones would block that loop and raise
    RuntimeError instead.
    """

    host: str = HOST

    def __init__(
        self,
        *,
        capture: bool = True,
        durable: bool = False,
        faults: FaultSettings | None = None,
        http: bool = True,
        hostname: str = "mail.test",
        accept_any_auth: bool = False,
        data_dir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.capture_enabled = capture
        self.durable = durable
        self.hostname = hostname
        self._faults = faults
        self._http = http
        self._accept_any_auth = accept_any_auth
        self._given_data_dir = Path(data_dir) if data_dir is not None else None
        self._env = dict(env or {})
        self.data_dir: Path | None = None
        self.config: Config | None = None
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # thread id the server's loop runs on
        self._thread: threading.Thread | None = None
        self._threaded = False
        self._running = False
        self._ssl_context: ssl.SSLContext | None = None
        self._cleanup: weakref.finalize | None = None  # type: ignore[type-arg]
        self.startup_seconds: float | None = None

    # ----- life cycle ---------------------------------------------------------------------------
    def start(self) -> MailServer:
        """Start on a thread of its own; returns once every listener is bound."""
        began = time.perf_counter()
        server = self._prepare()
        loop = self._new_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            self._loop_thread = threading.get_ident()
            try:
                try:
                    loop.run_until_complete(server.start())
                except BaseException as exc:  # handed to start() below
                    failure.append(exc)
                    return
                finally:
                    started.set()
                loop.run_until_complete(server.serve_forever())
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop, self._threaded = loop, True
        self._thread = threading.Thread(target=main, name="mailwright-test-server", daemon=True)
        self._thread.start()
        if not started.wait(LIFECYCLE_TIMEOUT):
            raise RuntimeError(f"mailwright did not start within {LIFECYCLE_TIMEOUT:.0f} s")
        if failure:
            self._thread.join(LIFECYCLE_TIMEOUT)
            self._forget()
            raise failure[0]
        self._running = True
        try:
            self._run(self._after_start())
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    async def astart(self) -> MailServer:
        """Start on the running event loop; returns once every listener is bound."""
        began = time.perf_counter()
        server = self._prepare()
        self._loop, self._threaded = asyncio.get_running_loop(), False
        self._loop_thread = threading.get_ident()
        try:
            await server.start()
        except BaseException:
            self._forget()
            raise
        self._running = True
        try:
            await self._after_start()
        except BaseException:
            await self.astop()
            raise
        self.startup_seconds = time.perf_counter() - began
        return self

    def stop(self) -> None:
        """Stop gracefully and remove the temporary data directory. Idempotent."""
        if not self._running:
            return
        if not self._threaded:
            self._check_off_loop("stop", "astop")
            self._run(self._shutdown())
            return
        self._running = False
        assert self._loop is not None
        assert self._server is not None
        try:
            asyncio.run_coroutine_threadsafe(
                self._server.stop(STOP_GRACE), self._loop
            ).result(LIFECYCLE_TIMEOUT)
        finally:
            if self._thread is not None:
                self._thread.join(LIFECYCLE_TIMEOUT)
            self._forget()

    async def astop(self) -> None:
        """`stop()` for async code. Idempotent."""
        if not self._running:
            return
        if self._threaded:
            await asyncio.to_thread(self.stop)
            return
        await self._arun(self._shutdown())

    async def _shutdown(self) -> None:
        """Stop the server running on the caller's loop (async mode)."""
        self._running = False
        assert self._server is not None
        try:
            await self._server.stop(STOP_GRACE)
        finally:
            self._forget()

    def __enter__(self) -> MailServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> MailServer:
        return await self.astart()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def _prepare(self) -> Server:
        if self._server is not None:
            raise RuntimeError("this MailServer was started already; make a new one")
        from mailwright import config as mwconfig
        from mailwright.server import Server

        if self._given_data_dir is not None:
            self.data_dir = self._given_data_dir
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="mailwright-test-"))
            # Removed at stop(), or at exit for a server nobody stopped.
            self._cleanup = weakref.finalize(self, shutil.rmtree, self.data_dir, True)
        environ = {f"MAILWRIGHT_LISTEN_{name.upper()}": "" for name in mwconfig.LISTENER_NAMES}
        wanted = [*PROTOCOL_LISTENERS, *(("http",) if self._http else ())]
        for name in wanted:
            if name in mwconfig.LISTENER_NAMES:
                environ[f"MAILWRIGHT_LISTEN_{name.upper()}"] = f"{HOST}:0"
        flag = {True: "true", False: "false"}
        environ.update(
            MAILWRIGHT_DATA=str(self.data_dir),
            MAILWRIGHT_HOSTNAME=self.hostname,
            MAILWRIGHT_STORE_DURABLE=flag[self.durable],
            MAILWRIGHT_INBOUND_CHECKS="false",
            MAILWRIGHT_CAPTURE_ENABLED=flag[self.capture_enabled],
            MAILWRIGHT_CAPTURE_ACCEPT_ANY_AUTH=flag[self._accept_any_auth],
        )
        environ.update(self._env)
        try:
            self.config = mwconfig.load(None, None, environ)
            self._server = Server(self.config, open_store=_store_opener(self.config))
        except BaseException:
            self._remove_data()
            raise
        self.capture_enabled = self.config.capture.enabled  # `env` may have said otherwise
        return self._server

    async def _after_start(self) -> None:
        if self._faults is not None:
            self.set_faults(self._faults)

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        from mailwright.net.loop import new_event_loop

        return new_event_loop()  # the loop production runs on (uvloop when installed)

    def _forget(self) -> None:
        """After a stop or a failed start: the directory goes, the object stays inspectable."""
        self._running = False
        self._remove_data()

    def _remove_data(self) -> None:
        if self._cleanup is not None:
            self._cleanup()  # rmtree, once

    # ----- where things are ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    @property
    def server(self) -> Server:
        """The `mailwright.server.Server` itself (advanced use)."""
        if self._server is None:
            raise RuntimeError("MailServer is not started")
        return self._server

    @property
    def store(self) -> Store:
        """The server's store; its synchronous methods are safe from any thread."""
        store = self.server.store
        if store is None:
            raise RuntimeError("MailServer is not started")
        return store

    @property
    def capture(self) -> CaptureBox | None:
        """The capture box (None when capture is off). Its coroutines run on the server's loop."""
        return self.server.capture

    def port(self, name: str) -> int:
        """The bound port of a listener ("smtp", "imaps", ...); KeyError when it is off."""
        if not self._running:
            raise RuntimeError("MailServer is not running")
        return self.server.bound[name][1]

    @property
    def smtp_port(self) -> int:
        """SMTP in the MX role (no AUTH needed to send to local or, in capture mode, any
        address); STARTTLS offered."""
        return self.port("smtp")

    @property
    def submission_port(self) -> int:
        """Submission (RFC 6409): AUTH required; STARTTLS offered."""
        return self.port("submission")

    @property
    def submissions_port(self) -> int:
        """Submission over implicit TLS (RFC 8314)."""
        return self.port("submissions")

    @property
    def imap_port(self) -> int:
        return self.port("imap")

    @property
    def imaps_port(self) -> int:
        return self.port("imaps")

    @property
    def pop3_port(self) -> int:
        return self.port("pop3")

    @property
    def pop3s_port(self) -> int:
        return self.port("pop3s")

    @property
    def http_url(self) -> str | None:
        """The web inbox and JSON API ("http://127.0.0.1:PORT"), or None when not running."""
        if not self._running:
            return None
        bound = self.server.bound.get("http")
        return None if bound is None else f"http://{HOST}:{bound[1]}"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's self-signed certificate (valid for
        127.0.0.1, localhost and `hostname`)."""
        if self._ssl_context is None:
            from mailwright.net.tls import client_context

            if self.config is None:
                raise RuntimeError("MailServer is not started")
            self._ssl_context = client_context(self.config.cert_path)
        return self._ssl_context

    # ----- accounts -----------------------------------------------------------------------------
    def add_account(self, address: str, password: str | None = None) -> Account:
        """Create an account (and its domain when missing); a random password when none is
        given. The hash is a cheap argon2id (see module constants): test passwords only."""
        from mailwright.store.api import AlreadyExists, normalize_address

        canonical = normalize_address(address)
        password = password or secrets.token_urlsafe(12)
        store = self.store
        with contextlib.suppress(AlreadyExists):
            store.add_domain(canonical.rpartition("@")[2])
        try:
            store.add_account(canonical, _hash_test_password(password))
        except AlreadyExists:
            raise ValueError(f"account {canonical} exists already") from None
        return Account(canonical, password)

    def set_faults(self, faults: FaultSettings) -> None:
        """Server-wide fault injection from now on (capture mode)."""
        box = self._require_capture()
        if self._on_loop():
            box.set_faults(faults)
        else:
            self._run(_call(box.set_faults, faults))

    # ----- reading mail -------------------------------------------------------------------------
    def messages(self, to: str, mailbox: str = "INBOX") -> list[MailMessage]:
        """The messages for `to`, oldest first: a local account's `mailbox`, or for any other
        address the captured mail it was a recipient of."""
        self._check_off_loop("messages", "amessages")
        return self._run(self.amessages(to, mailbox))

    async def amessages(self, to: str, mailbox: str = "INBOX") -> list[MailMessage]:
        """`messages()` for async code."""
        source = self._source(to, mailbox)
        return await self._arun(source.read())

    @property
    def outbound(self) -> list[MailMessage]:
        """Every captured message, oldest first (see MailMessage for the envelope)."""
        self._check_off_loop("outbound", "aoutbound")
        return self._run(self.aoutbound())

    async def aoutbound(self) -> list[MailMessage]:
        """`outbound` for async code."""
        return await self._arun(CaptureSource(self._require_capture(), None).read())

    def clear(self) -> int:
        """Remove all captured mail and every message of every account (accounts stay);
        returns how many messages went."""
        self._check_off_loop("clear", "aclear")
        return self._run(self.aclear())

    async def aclear(self) -> int:
        """`clear()` for async code."""
        return await self._arun(self._clear())

    async def _clear(self) -> int:
        store = self.store
        removed = 0
        box = self.capture
        if box is not None:
            removed += await box.clear()
        skip = self._capture_account()
        for summary in store.list_accounts():
            account = store.get_account(summary.address)
            if account is None or summary.address == skip:
                continue
            for mailbox in store.list_mailboxes(account.id):
                uids = [record.uid for record in store.mailbox_messages(mailbox.id)]
                if uids:
                    await store.store_flags(mailbox.id, uids, "add", ["\\Deleted"])
                    removed += len(await store.expunge(mailbox.id, uids))
        return removed

    def wait_for(
        self,
        to: str | None = None,
        subject: str | None = None,
        predicate: Callable[[MailMessage], bool] | None = None,
        timeout: float = 5.0,
        mailbox: str = "INBOX",
    ) -> MailMessage:
        """The first message (already there, or arriving within `timeout` seconds) that is
        for `to` (None: captured mail and every account's `mailbox`), whose Subject contains
        `subject`, and for which `predicate(msg)` is true. Raises MailTimeout (an
        AssertionError and a TimeoutError) listing what did arrive."""
        self._check_off_loop("wait_for", "await_for")
        return self._run(self.await_for(to, subject, predicate, timeout, mailbox),
                         timeout + LIFECYCLE_TIMEOUT)

    async def await_for(
        self,
        to: str | None = None,
        subject: str | None = None,
        predicate: Callable[[MailMessage], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for
        mailbox: str = "INBOX",
    ) -> MailMessage:
        """`wait_for()` for async code."""
        sources = [self._source(to, mailbox)] if to is not None else self._all_sources(mailbox)

        def matches(message: MailMessage) -> bool:
            if subject is not None and subject not in str(message.get("Subject", "")):
                return False
            return predicate is None or bool(predicate(message))

        wanted = describe_wanted(to, subject, predicate, timeout)
        return await self._arun(wait_for_message(sources, matches, timeout, wanted))

    # ----- internals ----------------------------------------------------------------------------
    def _capture_account(self) -> str | None:
        """The account that holds captured mail: read through the capture box, not as a
        local account (None when capture is off: then there is none)."""
        box = self.capture
        return None if box is None else box.account

    def _require_capture(self) -> CaptureBox:
        box = self.capture
        if box is None:
            raise RuntimeError("capture is off on this MailServer (capture=False)")
        return box

    def _source(self, to: str, mailbox: str) -> Source:
        from mailwright.store.api import normalize_address

        address = normalize_address(to)
        store = self.store
        account = store.get_account(address)
        if account is not None:
            return LocalSource(store, account.id, account.address, mailbox)
        domain = address.rpartition("@")[2]
        if store.is_local_domain(domain):
            raise ValueError(f"{address} is not an account on this server (add_account)")
        box = self.capture
        if box is None:
            raise ValueError(
                f"{address} is not local and capture is off: its mail is queued for relaying"
            )
        return CaptureSource(box, address)

    def _all_sources(self, mailbox: str) -> list[Source]:
        store = self.store
        skip = self._capture_account()
        sources: list[Source] = []
        box = self.capture
        if box is not None:
            sources.append(CaptureSource(box, None))
        for summary in store.list_accounts():
            account = store.get_account(summary.address)
            if account is not None and summary.address != skip:
                sources.append(LocalSource(store, account.id, account.address, mailbox))
        return sources

    def _on_loop(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _check_off_loop(self, name: str, async_name: str) -> None:
        if self._running and self._on_loop():
            raise RuntimeError(
                f"MailServer.{name} would block the event loop the server runs on; "
                f"use `await ....{async_name}(...)` in async code"
            )

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = LIFECYCLE_TIMEOUT) -> T:
        """Run on the server's loop from another thread and wait for the result."""
        if not self._running or self._loop is None:
            coro.close()
            raise RuntimeError("MailServer is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await on the server's loop, from it or from another loop."""
        if not self._running or self._loop is None:
            coro.close()
            raise RuntimeError("MailServer is not running")
        if self._on_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))


async def _call(fn: Callable[..., object], *args: object) -> None:
    fn(*args)


def _store_opener(config: Config) -> Callable[[Path, bool], Store]:
    """The server's own store opener, plus: the capture account made up front with a cheap
    hash, so that the server's start finds it and skips a full argon2id hash (~150-350 ms,
    the largest part of a start-up otherwise)."""

    def open_store(data_dir: Path, durable: bool) -> Store:
        from mailwright.store import open_store
        from mailwright.store.api import AlreadyExists, normalize_address

        store = open_store(data_dir, durable=durable)
        capture = getattr(config, "capture", None)
        if capture is not None and capture.enabled:
            account = normalize_address(capture.account)
            if store.get_account(account) is None:
                with contextlib.suppress(AlreadyExists):
                    store.add_domain(account.rpartition("@")[2])
                with contextlib.suppress(AlreadyExists):
                    store.add_account(account, _hash_test_password(capture.password), "keep")
        return store

    return open_store
