"""SMTP load: N concurrent senders over persistent connections, like an MTA with a queue.

Each sender opens one connection, EHLOs once, then per message pipelines (RFC 2920)
`RSET` (from the second message on), `MAIL`, `RCPT`, `DATA`, sends the body and the final
".". End-of-DATA latency is the time from writing that final "." to reading the 250: exactly
the time the server takes to make the message durable (fsync, commit) and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field

LINE = b"x" * 74 + b"\r\n"  # 76 octets: below every line limit, never starts with "."


def make_message(phase: str, index: int, size: int) -> bytes:
    """A message of about `size` octets with a unique Subject (the key for verification)."""
    header = (
        f"From: sender@remote.test\r\nTo: rcpt@bench.test\r\n"
        f"Subject: bench {phase} {index}\r\nMessage-ID: <{phase}.{index}@remote.test>\r\n\r\n"
    ).encode()
    body_lines = max(1, (size - len(header)) // len(LINE))
    return header + LINE * body_lines


@dataclass
class PhaseResult:
    name: str
    size: int
    senders: int
    messages: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # subject -> sha256 of what we sent

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


class SmtpError(Exception):
    pass


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One (possibly multi-line) reply: its code and last line."""
    while True:
        line = await reader.readline()
        if not line.endswith(b"\r\n"):
            raise SmtpError(f"connection closed mid-reply: {line!r}")
        if line[3:4] != b"-":
            return int(line[:3]), line


async def expect(reader: asyncio.StreamReader, code: int) -> None:
    got, line = await read_reply(reader)
    if got != code:
        raise SmtpError(f"expected {code}, got {line!r}")


async def sender(
    host: str, port: int, rcpt: str, jobs: list[tuple[int, bytes]], latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await expect(reader, 220)
        writer.write(b"EHLO bench.client.test\r\n")
        await expect(reader, 250)
        first = True
        while jobs:
            _index, message = jobs.pop()
            prefix = b"" if first else b"RSET\r\n"
            writer.write(
                prefix + f"MAIL FROM:<sender@remote.test> SIZE={len(message)}\r\n"
                f"RCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
            )
            if not first:
                await expect(reader, 250)
            await expect(reader, 250)
            await expect(reader, 250)
            await expect(reader, 354)
            writer.write(message)
            await writer.drain()
            started = time.perf_counter()
            writer.write(b".\r\n")
            code, line = await read_reply(reader)
            latencies.append(time.perf_counter() - started)
            if code != 250:
                raise SmtpError(f"message refused: {line!r}")
            first = False
        writer.write(b"QUIT\r\n")
        await expect(reader, 221)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def run_phase(
    host: str, port: int, rcpt: str, name: str, size: int, senders: int, messages: int
) -> PhaseResult:
    result = PhaseResult(name, size, senders, messages, 0.0)
    jobs: list[tuple[int, bytes]] = []
    for index in range(messages):
        message = make_message(name, index, size)
        result.expected[f"bench {name} {index}"] = hashlib.sha256(message).hexdigest()
        jobs.append((index, message))
    jobs.reverse()  # pop() hands them out in order
    started = time.perf_counter()
    await asyncio.gather(
        *(sender(host, port, rcpt, jobs, result.latencies) for _ in range(senders))
    )
    result.seconds = time.perf_counter() - started
    return result
