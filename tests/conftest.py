"""Shared fixtures: the real mailwright server, in-process, on free ports.

Fixture API (stable; every wire and e2e test uses it):

``server`` -> RunningServer
    A fresh server for one test: every listener (smtp, submission, submissions, pop3, pop3s) on
    127.0.0.1 port 0, a temporary data directory, hostname ``mail.example.test``, and
    ``durable=False`` (no fsync) for speed, and the inbound SPF/DKIM/DMARC checks off
    (MAILWRIGHT_INBOUND_CHECKS=false; turn them on with a ``dns_server``, see below).
    Stopped (gracefully) after the test.

``server_factory(env: dict[str, str] | None = None, durable: bool = False) -> RunningServer``
    Start more servers, or one with other settings. ``env`` holds MAILWRIGHT_* variables applied
    over the defaults above (as the real process reads them, see mailwright.config), e.g.
    ``{"MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE": "1000"}`` or ``{"MAILWRIGHT_LISTEN_POP3S": ""}``
    (listener off). Pass ``MAILWRIGHT_DATA`` to reuse a data directory (restart tests): stop the
    first server before starting the second. Every server made is stopped at teardown.

RunningServer:
    .host                 "127.0.0.1"
    .port(name) -> int    the bound port of listener `name` ("smtp", "submission", "submissions",
                          "pop3", "pop3s"); KeyError if that listener is off
    .data_dir: Path       the server's data directory
    .config: Config       the loaded configuration
    .store: Store         the server's own store (sync methods are safe from the test thread)
    .add_account(address, password, pop3_policy="delete") -> Account
                          creates the domain if missing; real argon2id hashing (~150 ms)
    .add_alias(source, target)    creates the source's domain if missing
    .ssl_context: ssl.SSLContext  a client context that trusts the server's self-signed
                          certificate (check_hostname on; valid for 127.0.0.1, localhost, ::1
                          and the hostname). Use it with smtplib.starttls(context=...),
                          SMTP_SSL(context=...), poplib.POP3_SSL(context=...), aiosmtplib
                          (tls_context=...).
    .run(coro, timeout=30) -> result   run a coroutine on the server's event loop (for
                          `store.deliver(...)` and other async store calls) and return its result
    .call(fn, *args)      run a plain function on the server's loop thread (loop-affine state)
    .stop(grace=5.0)      graceful stop (idempotent); the fixture calls it for you
    .server: Server       the mailwright.server.Server object itself

``dns_server`` -> DnsServer (tests/support/dnsserver.py)
    An authoritative DNS server on 127.0.0.1 (UDP and TCP) for one test: ``.add(name, rtype,
    value)``, ``.remove``, ``.fail(name, "servfail"|"timeout")``, ``.heal``, ``.queries``; its
    ``.spec`` is the value for MAILWRIGHT_DNS_SERVERS.

The server runs in a background thread with its own event loop, so plain sync tests can use
smtplib/poplib, and async tests (pytest-asyncio) can run aiosmtplib on their own loop. Startup
waits on the server's own signal (Server.start() returned, every port bound), never on a sleep
or a connect-retry loop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from support.dnsserver import DnsServer
from support.smtp_peer import SmtpPeer

from mailwright import config as mwconfig
from mailwright.auth.passwords import hash_password
from mailwright.net.loop import new_event_loop
from mailwright.net.tls import client_context
from mailwright.server import Server
from mailwright.store.api import Account, AlreadyExists, Pop3Policy, Store, normalize_address

T = TypeVar("T")

HOST = "127.0.0.1"
TEST_HOSTNAME = "mail.example.test"
# How long a test waits for the server to come up or shut down before failing loudly.
START_TIMEOUT = 30.0


_FAILING_DNS: list[DnsServer] = []


def failing_dns_spec() -> str:
    """A DNS server answering SERVFAIL to every query, started once per test process."""
    if not _FAILING_DNS:
        dns = DnsServer().start()
        dns.fail("*")
        atexit.register(dns.stop)
        _FAILING_DNS.append(dns)
    return _FAILING_DNS[0].spec


def base_env(data_dir: Path, durable: bool) -> dict[str, str]:
    env = {f"MAILWRIGHT_LISTEN_{name.upper()}": f"{HOST}:0" for name in
           ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")}
    env.update(
        MAILWRIGHT_DATA=str(data_dir),
        MAILWRIGHT_HOSTNAME=TEST_HOSTNAME,
        MAILWRIGHT_STORE_DURABLE="true" if durable else "false",
        # SPF/DKIM/DMARC would ask the system's DNS about the test domains (slow, and a 451
        # without a network); tests of the checks pass "true" with a `dns_server`.
        MAILWRIGHT_INBOUND_CHECKS="false",
        # The queue runner resolves remote domains: this server answers SERVFAIL at once, so
        # mail queued by a test stays queued (deferred; never a bounce made by whatever the
        # machine's DNS answers, nor a lookup still in flight when the test ends). Queue tests
        # pass a `dns_server` or routes.
        MAILWRIGHT_DNS_SERVERS=failing_dns_spec(),
    )
    return env


class RunningServer:
    """A mailwright Server on its own event loop in a daemon thread (see the module docstring)."""

    host = HOST

    def __init__(self, config: mwconfig.Config) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.server = Server(config)
        self._loop = new_event_loop()  # the loop production runs on (uvloop)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(
            target=self._main, name=f"mailwright-server-{id(self):x}", daemon=True
        )
        self._ssl_context: ssl.SSLContext | None = None

    # ----- life cycle ---------------------------------------------------------------------------
    def start(self) -> RunningServer:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError("mailwright server did not start in time")
        if self._error is not None:
            self._thread.join(START_TIMEOUT)
            raise self._error
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            try:
                self._loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to the test thread by start()
                self._error = exc
                return
            finally:
                self._started.set()
            self._loop.run_until_complete(self.server.serve_forever())
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def stop(self, grace: float = 5.0) -> None:
        if self._stopped or self._error is not None or not self._thread.is_alive():
            self._stopped = True
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self.server.stop(grace), self._loop).result(
            grace + START_TIMEOUT
        )
        self._thread.join(START_TIMEOUT)

    # ----- helpers for tests --------------------------------------------------------------------
    @property
    def store(self) -> Store:
        assert self.server.store is not None, "server not started"
        return self.server.store

    def port(self, name: str) -> int:
        return self.server.bound[name][1]

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = client_context(self.config.cert_path)
        return self._ssl_context

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def invoke() -> T:
            return fn(*args)

        return self.run(invoke())

    def ensure_domain(self, domain: str) -> None:
        with contextlib.suppress(AlreadyExists):
            self.store.add_domain(domain)

    def add_account(
        self, address: str, password: str, pop3_policy: Pop3Policy = "delete"
    ) -> Account:
        self.ensure_domain(normalize_address(address).rpartition("@")[2])
        return self.store.add_account(address, hash_password(password), pop3_policy)

    def add_alias(self, source: str, target: str) -> None:
        self.ensure_domain(normalize_address(source).rpartition("@")[2])
        self.store.add_alias(source, target)


class ServerFactory(Protocol):
    def __call__(
        self, env: Mapping[str, str] | None = None, durable: bool = False
    ) -> RunningServer: ...


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    made: list[RunningServer] = []

    def make(env: Mapping[str, str] | None = None, durable: bool = False) -> RunningServer:
        environ = base_env(tmp_path_factory.mktemp("data"), durable)
        environ.update(env or {})
        config = mwconfig.load(None, None, environ)
        running = RunningServer(config)
        made.append(running)
        return running.start()

    yield make
    errors: list[BaseException] = []
    for running in reversed(made):
        try:
            running.stop()
        except BaseException as exc:  # stop every server even if one fails
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def server(server_factory: ServerFactory) -> RunningServer:
    return server_factory()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An authoritative test DNS server on 127.0.0.1 (tests/support/dnsserver.py); its `.spec`
    is the value for MAILWRIGHT_DNS_SERVERS. Started for the test, stopped after it."""
    with DnsServer() as dns:
        yield dns


class SmtpPeerFactory(Protocol):
    def __call__(self, **options: Any) -> SmtpPeer: ...


@pytest.fixture
def smtp_peer_factory() -> Iterator[SmtpPeerFactory]:
    """Start aiosmtpd peers (tests/support/smtp_peer.py): ``smtp_peer_factory(starttls=False,
    host="127.0.0.2", port=other.port, ...)`` -> a started SmtpPeer; all stopped after the test."""
    made: list[SmtpPeer] = []

    def make(**options: Any) -> SmtpPeer:
        peer = SmtpPeer(**options)
        made.append(peer)
        return peer.start()

    yield make
    for peer in reversed(made):
        peer.stop()
