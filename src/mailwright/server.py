"""The process: open the store, load TLS, run one asyncio listener per enabled protocol port.

Invariants:
- `start()` either returns with every enabled listener bound (and `<data>/listeners.json` written)
  or raises, leaving nothing bound and the store closed. Errors a user can fix (bad certificate,
  port in use, a protocol that is not available) surface as `ConfigError` / `OSError` with a
  one-line reason for `mailwright serve` to print.
- Each accepted connection runs its protocol's `serve()` in its own task. An exception escaping a
  session is logged with its traceback and ends only that connection; the server carries on.
- Connection limits ([smtp]/[pop3]/[imap] max_connections_per_ip, max_connections) count all
  listeners of one protocol together and are checked before a session starts; a refused client
  gets the protocol's busy reply and is closed.
- `stop()` stops accepting, cancels sessions that are waiting for their client at once, lets
  busy ones (say, committing a message) finish for up to `grace` seconds, then cancels the rest
  and closes the store, which finishes pending commits. So a clean shutdown never loses a
  message whose 250 was sent, and never leaves one half-written.
- Implicit-TLS listeners (submissions, pop3s, imaps) hand the session a connection whose
  handshake is complete; STARTTLS listeners hand a plaintext one and the session upgrades it.
- SIGHUP (once started, until stopped; main thread only) reloads the certificate and key into
  the live TLS context: connections are not dropped, new handshakes get the new pair, and a
  pair that does not load is logged while the old one keeps serving (`reload_tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import ssl
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from mailwright.auth.authenticator import Authenticator
from mailwright.config import Config, ConfigError, ImapConfig, Listen, Pop3Config, SmtpConfig
from mailwright.net.connection import Connection
from mailwright.net.limits import ConnectionLimiter
from mailwright.net.resolver import Resolver
from mailwright.net.tls import load_server_context, reload_certificate
from mailwright.queue.service import build_runner
from mailwright.queue.waking import WakingDeliverer
from mailwright.services import Services
from mailwright.store.api import Store

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox
    from mailwright.queue.runner import QueueRunner
    from mailwright.web.listener import HttpListener

log = logging.getLogger("mailwright.server")

TlsMode = Literal["implicit", "starttls"]


@dataclass(frozen=True, slots=True)
class ListenerKind:
    protocol: str  # the package under mailwright/ whose `session` module serves it
    tls: TlsMode
    label: str  # for the banner and logs


# What each listener name means (config.LISTENER_NAMES).
LISTENER_KINDS: Final[Mapping[str, ListenerKind]] = {
    "smtp": ListenerKind("smtp", "starttls", "SMTP MX (25)"),
    "submission": ListenerKind("smtp", "starttls", "SMTP submission (587)"),
    "submissions": ListenerKind("smtp", "implicit", "SMTP submission (465)"),
    "pop3": ListenerKind("pop3", "starttls", "POP3 (110)"),
    "pop3s": ListenerKind("pop3", "implicit", "POP3 (995)"),
    "imap": ListenerKind("imap", "starttls", "IMAP (143)"),
    "imaps": ListenerKind("imap", "implicit", "IMAP (993)"),
}

# RFC 8314 does not fix one; 30 s is what Postfix (smtpd_starttls_timeout is 300 s, but per read)
# and Dovecot effectively allow, and it stops a peer from holding a socket with half a handshake.
TLS_HANDSHAKE_TIMEOUT: Final = 30.0
# Kernel accept queue. The default of 100 drops SYNs when 50 senders reconnect at once.
LISTEN_BACKLOG: Final = 1024
# Period at which stop() re-checks for sessions that became idle during the grace period.
_DRAIN_POLL: Final = 0.05
LISTENERS_FILE: Final = "listeners.json"
# The web inbox and JSON API (mailwright.web): plain HTTP, meant for loopback (docs/web.md).
HTTP_LISTENER: Final = "http"


class SessionModule(Protocol):
    """The contract in services.py: what server.py needs from `mailwright.<protocol>.session`."""

    def serve(self, conn: Connection, services: Services, listener: str) -> Awaitable[None]: ...

    def busy_reply(self, hostname: str) -> bytes: ...


StoreOpener = Callable[[Path, bool], Store]


def _default_open_store(data_dir: Path, durable: bool) -> Store:
    from mailwright.store import open_store  # lazy: admin-free imports stay light

    return open_store(data_dir, durable=durable)


def load_session_module(protocol: str) -> SessionModule:
    """Import `mailwright.<protocol>.session` when a listener needs it.

    Lazy, so that the server starts with just the listeners whose protocol exists, and a
    missing one is a clear error rather than an ImportError at import time.
    """
    name = f"mailwright.{protocol}.session"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(
                f"protocol {protocol!r} is not available ({name} is missing); "
                f"turn its listeners off"
            ) from None
        raise
    if not callable(getattr(module, "serve", None)) or not callable(
        getattr(module, "busy_reply", None)
    ):
        raise ConfigError(f"{name} does not provide serve() and busy_reply()")
    return module  # a module satisfies SessionModule structurally (checked just above)


@dataclass
class _Listener:
    name: str
    kind: ListenerKind
    module: SessionModule
    limiter: ConnectionLimiter
    server: asyncio.Server | None = None


class Server:
    """One mailwright process. See the module docstring for the life cycle."""

    def __init__(
        self,
        config: Config,
        *,
        sessions: Mapping[str, SessionModule] | None = None,
        open_store: StoreOpener | None = None,
    ) -> None:
        # `sessions` (protocol -> module) and `open_store` are seams for tests of this module;
        # the real server imports mailwright.<protocol>.session and mailwright.store.
        self.config = config
        self.bound: dict[str, tuple[str, int]] = {}
        self.services: Services | None = None
        self.store: Store | None = None
        self.queue_runner: QueueRunner | None = None
        self.capture: CaptureBox | None = None  # capture mode ([capture] enabled)
        self.http: HttpListener | None = None  # the "http" listener (web inbox), when enabled
        self._session_overrides = dict(sessions or {})
        self._open_store = open_store or _default_open_store
        self._listeners: list[_Listener] = []
        self._sessions: dict[asyncio.Task[None], Connection] = {}
        self._stopped = asyncio.Event()
        self._stopping = False
        self._started = False
        self._tls_contexts: list[ssl.SSLContext] = []  # what reload_tls() reloads
        self._sighup = False

    # ----- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            raise RuntimeError("Server.start() called twice")
        self._started = True
        config = self.config
        for warning in config.warnings:
            log.warning("config: %s", warning)
        listeners = self._plan_listeners()
        try:
            config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create data directory {config.data_dir}: {exc.strerror or exc}"
            ) from None
        _remove_listeners_file(config.data_dir)
        tls = load_server_context(config)
        self._tls_contexts.append(tls)
        resolver = Resolver.from_config(config.dns)  # ConfigError on bad [dns] servers
        store = self._open_store(config.data_dir, config.store.durable)
        self.store = store
        self.services = Services(
            config=config,
            store=store,
            deliverer=WakingDeliverer(store, config.hostname),  # wakes the queue runner
            authenticator=Authenticator(store, config.auth),
            tls=tls,
        )
        self.services.resolver = resolver
        if config.inbound.checks:
            # Here, not at the top: with the checks off, dkimpy and the public suffix list
            # stay out of the process.
            from mailwright.mailauth.inbound import InboundChecker

            self.services.inbound = InboundChecker(resolver, config.inbound, config.hostname)
        capture_account: asyncio.Future[None] | None = None
        try:
            capture_account = self._start_capture(store)
            if isinstance(store, Store) and capture_account is not None:
                # Capture mode: nothing leaves, not even mail queued before it was turned on.
                if store.queue_size():
                    log.warning("capture mode: %d queued message(s) stay queued, not sent",
                                store.queue_size())
            elif isinstance(store, Store):  # not the lifecycle tests' stand-in
                self.queue_runner = _build_queue_runner(self.services)
            for listener in listeners:
                await self._bind(listener, config.listeners[listener.name], tls)
            await self._start_http()
            if capture_account is not None:
                await capture_account
            self._write_listeners_file()
            if self.queue_runner is not None:
                # Only now: its router must know our MX sockets before its first pass, so a
                # route back to ourselves is a 5.4.6 bounce, not a loop (queue/routing.py).
                self.queue_runner.router.identity.listen_on(self._mx_sockets())
                self.queue_runner.start()
        except BaseException:
            if capture_account is not None:  # its thread uses the store: let it finish first
                with contextlib.suppress(Exception):
                    await asyncio.shield(capture_account)
            await self._stop_http()
            await self._close_listeners()
            self.bound.clear()
            if self.queue_runner is not None:
                await self.queue_runner.stop()
            await store.aclose()
            raise
        self._watch_sighup()
        log.info(
            "mailwright started: %s",
            ", ".join(f"{name} on {host}:{port}" for name, (host, port) in self.bound.items()),
        )

    async def serve_forever(self) -> None:
        """Return once `stop()` has finished."""
        await self._stopped.wait()

    async def stop(self, grace: float = 10.0) -> None:
        """Drain and shut down (module docstring). Safe to call more than once."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            await self._stop_http()  # ends the event streams, so browsers see a clean close
            await self._close_listeners()
            await self._drain_sessions(grace)
            if self.queue_runner is not None:
                # Before the store closes; deliveries cut short stay queued (runner.py).
                await self.queue_runner.stop()
            if self.services is not None and self.services.resolver is not None:
                await self.services.resolver.aclose()
            if self.store is not None:
                await self.store.aclose()
            _remove_listeners_file(self.config.data_dir)
            log.info("mailwright stopped")
        finally:
            self._unwatch_sighup()  # only now: a SIGHUP while draining must not kill us
            self._stopped.set()

    # ----- certificate reload (SIGHUP) ----------------------------------------------------------
    def reload_tls(self) -> bool:
        """Load the certificate and key files again into the live TLS context (net/tls.py);
        True when done. A pair that does not load is logged and the old one stays."""
        if not self._tls_contexts:
            return False
        try:
            reload_certificate(self._tls_contexts, self.config.cert_path, self.config.key_path)
        except ConfigError as exc:
            log.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.config.cert_path)
        return True

    def _watch_sighup(self) -> None:
        # Signals reach the main thread only; in-process test servers run in another one and
        # call reload_tls() themselves.
        if threading.current_thread() is not threading.main_thread():
            return
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_tls)
        self._sighup = True

    def _unwatch_sighup(self) -> None:
        if self._sighup:
            self._sighup = False
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    # ----- listeners ----------------------------------------------------------------------------
    def _plan_listeners(self) -> list[_Listener]:
        planned: list[_Listener] = []
        modules: dict[str, SessionModule] = {}
        # One limiter per protocol, shared by its listeners (smtp/submission/submissions): the
        # limits bound the protocol's resources, and a peer gains nothing by spreading its
        # connections over several ports.
        limiters: dict[str, ConnectionLimiter] = {}
        for name in self.config.listeners:
            if name == HTTP_LISTENER:
                continue  # not a mail protocol: _start_http()
            kind = LISTENER_KINDS.get(name)
            if kind is None:
                # Every name in config.LISTENER_NAMES has a kind; this guards a future one.
                log.warning("listener %s has no protocol in this version; ignored", name)
                continue
            if kind.protocol not in modules:
                modules[kind.protocol] = self._session_overrides.get(
                    kind.protocol
                ) or load_session_module(kind.protocol)
            if kind.protocol not in limiters:
                limiters[kind.protocol] = self._limiter_for(kind.protocol)
            planned.append(_Listener(name, kind, modules[kind.protocol], limiters[kind.protocol]))
        return planned

    def _limiter_for(self, protocol: str) -> ConnectionLimiter:
        cfg = self.config
        section: SmtpConfig | Pop3Config | ImapConfig = (
            cfg.pop3 if protocol == "pop3" else cfg.imap if protocol == "imap" else cfg.smtp
        )
        return ConnectionLimiter(section.max_connections_per_ip, section.max_connections)

    async def _bind(self, listener: _Listener, listen: Listen, tls: ssl.SSLContext) -> None:
        implicit = listener.kind.tls == "implicit"

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A plain callback that spawns our own task: asyncio's wrapper task (3.11) would
            # report a cancelled session as an error, and we need the task to drain on stop().
            conn = Connection(reader, writer)
            task = asyncio.get_running_loop().create_task(
                self._run_session(listener, conn), name=f"{listener.name} {conn.peer_ip}"
            )
            self._sessions[task] = conn
            task.add_done_callback(self._sessions.pop)

        try:
            server = await asyncio.start_server(
                on_connect,
                host=listen.host,
                port=listen.port,
                ssl=tls if implicit else None,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if implicit else None,
                backlog=LISTEN_BACKLOG,
                reuse_address=True,
                start_serving=True,
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on {listen} for {listener.name}: {exc.strerror or exc}"
            ) from None
        listener.server = server
        self._listeners.append(listener)
        sockname = server.sockets[0].getsockname()
        self.bound[listener.name] = (sockname[0], sockname[1])

    def _mx_sockets(self) -> list[tuple[str, int]]:
        """Every (address, port) the "smtp" (MX role) listeners are bound to."""
        bound: list[tuple[str, int]] = []
        for listener in self._listeners:
            if listener.name == "smtp" and listener.server is not None:
                for sock in listener.server.sockets:
                    name = sock.getsockname()
                    bound.append((str(name[0]), int(name[1])))
        return bound

    async def _close_listeners(self) -> None:
        for listener in self._listeners:
            if listener.server is not None:
                listener.server.close()
        for listener in self._listeners:
            if listener.server is not None:
                with contextlib.suppress(Exception):
                    await listener.server.wait_closed()

    def _write_listeners_file(self) -> None:
        """<data>/listeners.json: where each listener is, for scripts (port 0 picks a port)."""
        tls_mode = {listener.name: listener.kind.tls for listener in self._listeners}
        payload = {
            name: {"host": host, "port": port, "tls": tls_mode.get(name, "none")}
            for name, (host, port) in self.bound.items()
        }
        path = self.config.data_dir / LISTENERS_FILE
        tmp = path.with_name(f".{LISTENERS_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one

    # ----- capture mode ------------------------------------------------------------------------
    def _start_capture(self, store: Store) -> asyncio.Future[None] | None:
        """Build the capture box (capture mode) and start making its account in a worker
        thread (argon2id, ~150 ms, overlaps the binding); start() awaits the returned future
        before it reports ready."""
        cfg = self.config.capture
        if not cfg.enabled or self.services is None or not isinstance(store, Store):
            return None
        from mailwright.capture import CaptureBox, FaultSettings

        box = CaptureBox(
            store, account=cfg.account, imap="per-domain" if cfg.imap == "per-domain"
            else "catch-all", data_dir=self.config.data_dir,
        )
        # The runtime settings start from the configuration at each start (docs/testing.md).
        box.set_faults(FaultSettings(
            rcpt_fail_rate=cfg.rcpt_fail_rate, data_fail_rate=cfg.data_fail_rate,
            fail_code=cfg.fail_code, reply_delay=cfg.reply_delay,
        ))
        self.capture = self.services.capture = self.services.deliverer.capture = box
        return asyncio.ensure_future(asyncio.to_thread(box.ensure_account, cfg.password))

    # ----- the web inbox ------------------------------------------------------------------------
    async def _start_http(self) -> None:
        """Serve the web inbox and JSON API on this loop when listen.http is set. Without
        capture mode its API answers 503 (there is no capture box to show)."""
        listen = self.config.listeners.get(HTTP_LISTENER)
        if listen is None:
            return
        from mailwright.web.listener import HttpListener  # lazy: aiohttp only when used

        http = HttpListener(self.capture, self.config.hostname)
        try:
            self.bound[HTTP_LISTENER] = await http.start(listen.host, listen.port)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on {listen} for http: {exc.strerror or exc}"
            ) from None
        self.http = http

    async def _stop_http(self) -> None:
        http, self.http = self.http, None
        if http is not None:
            await http.stop()

    @property
    def http_url(self) -> str | None:
        """The web inbox's base URL, e.g. "http://127.0.0.1:8025"; None when it is off."""
        return self.http.url if self.http is not None else None

    # ----- sessions -----------------------------------------------------------------------------
    async def _run_session(self, listener: _Listener, conn: Connection) -> None:
        assert self.services is not None
        if self._stopping or not listener.limiter.try_acquire(conn.peer_ip):
            await self._refuse(listener, conn)
            return
        try:
            await listener.module.serve(conn, self.services, listener.name)
        except asyncio.CancelledError:
            pass  # stop() cancelled us; the session closed (or will close) its connection
        except Exception:
            log.exception(
                "session %s from %s:%s failed", listener.name, conn.peer_ip, conn.peer_port
            )
        finally:
            listener.limiter.release(conn.peer_ip)
            # The session owns its connection, but one that crashed may not have closed it.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await conn.close()

    async def _refuse(self, listener: _Listener, conn: Connection) -> None:
        log.warning(
            "%s: connection from %s refused (limit %d per address, %d in total)",
            listener.name,
            conn.peer_ip,
            listener.limiter.max_per_ip,
            listener.limiter.max_total,
        )
        try:
            async with asyncio.timeout(5):
                await conn.send(listener.module.busy_reply(self.config.hostname))
        except OSError:  # gone or too slow (TimeoutError is an OSError): nothing to tell it
            pass
        finally:
            with contextlib.suppress(OSError):
                await conn.close()

    async def _drain_sessions(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._sessions:
            for task, conn in list(self._sessions.items()):
                if conn.idle:
                    task.cancel()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(list(self._sessions), timeout=min(_DRAIN_POLL, remaining))
        if self._sessions:
            log.warning("cancelling %d busy session(s) after %.1f s", len(self._sessions), grace)
            for task in list(self._sessions):
                task.cancel()
            await asyncio.wait(list(self._sessions), timeout=5)


def _build_queue_runner(services: Services) -> QueueRunner:
    """Build the outbound queue runner (queue/service.py); start() starts it after binding."""
    return build_runner(services)


def _remove_listeners_file(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / LISTENERS_FILE).unlink()
