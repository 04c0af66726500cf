"""Hostile and broken clients (RFC 9051 7.1.3 BAD, 5.4 autologout; issue 4's parser limits):
garbage, overlong lines, unknown commands, literals over the limit, too many errors, the
inactivity timer, and clients that vanish mid-command. Every refusal leaves the connection
usable where the RFC allows, and nothing half-received is left behind.
"""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from imap_wire import ImapEnv, WireClient, last, make_env, message, wire

from mailwright.imap.parser import DEFAULT_MAX_LINE, DEFAULT_MAX_LITERAL


def usable(c: WireClient, tag: str = "z") -> None:
    assert c.cmd(tag, "NOOP") == [f"{tag} OK NOOP completed\r\n".encode()]


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Poll a condition the server reaches asynchronously (after a client vanished)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def staged_files(imap: ImapEnv) -> list[Path]:
    tmp = imap.server.data_dir / "tmp"
    return [p for p in tmp.iterdir() if p.is_file()] if tmp.exists() else []


# ----- malformed input --------------------------------------------------------------------------


def test_garbage_bytes(c: WireClient) -> None:
    c.send(b"\x00\xff\xfe\x80garbage\r\n")
    assert c.readline().startswith(b"* BAD")
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n")  # a TLS hello on the wrong port
    assert c.readline().startswith(b"* BAD")
    usable(c)


def test_tag_without_command(c: WireClient) -> None:
    assert last(c.cmd("a", "")).startswith(b"a BAD")
    c.send(b"+ NOOP\r\n")  # "+" is not a valid tag character
    assert c.readline().startswith(b"* BAD")
    c.send(b"*\r\n")
    assert c.readline().startswith(b"* BAD")
    usable(c)


def test_empty_lines_are_ignored(c: WireClient) -> None:
    c.send(b"\r\n\r\n\n")
    usable(c)


def test_bare_lf_line_endings(c: WireClient) -> None:
    c.send(b"a NOOP\n")
    assert last(c.until_tagged("a")).startswith(b"a OK")


def test_unknown_command(c: WireClient) -> None:
    reply = c.cmd("a", "XYZZY foo bar")
    assert len(reply) == 1
    assert reply[0].startswith(b"a BAD")
    assert last(c.cmd("b", "UID XYZZY 1")).startswith(b"b BAD")
    usable(c)


def test_nul_and_8bit_in_commands(c: WireClient) -> None:
    assert last(c.cmd("a", b"SELECT IN\x00BOX")).startswith(b"a BAD")
    assert last(c.cmd("b", b'CREATE "caf\xc3\xa9"')).startswith(b"b BAD")
    assert last(c.cmd("c", b"CREATE {3+}\r\na\x00b")).startswith(b"c BAD")
    usable(c)


def test_overlong_line(c: WireClient) -> None:
    c.send(b"a NOOP " + b"x" * (DEFAULT_MAX_LINE + 10_000) + b"\r\n")
    reply = c.until_tagged("a")
    assert len(reply) == 1
    assert reply[0].startswith(b"a BAD")
    assert b"too long" in reply[0]
    usable(c)


def test_overlong_line_hiding_a_command(c: WireClient) -> None:
    """The rest of the refused line is dropped, even if it looks like a command."""
    c.send(b"a LIST " + b"y" * (DEFAULT_MAX_LINE + 10) + b" b LOGOUT\r\n")
    assert last(c.until_tagged("a")).startswith(b"a BAD")
    usable(c)


def test_overlong_line_sent_slowly(c: WireClient) -> None:
    for _ in range(3):
        c.send(b"x" * (DEFAULT_MAX_LINE // 2))
    c.send(b"\r\n")
    assert c.readline().startswith(b"* BAD")
    usable(c)


def test_deep_nesting(c: WireClient) -> None:
    assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
    assert last(c.cmd("a", "SEARCH " + "(" * 500 + "ALL" + ")" * 500)).startswith(b"a BAD")
    assert last(c.cmd("b", "SEARCH " + "NOT " * 500 + "ALL")).startswith(b"b BAD")
    usable(c)


def test_literal_over_the_limit(c: WireClient) -> None:
    # Synchronizing: BAD instead of "+", the client sends nothing more.
    reply = c.cmd("a", f"LOGIN {{{DEFAULT_MAX_LITERAL + 1}}}")
    assert len(reply) == 1
    assert reply[0].startswith(b"a BAD")
    usable(c, "y")
    # Non-synchronizing: its octets arrive anyway and are skipped, commands hidden in them too.
    data = (b"z LOGOUT\r\n" * (DEFAULT_MAX_LITERAL // 10 + 1))[:DEFAULT_MAX_LITERAL + 1]
    c.send(b"b CREATE {%d+}\r\n" % len(data) + data + b"\r\n")
    reply = c.until_tagged("b")
    assert len(reply) == 1
    assert reply[0].startswith(b"b BAD")
    usable(c)


def test_huge_literal_size(c: WireClient) -> None:
    assert last(c.cmd("a", "LOGIN {99999999999}")).startswith(b"a BAD")
    assert last(c.cmd("b", "APPEND INBOX {4294967296}")).startswith(b"b NO [TOOBIG]")
    usable(c)


def test_pipelined_flood_is_answered_in_order(c: WireClient) -> None:
    c.send(b"".join(b"n%d NOOP\r\n" % i for i in range(500)))
    for i in range(500):
        assert c.readline().startswith(b"n%d OK" % i)


# ----- limits that end the session -------------------------------------------------------------


@pytest.fixture
def strict(server_factory: Any) -> ImapEnv:
    return make_env(server_factory, {"MAILWRIGHT_IMAP_MAX_ERRORS": "3",
                                     "MAILWRIGHT_IMAP_IDLE_TIMEOUT": "1"})


def test_too_many_errors_says_bye(strict: ImapEnv) -> None:
    with wire(strict, login=False) as c:
        assert last(c.cmd("a", "BOGUS")).startswith(b"a BAD")
        assert last(c.cmd("b", "BOGUS")).startswith(b"b BAD")
        reply = c.cmd("c", "BOGUS")
        assert reply[0].startswith(b"c BAD")
        assert reply[1:] == [] or reply[1].startswith(b"* BYE")
        if len(reply) == 1:
            assert c.readline().startswith(b"* BYE")
        assert c.at_eof()


def test_errors_must_come_in_a_row(strict: ImapEnv) -> None:
    """A command that succeeds resets the count: a long-lived session is not cut off for
    the odd refused command over its lifetime."""
    with wire(strict) as c:
        for round_ in range(3):
            assert last(c.cmd("a", "BOGUS")).startswith(b"a BAD")
            assert last(c.cmd("b", "FETCH 1 FLAGS")).startswith(b"b BAD")  # wrong state
            usable(c, f"n{round_}")


def test_failed_logins_count_as_errors(strict: ImapEnv) -> None:
    with wire(strict, login=False) as c:
        for tag in ("a", "b"):
            assert last(c.cmd(tag, 'LOGIN nobody@example.test "x"')).startswith(
                tag.encode() + b" NO [AUTHENTICATIONFAILED]")
        c.send(b'c LOGIN nobody@example.test "x"\r\n')
        lines = [c.readline(), c.readline()]
        assert lines[0].startswith(b"c NO")
        assert lines[1].startswith(b"* BYE")
        assert c.at_eof()


def test_three_failed_logins_say_bye(imap: ImapEnv) -> None:
    """MAX_AUTH_FAILURES: successes in between do not reset it (NOOP is free to send)."""
    with wire(imap, login=False) as c:
        assert last(c.cmd("a", 'LOGIN nobody@example.test "x"')).startswith(b"a NO")
        usable(c, "n1")
        reply = c.cmd("b", b"AUTHENTICATE PLAIN " + base64.b64encode(b"\0nobody\0x"))
        assert last(reply).startswith(b"b NO")
        usable(c, "n2")
        c.send(b'c LOGIN nobody@example.test "x"\r\n')
        assert c.readline().startswith(b"c NO [AUTHENTICATIONFAILED]")
        assert c.readline().startswith(b"* BYE")
        assert c.at_eof()


def test_idle_timeout_says_bye(strict: ImapEnv) -> None:
    with wire(strict, login=False) as c:
        c.sock.settimeout(10)
        started = time.monotonic()
        line = c.readline()
        assert line.startswith(b"* BYE")
        assert time.monotonic() - started < 5
        assert c.at_eof()


def test_idle_timeout_during_idle(strict: ImapEnv) -> None:
    with wire(strict) as c:
        c.send(b"i IDLE\r\n")
        assert c.readline() == b"+ idling\r\n"
        assert c.readline().startswith(b"* BYE")
        assert c.at_eof()


def test_idle_timeout_mid_literal(strict: ImapEnv) -> None:
    with wire(strict) as c:
        c.send(b"a APPEND INBOX {100}\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"only part of it")
        assert c.readline().startswith(b"* BYE")
        assert c.at_eof()
    wait_for(lambda: not staged_files(strict))
    assert strict.server.store.mailbox_status(strict.alice.id, "INBOX").messages == 0


def test_idle_timeout_mid_authenticate(strict: ImapEnv) -> None:
    with wire(strict, login=False) as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith(b"+")
        assert c.readline().startswith(b"* BYE")
        assert c.at_eof()


# ----- clients that vanish -----------------------------------------------------------------------


@pytest.mark.parametrize("literal", [b"{%d}", b"{%d+}"])
def test_disconnect_mid_append_leaves_nothing(imap: ImapEnv, literal: bytes) -> None:
    raw = message(1, body=b"z" * 300_000)
    with wire(imap) as c:
        c.send(b"a APPEND INBOX " + literal % len(raw) + b"\r\n")
        if b"+" not in literal:
            assert c.readline().startswith(b"+")
        c.send(raw[:150_000])
        wait_for(lambda: staged_files(imap))  # the server is receiving it
        c.sock.shutdown(socket.SHUT_RDWR)
    wait_for(lambda: not staged_files(imap))
    status = imap.server.store.mailbox_status(imap.alice.id, "INBOX")
    assert status is not None
    assert status.messages == 0
    # The server is fine.
    with wire(imap) as c2:
        usable(c2)


def test_disconnect_mid_command_line(imap: ImapEnv) -> None:
    with wire(imap) as c:
        c.send(b"a SELECT IN")
    with wire(imap) as c:
        c.send(b"a LOGIN {10}\r\n")
    with wire(imap) as c:
        usable(c)


def test_disconnect_during_idle(imap: ImapEnv) -> None:
    with wire(imap) as c:
        c.cmd("s", "SELECT INBOX")
        c.send(b"i IDLE\r\n")
        assert c.readline() == b"+ idling\r\n"
    imap.deliver(message(1))  # publishing to a vanished idler must not break delivery
    with wire(imap) as c:
        assert b"* 1 EXISTS\r\n" in c.cmd("s", "SELECT INBOX")
