"""Server life cycle with stub sessions: binding, listeners.json, limits, crashes, draining.

The real protocol sessions are tested over the wire elsewhere; here `Server`'s seams (`sessions`,
`open_store`) isolate the process logic from them and from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailwright import config as mwconfig
from mailwright.config import ConfigError
from mailwright.net.connection import Connection
from mailwright.net.tls import client_context
from mailwright.server import Server, load_session_module
from mailwright.services import Services


class FakeStore:
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


class StubSession:
    """Greets, then echoes lines; "crash" raises, "work N" is busy (not idle) for N seconds."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.seen_tls: list[bool] = []
        self.cancelled = 0
        self.finished_work = 0
        self.working = asyncio.Event()  # a "work" command is being processed (not idle)
        self.ended = asyncio.Event()  # a session returned (its limiter slot is free next)

    def busy_reply(self, hostname: str) -> bytes:
        return f"BUSY {hostname}\r\n".encode()

    async def serve(self, conn: Connection, services: Services, listener: str) -> None:
        self.seen_tls.append(conn.is_tls)
        try:
            await conn.send(self.greeting + f" {listener}\r\n".encode())
            while line := await conn.read(timeout=30):
                if line.startswith(b"crash"):
                    raise ValueError("session bug")
                if line.startswith(b"work"):
                    self.working.set()
                    await asyncio.sleep(float(line.split()[1]))
                    self.finished_work += 1
                await conn.send(b"OK " + line)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            await conn.close()
            # Last statement: the server releases the slot in the same step, before any waiter.
            self.ended.set()


def make_config(tmp_path: Path, **env: str) -> mwconfig.Config:
    environ = {f"MAILWRIGHT_LISTEN_{n.upper()}": "127.0.0.1:0"
               for n in ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")}
    environ.update(MAILWRIGHT_HOSTNAME="mx.example.test", MAILWRIGHT_STORE_DURABLE="false")
    environ.update(env)
    return mwconfig.load(None, tmp_path / "data", environ)


def make_server(config: mwconfig.Config) -> tuple[Server, StubSession, StubSession, FakeStore]:
    smtp, pop3, store = StubSession(b"220"), StubSession(b"+OK"), FakeStore()
    opener: Callable[[Path, bool], Any] = lambda _data, _durable: store  # noqa: E731
    server = Server(config, sessions={"smtp": smtp, "pop3": pop3}, open_store=opener)
    return server, smtp, pop3, store


async def close(writer: asyncio.StreamWriter) -> None:
    """Close and wait: a transport closed after its loop ends leaks its socket (ResourceWarning)."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def connect(server: Server, name: str, tls: ssl.SSLContext | None = None) -> tuple[
    asyncio.StreamReader, asyncio.StreamWriter
]:
    host, port = server.bound[name]
    return await asyncio.open_connection(host, port, ssl=tls)


@pytest.mark.asyncio
async def test_start_binds_every_listener_and_writes_listeners_json(tmp_path: Path) -> None:
    server, _smtp, _pop3, store = make_server(make_config(tmp_path))
    await server.start()
    try:
        listing = json.loads((tmp_path / "data" / "listeners.json").read_text())
        assert set(listing) == {"smtp", "submission", "submissions", "pop3", "pop3s", "imap",
                                "imaps"}
        assert listing["submissions"]["tls"] == "implicit"
        assert listing["pop3"]["tls"] == "starttls"
        for name, (host, port) in server.bound.items():
            assert listing[name] == {"host": host, "port": port, "tls": listing[name]["tls"]}
            assert port != 0
        reader, writer = await connect(server, "pop3")
        assert await reader.readline() == b"+OK pop3\r\n"
        await close(writer)
    finally:
        await server.stop()
    assert store.closed == 1
    assert not (tmp_path / "data" / "listeners.json").exists()


@pytest.mark.asyncio
async def test_implicit_tls_listener_hands_over_a_tls_connection(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    server, smtp, _pop3, _store = make_server(config)
    await server.start()
    try:
        reader, writer = await connect(server, "submissions", client_context(config.cert_path))
        assert await reader.readline() == b"220 submissions\r\n"
        await close(writer)
        reader, writer = await connect(server, "smtp")
        assert await reader.readline() == b"220 smtp\r\n"
        await close(writer)
        assert smtp.seen_tls == [True, False]
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_session_exception_is_logged_and_server_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, _smtp, _pop3, _store = make_server(make_config(tmp_path))
    await server.start()
    try:
        reader, writer = await connect(server, "smtp")
        await reader.readline()
        with caplog.at_level(logging.ERROR, logger="mailwright.server"):
            writer.write(b"crash\r\n")
            assert await reader.read() == b""  # the server closed the crashed session
        await close(writer)
        assert "session smtp from 127.0.0.1" in caplog.text
        assert "ValueError: session bug" in caplog.text
        reader, writer = await connect(server, "smtp")
        assert await reader.readline() == b"220 smtp\r\n"
        writer.write(b"hello\r\n")
        assert await reader.readline() == b"OK hello\r\n"
        await close(writer)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_connection_over_per_ip_limit_gets_busy_reply(tmp_path: Path) -> None:
    config = make_config(tmp_path, MAILWRIGHT_POP3_MAX_CONNECTIONS_PER_IP="1")
    server, _smtp, pop3, _store = make_server(config)
    await server.start()
    try:
        r1, w1 = await connect(server, "pop3")
        assert await r1.readline() == b"+OK pop3\r\n"
        r2, w2 = await connect(server, "pop3")
        assert await r2.read() == b"BUSY mx.example.test\r\n"  # then closed
        await close(w2)
        # The limit is per listener protocol: SMTP is unaffected.
        r3, w3 = await connect(server, "smtp")
        assert await r3.readline() == b"220 smtp\r\n"
        await close(w3)
        # Once the first client leaves, its slot is free again.
        await close(w1)
        assert await r1.read() == b""
        await pop3.ended.wait()
        r4, w4 = await connect(server, "pop3")
        assert await r4.readline() == b"+OK pop3\r\n"
        await close(w4)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_stop_cancels_idle_sessions_and_lets_busy_ones_finish(tmp_path: Path) -> None:
    server, smtp, _pop3, store = make_server(make_config(tmp_path))
    await server.start()
    idle_r, idle_w = await connect(server, "smtp")
    busy_r, busy_w = await connect(server, "smtp")
    await idle_r.readline()
    await busy_r.readline()
    busy_w.write(b"work 0.3\r\n")
    await busy_w.drain()
    await smtp.working.wait()
    await server.stop(grace=5)
    assert smtp.finished_work == 1  # the busy session completed its work
    assert await busy_r.readline() == b"OK work 0.3\r\n"
    assert await idle_r.read() == b""
    assert smtp.cancelled == 2  # the idle one at once, the other once it went idle again
    assert store.closed == 1
    for w in (idle_w, busy_w):
        await close(w)


@pytest.mark.asyncio
async def test_stop_cancels_busy_sessions_after_grace(tmp_path: Path) -> None:
    server, smtp, _pop3, _store = make_server(make_config(tmp_path))
    await server.start()
    reader, writer = await connect(server, "smtp")
    await reader.readline()
    writer.write(b"work 60\r\n")
    await writer.drain()
    await smtp.working.wait()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await server.stop(grace=0.2)
    assert loop.time() - began < 5
    assert smtp.finished_work == 0
    assert smtp.cancelled == 1
    await close(writer)


@pytest.mark.asyncio
async def test_port_in_use_is_a_clear_oserror_and_nothing_stays_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(tmp_path, MAILWRIGHT_LISTEN_POP3S=f"127.0.0.1:{port}")
        server, _smtp, _pop3, store = make_server(config)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} for pop3s"):
            await server.start()
    assert server.bound == {}
    assert store.closed == 1
    assert not (tmp_path / "data" / "listeners.json").exists()


def test_missing_protocol_module_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="protocol 'nosuchproto' is not available"):
        load_session_module("nosuchproto")


@pytest.mark.asyncio
async def test_invalid_certificate_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    config = make_config(tmp_path, MAILWRIGHT_TLS_CERT=str(bad), MAILWRIGHT_TLS_KEY=str(bad))
    server, _smtp, _pop3, _store = make_server(config)
    with pytest.raises(ConfigError, match="TLS: invalid certificate"):
        await server.start()
