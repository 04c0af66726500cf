"""Every POP3 limit of docs/security.md: the reply a client sees when it reaches the limit, and
that the server goes on serving another client meanwhile (a session logged in before the
offender, used while the offender is still connected) and after (a new login).

The replies alone are also covered in test_pop3_robustness.py (line, errors, idle timeout) and
tests/wire/test_listeners.py (total limit); these add the other clients and the limits added
for issue 6 (login deadline, session time, failed logins, commands per second, per address).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import argon2
import pytest
from pop3_wire import ALICE, PASSWORD, Pop3Env, RawClient, make_env, message

import mailwright.auth.passwords as _passwords

_OPEN: list[RawClient] = []


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with tiny parameters: logins in microseconds (what is tested here is POP3)."""
    monkeypatch.setattr(_passwords, "_HASHER",
                        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def env_with(server_factory: Any, **settings: str) -> Pop3Env:
    return make_env(server_factory,
                    {f"MAILWRIGHT_POP3_{k.upper()}": v for k, v in settings.items()})


def connect(env: Pop3Env, login: bool = True) -> RawClient:
    c = env.raw()
    _OPEN.append(c)
    assert c.line().startswith(b"+OK")
    if login:
        c.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
        assert c.line().startswith(b"+OK")
        assert c.line().startswith(b"+OK Logged in")
    return c


def served(c: RawClient) -> None:
    """A logged-in session answers."""
    assert c.send(b"NOOP\r\n").line() == b"+OK\r\n"


def capa(c: RawClient) -> None:
    """A session not logged in answers (NOOP is a TRANSACTION command)."""
    assert c.send(b"CAPA\r\n").line().startswith(b"+OK")
    assert c.multiline()


def login_served(env: Pop3Env) -> None:
    """A new client logs in and reads its maildrop (the lock must be free: no one logged in)."""
    client = env.login()
    try:
        assert client.stat()[0] >= 0
    finally:
        client.quit()


@pytest.fixture
def small(server_factory: Any) -> Pop3Env:
    return env_with(server_factory, max_command_line="512", max_errors="3",
                    max_auth_failures="2")


@pytest.fixture
def bystander(small: Pop3Env) -> RawClient:
    """Not logged in (POP3 locks the maildrop for one session): it only needs to be served."""
    return connect(small, login=False)


def test_line_limit(small: Pop3Env, bystander: RawClient) -> None:
    c = connect(small, login=False)
    assert c.send(b"NOOP " + b"x" * 600 + b"\r\n").line() == b"-ERR Line too long\r\n"
    capa(bystander)
    capa(c)  # the session goes on
    login_served(small)


def test_error_limit(small: Pop3Env, bystander: RawClient) -> None:
    c = connect(small, login=False)
    c.send(b"BOGUS\r\nBOGUS\r\nBOGUS\r\n")
    for _ in range(3):
        assert c.line().startswith(b"-ERR")
    assert c.line() == b"-ERR Too many errors, closing connection\r\n"
    assert c.at_eof()
    capa(bystander)
    login_served(small)


def test_auth_failure_limit(small: Pop3Env, bystander: RawClient) -> None:
    c = connect(small, login=False)
    c.send(f"USER {ALICE}\r\nPASS wrong\r\n".encode())
    assert c.line().startswith(b"+OK")
    assert c.line().startswith(b"-ERR [AUTH]")
    capa(bystander)
    c.send(f"USER {ALICE}\r\nPASS wrong\r\n".encode())
    assert c.line().startswith(b"+OK")
    assert c.line().startswith(b"-ERR [AUTH]")
    assert c.line() == b"-ERR [AUTH] Too many authentication failures\r\n"
    assert c.at_eof()
    capa(bystander)
    login_served(small)


def test_commands_per_second_paces_one_client_only(server_factory: Any) -> None:
    env = env_with(server_factory, max_commands_per_second="20")
    flooder, other = connect(env), connect(env, login=False)
    elapsed: list[float] = []

    def flood() -> None:
        started = time.monotonic()
        flooder.send(b"NOOP\r\n" * 60)
        for _ in range(60):
            assert flooder.line() == b"+OK\r\n"  # slowed down, never refused
        elapsed.append(time.monotonic() - started)

    thread = threading.Thread(target=flood)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    capa(other)
    assert time.monotonic() - started < 0.5
    thread.join(15)
    assert elapsed
    assert elapsed[0] >= 1.0


def test_idle_timeout(server_factory: Any) -> None:
    env = env_with(server_factory, idle_timeout="1")
    silent, busy = connect(env, login=False), connect(env)
    for _ in range(4):
        time.sleep(0.3)
        served(busy)
    assert silent.line() == b"-ERR Autologout: idle for too long\r\n"
    assert silent.at_eof()
    served(busy)


def test_login_deadline_cuts_a_trickling_client(server_factory: Any) -> None:
    """login_timeout is a deadline: a byte every 0.2 s (slowloris) does not push it back."""
    env = env_with(server_factory, login_timeout="1")
    logged_in = connect(env)
    slow = connect(env, login=False)
    started = time.monotonic()

    def trickle() -> None:
        try:
            for ch in b"USER alice@example.test slowly":
                slow.send(bytes([ch]))
                time.sleep(0.2)
        except OSError:
            pass

    threading.Thread(target=trickle, daemon=True).start()
    assert slow.line() == b"-ERR [SYS/TEMP] Login time limit reached\r\n"
    assert time.monotonic() - started < 3
    served(logged_in)


def test_session_time_limit_commits_nothing(server_factory: Any) -> None:
    env = env_with(server_factory, max_session_time="1")
    env.deliver(message(1))
    c = connect(env)
    assert c.send(b"DELE 1\r\n").line().startswith(b"+OK")
    other = connect(env, login=False)
    assert c.line() == b"-ERR [SYS/TEMP] Session time limit reached\r\n"
    assert c.at_eof()
    capa(other)
    # Cut off without QUIT: no UPDATE state (RFC 1939 6), the message is still there.
    deadline = time.monotonic() + 5
    while env.server.call(lambda: env.alice.id in env.server.server.services.pop3_locks):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client = env.login()
    assert client.stat()[0] == 1
    client.quit()


def greeting_from(env: Pop3Env, source: str) -> bytes:
    with socket.create_connection((env.server.host, env.port), timeout=10,
                                  source_address=(source, 0)) as sock:
        return sock.recv(4096)


def test_connections_per_ip(server_factory: Any) -> None:
    env = env_with(server_factory, max_connections_per_ip="2")
    held = [connect(env), connect(env, login=False)]
    assert greeting_from(env, "127.0.0.1").startswith(b"-ERR [SYS/TEMP]")
    assert greeting_from(env, "127.0.0.2").startswith(b"+OK")
    served(held[0])


def test_connections_in_total(server_factory: Any) -> None:
    env = env_with(server_factory, max_connections="2", max_connections_per_ip="0")
    held = [connect(env), connect(env, login=False)]
    assert greeting_from(env, "127.0.0.3").startswith(b"-ERR [SYS/TEMP]")
    served(held[0])
