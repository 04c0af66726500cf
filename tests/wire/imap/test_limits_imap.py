"""Every IMAP limit of docs/security.md: the response a client sees when it reaches the limit,
and that the server goes on serving another client meanwhile (a session logged in before the
offender, used while the offender is still connected) and after (a new login).

The responses alone are also covered in test_robustness.py (line, literal, nesting, errors,
failed logins, idle timeout) and test_append.py (APPENDLIMIT); these add the other clients and
the limits added for issue 6 (login deadline, session time, configurable failed-login limit).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from imap_wire import ImapEnv, WireClient, cheap_hashing, last, make_env, wire

from mailwright.imap.lexer import MAX_NESTING
from mailwright.imap.parser import DEFAULT_MAX_COMMAND, DEFAULT_MAX_LINE, DEFAULT_MAX_LITERAL

__all__ = ["cheap_hashing"]  # autouse: LOGIN in microseconds (imap_wire.py)


def usable(c: WireClient, tag: str = "z") -> None:
    assert c.cmd(tag, "NOOP") == [f"{tag} OK NOOP completed\r\n".encode()]


def env_with(server_factory: Any, **settings: str) -> ImapEnv:
    return make_env(server_factory,
                    {f"MAILWRIGHT_IMAP_{k.upper()}": v for k, v in settings.items()})


@pytest.fixture
def small(server_factory: Any) -> ImapEnv:
    return env_with(server_factory, max_errors="3", max_auth_failures="2",
                    max_message_size="2000")


@pytest.fixture
def bystander(small: ImapEnv) -> Iterator[WireClient]:
    """Logged in before the offender; after the test a new client logs in and is served."""
    with wire(small) as c:
        yield c
    with wire(small) as fresh:
        usable(fresh)


def test_line_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small) as c:
        c.send(b"a NOOP " + b"x" * (DEFAULT_MAX_LINE + 1) + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a BAD line too long")
        usable(bystander)
        usable(c)


def test_literal_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small) as c:
        assert last(c.cmd("a", f"LOGIN {{{DEFAULT_MAX_LITERAL + 1}}}")).startswith(
            b"a BAD literal too big")
        usable(bystander)
        usable(c)


def test_command_size_limit(small: ImapEnv, bystander: WireClient) -> None:
    """Literals within their own limit, but more of them than one command may hold."""
    with wire(small) as c:
        assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
        size = DEFAULT_MAX_LITERAL - 1
        pieces = DEFAULT_MAX_COMMAND // size + 1
        c.send(b"a SEARCH" + b"".join(b" TEXT {%d+}\r\n" % size + b"t" * size
                                      for _ in range(pieces)) + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a BAD")
        usable(bystander)
        usable(c)


def test_nesting_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small) as c:
        assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
        deep = MAX_NESTING - 1  # the search key itself is one level
        assert last(c.cmd("a", "SEARCH " + "(" * deep + "ALL" + ")" * deep)).startswith(b"a OK")
        deeper = MAX_NESTING + 1
        reply = last(c.cmd("b", "SEARCH " + "(" * deeper + "ALL" + ")" * deeper))
        assert reply.startswith(b"b BAD nesting too deep")
        usable(bystander)
        usable(c)


def test_append_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small) as c:
        assert last(c.cmd("a", "APPEND INBOX {2001}")).startswith(b"a NO [TOOBIG]")
        usable(bystander)
        usable(c)


def test_error_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small) as c:
        c.send(b"a BOGUS\r\nb BOGUS\r\nc BOGUS\r\n")
        lines = [c.readline() for _ in range(4)]
        assert [line[:5] for line in lines[:3]] == [b"a BAD", b"b BAD", b"c BAD"]
        assert lines[3].startswith(b"* BYE Too many errors")
        assert c.at_eof()
    usable(bystander)


def test_auth_failure_limit(small: ImapEnv, bystander: WireClient) -> None:
    with wire(small, login=False) as c:
        assert last(c.cmd("a", 'LOGIN alice@example.test "wrong"')).startswith(
            b"a NO [AUTHENTICATIONFAILED]")
        usable(bystander)
        c.send(b'b LOGIN alice@example.test "wrong"\r\n')
        assert c.readline().startswith(b"b NO [AUTHENTICATIONFAILED]")
        assert c.readline().startswith(b"* BYE Too many failed login attempts")
        assert c.at_eof()
    usable(bystander)


def test_commands_per_second_paces_one_client_only(server_factory: Any) -> None:
    env = env_with(server_factory, max_commands_per_second="20")
    with wire(env) as flooder, wire(env) as other:
        elapsed: list[float] = []

        def flood() -> None:
            started = time.monotonic()
            flooder.send(b"".join(b"n%d NOOP\r\n" % i for i in range(60)))
            for i in range(60):
                assert flooder.readline().startswith(b"n%d OK" % i)  # slowed, never refused
            elapsed.append(time.monotonic() - started)

        thread = threading.Thread(target=flood)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        usable(other)
        assert time.monotonic() - started < 0.5
        thread.join(15)
        assert elapsed
        assert elapsed[0] >= 1.0


def test_idle_timeout(server_factory: Any) -> None:
    env = env_with(server_factory, idle_timeout="1")
    with wire(env) as silent, wire(env) as busy:
        for _ in range(4):
            time.sleep(0.3)
            usable(busy)  # activity resets its timer
        assert silent.readline().startswith(b"* BYE Autologout")
        assert silent.at_eof()
        usable(busy)


def test_login_deadline_cuts_a_trickling_client(server_factory: Any) -> None:
    """login_timeout is a deadline: a byte every 0.2 s (slowloris) does not push it back."""
    env = env_with(server_factory, login_timeout="1")
    with wire(env) as logged_in, wire(env, login=False) as slow:
        started = time.monotonic()

        def trickle() -> None:
            try:
                for ch in b"a LOGIN alice@example.test slowly":
                    slow.send(bytes([ch]))
                    time.sleep(0.2)
            except OSError:
                pass

        threading.Thread(target=trickle, daemon=True).start()
        assert slow.readline().startswith(b"* BYE Login time limit reached")
        assert time.monotonic() - started < 3
        usable(logged_in)  # logged in before the deadline: not affected
    with wire(env) as fresh:
        usable(fresh)


def test_session_time_limit(server_factory: Any) -> None:
    env = env_with(server_factory, max_session_time="1.5")
    with wire(env) as first:
        time.sleep(0.7)
        with wire(env) as second:
            started = time.monotonic()
            assert first.readline().startswith(b"* BYE Session time limit reached")
            assert time.monotonic() - started < 3
            usable(second)


def greeting_from(env: ImapEnv, source: str) -> bytes:
    with socket.create_connection((env.server.host, env.port), timeout=10,
                                  source_address=(source, 0)) as sock:
        return sock.recv(4096)


def test_connections_per_ip(server_factory: Any) -> None:
    env = env_with(server_factory, max_connections_per_ip="2")
    with wire(env) as a, wire(env) as b:
        assert greeting_from(env, "127.0.0.1").startswith(b"* BYE [UNAVAILABLE]")
        assert greeting_from(env, "127.0.0.2").startswith(b"* OK")
        usable(a)
        usable(b)


def test_connections_in_total(server_factory: Any) -> None:
    env = env_with(server_factory, max_connections="2", max_connections_per_ip="0")
    with wire(env) as a, wire(env):
        assert greeting_from(env, "127.0.0.3").startswith(b"* BYE [UNAVAILABLE]")
        usable(a)
