"""SMTP: a whole client stream through the sans-I/O core (smtp/core.py), which frames command
lines, DATA and BDAT and calls the command parser (smtp/parser.py) on every line.

Protocol errors are values there (SyntaxErr, BadSequence, DataEnd.error): nothing may raise.
Checked besides:
- the DATA fast path and the line loop give the same events and message bytes (the fast
  path's docstring promises it), whatever the read sizes;
- the core buffers at most one line (bounded by its limits) plus one read;
- every reply renders to whole CRLF lines;
- an address the parser accepted parses again to itself, alone and inside MAIL FROM.
"""

from __future__ import annotations

from mailwright.smtp.commands import Auth, Bdat, Data, Mail, Rcpt, StartTls
from mailwright.smtp.core import (
    AuthResponse,
    BadSequence,
    ChunkEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    NeedData,
    ServerConnection,
)
from mailwright.smtp.limits import MAX_AUTH_LINE
from mailwright.smtp.parser import SyntaxErr, parse_command, parse_mailbox

from ._support import Steer, check_wire_lines

# Small limits, chosen by the input, so the fuzzer reaches the limit paths with short inputs.
_COMMAND_LINES = (1000, 16, 64, 512)
_DATA_LINES = (4096, 8, 40, 998)
_MESSAGE_SIZES = (50 * 1024 * 1024, 0, 30, 1000)


def _check_address(address: str, params: object) -> None:
    if address == "" or address.lower() == "postmaster":
        return
    assert parse_mailbox(address) == address, address
    again = parse_command(b"MAIL FROM:<" + address.encode("utf-8", "surrogatepass") + b">")
    assert isinstance(again, Mail), (address, again)
    assert again.address == address, (address, again)


def _run(data: bytes, fast: bool) -> list[object]:
    steer = Steer(data)
    core = ServerConnection(
        max_command_line=_COMMAND_LINES[steer.limits & 3],
        max_data_line=_DATA_LINES[(steer.limits >> 2) & 3],
        max_message_size=_MESSAGE_SIZES[(steer.limits >> 4) & 3],
    )
    core.fast_path = fast
    bound = max(core.max_command_line, core.max_data_line + 2, MAX_AUTH_LINE) + 2
    events: list[object] = []
    message = bytearray()
    for read in steer.reads():
        core.receive_data(read)
        while not isinstance(ev := core.next_event(), NeedData):
            if isinstance(ev, DataChunk):
                message += ev.data  # chunking may differ between the two paths
                continue
            if message:
                events.append(bytes(message))
                message.clear()
            events.append(ev)
            assert len(events) <= 2 * len(data) + 10, "events without input"
            match ev:
                case ConnectionClosed():
                    return events
                case SyntaxErr(reply=reply) | BadSequence(reply=reply):
                    check_wire_lines(core.render(reply))
                case DataEnd():
                    core.transition(Data(), ok=steer.flag())
                case ChunkEnd(command=cmd, error=error):
                    core.transition(cmd, ok=error is None and steer.flag())
                case AuthResponse():
                    pass
                case Data():
                    if steer.flag():
                        core.start_data()
                    else:
                        core.transition(ev, ok=False)
                case Bdat():
                    pass  # its octets follow; ChunkEnd decides
                case Auth():
                    if steer.flag():
                        core.expect_auth_response()
                    core.transition(ev, ok=steer.flag())
                case StartTls():
                    if steer.flag():
                        core.start_tls()
                case Mail(address=address, params=params) | Rcpt(address=address, params=params):
                    _check_address(address, params)
                    core.transition(ev, ok=steer.flag())
                case _:
                    core.transition(ev, ok=steer.flag())
        assert len(core._buf) <= bound + len(read), "core holds more than a line and a read"
    raise AssertionError("no ConnectionClosed after EOF")


def fuzz_smtp(data: bytes) -> None:
    fast = _run(data, fast=True)
    slow = _run(data, fast=False)
    assert fast == slow, (fast, slow)

