"""A thin wrapper over one asyncio stream pair: the only socket code protocol sessions see.

Invariants:
- `read()` returns whatever bytes are available (b"" at EOF); the pure protocol cores do all
  framing and limits, so this layer never buffers a line.
- `start_tls()` throws away every byte the client sent before the handshake, both what the
  session's parser still holds (the caller discards its own buffer) and what asyncio's
  StreamReader already buffered. Otherwise a man in the middle could pipeline plaintext commands
  after STARTTLS and have them executed inside the TLS session (CVE-2011-0411, RFC 3207 4.2,
  RFC 2595 3.1).
- Timeouts are the session's policy: `read(timeout)` raises `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from typing import Final

READ_CHUNK: Final = 65536


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer_ip: str = peer[0] if isinstance(peer, tuple) else "unknown"
        self.peer_port: int = peer[1] if isinstance(peer, tuple) else 0
        self.is_tls: bool = writer.get_extra_info("sslcontext") is not None
        # True while the session waits for the client: shutdown may cancel an idle session at
        # once but lets a busy one (say, committing a message) finish.
        self.idle = False

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_ip).is_loopback
        except ValueError:
            return False

    @property
    def tls_version(self) -> str | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj.version() if obj is not None else None

    @property
    def tls_cipher(self) -> str | None:
        obj = self.writer.get_extra_info("ssl_object")
        if obj is None:
            return None
        cipher = obj.cipher()
        return cipher[0] if cipher else None

    # The session passes its per-state timeout (command, data, idle); turning it into
    # TimeoutError here keeps that policy in one line per protocol.
    async def read(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Available bytes, b"" at EOF; raises TimeoutError after `timeout` seconds of silence."""
        self.idle = True
        try:
            if timeout is None:
                return await self.reader.read(READ_CHUNK)
            async with asyncio.timeout(timeout):
                return await self.reader.read(READ_CHUNK)
        except (ConnectionError, ssl.SSLError):
            return b""
        finally:
            self.idle = False

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def pending_output(self) -> int:
        """Octets written but not yet taken by the kernel (0: nothing to wait for)."""
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.drain()

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.drain()

    async def start_tls(self, context: ssl.SSLContext, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Upgrade in place after the STARTTLS/STLS reply has been sent and drained."""
        # Drain the reply first: StreamWriter.start_tls drains too, and a drain that yields
        # would let more plaintext arrive after we cleared the buffer. With nothing left to
        # write, its drain returns without yielding and loop.start_tls pauses reading at once.
        await self.drain()
        # Discard plaintext that arrived before the handshake (see module docstring).
        buffered = getattr(self.reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        async with asyncio.timeout(timeout):
            await self.writer.start_tls(context)
        self.is_tls = True

    async def close(self) -> None:
        if self.writer.is_closing():
            return
        try:
            self.writer.close()
            async with asyncio.timeout(5):
                await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            # close() waits for unsent output: a peer that never reads would keep the socket
            # and its buffer forever (a slow-read attack). Drop both.
            self.writer.transport.abort()
