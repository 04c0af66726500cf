"""POP3: RETR every message of one maildrop over one connection, one command at a time,
as poplib and most mail clients do (no pipelining), and time it."""

from __future__ import annotations

import asyncio
import contextlib
import time


class Pop3Error(Exception):
    pass


async def _ok(reader: asyncio.StreamReader) -> bytes:
    line = await reader.readline()
    if not line.startswith(b"+OK"):
        raise Pop3Error(f"expected +OK, got {line!r}")
    return line


async def retr_all(host: str, port: int, user: str, password: str) -> tuple[int, int, float]:
    """(messages, octets, seconds for all RETRs) for the whole maildrop of `user`."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    try:
        await _ok(reader)
        writer.write(f"USER {user}\r\n".encode())
        await _ok(reader)
        writer.write(f"PASS {password}\r\n".encode())
        await _ok(reader)
        writer.write(b"STAT\r\n")
        count = int((await _ok(reader)).split()[1])
        octets = 0
        started = time.perf_counter()
        for number in range(1, count + 1):
            writer.write(f"RETR {number}\r\n".encode())
            await _ok(reader)
            octets += len(await reader.readuntil(b"\r\n.\r\n"))
        seconds = time.perf_counter() - started
        writer.write(b"QUIT\r\n")
        await _ok(reader)
        return count, octets, seconds
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
