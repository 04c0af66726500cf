"""Limits and failures: every client mistake is a -ERR, the session survives or closes cleanly,
and other clients are never affected."""

from __future__ import annotations

import socket

from pop3_wire import (
    ALICE,
    PASSWORD,
    SMTP_OFF,
    Pop3Env,
    ServerFactory,
    make_env,
    message,
    wait_unlocked,
)


def test_unknown_and_malformed_commands_get_err(pop3: Pop3Env) -> None:
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        for line in (b"HELO x", b"", b"\xff\xfe\x00", b"RETR x", b"TOP 1", b"STAT 1"):
            raw.send(line + b"\r\n")
            assert raw.line().startswith(b"-ERR ")
        raw.send(b"CAPA\r\n")
        assert raw.line().startswith(b"+OK")
    finally:
        raw.close()


def test_over_long_line_is_refused_and_session_continues(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, {"MAILWRIGHT_POP3_MAX_COMMAND_LINE": "512"})
    raw = env.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(b"USER " + b"a" * 5000 + b"\r\nNOOP\r\nCAPA\r\n")
        assert raw.line() == b"-ERR Line too long\r\n"
        assert raw.line().startswith(b"-ERR Not authenticated")  # NOOP: still in step
        assert raw.line().startswith(b"+OK")  # CAPA
    finally:
        raw.close()


def test_too_many_errors_closes_the_connection(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, {"MAILWRIGHT_POP3_MAX_ERRORS": "3"})
    raw = env.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(b"BAD\r\nBAD\r\nBAD\r\nCAPA\r\n")
        for _ in range(3):
            assert raw.line().startswith(b"-ERR Unknown command")
        assert raw.line() == b"-ERR Too many errors, closing connection\r\n"
        assert raw.at_eof()
    finally:
        raw.close()


def test_idle_timeout_closes_without_commit(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, {"MAILWRIGHT_POP3_IDLE_TIMEOUT": "0.5"})
    env.deliver(message(1))
    raw = env.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nDELE 1\r\n".encode())
        for _ in range(3):
            assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"-ERR Autologout")
        assert raw.at_eof()
    finally:
        raw.close()
    assert len(env.server.store.pop3_messages(env.alice.id)) == 1


def test_garbage_client_does_not_affect_another(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    good = pop3.login()
    try:
        bad = socket.create_connection((pop3.server.host, pop3.port), timeout=10)
        try:
            bad.sendall(bytes(range(256)) * 64)
            bad.shutdown(socket.SHUT_WR)
            while bad.recv(65536):
                pass
        finally:
            bad.close()
        _, lines, _ = good.retr(1)
        assert b"Subject: message 1" in lines
    finally:
        good.quit()


def test_client_closing_mid_retr_is_harmless(pop3: Pop3Env) -> None:
    pop3.deliver(message(1, b"y" * 78 + b"\r\n" * 1) * 1, message(2, b"z" * 2_000_000))
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nDELE 1\r\nRETR 2\r\n".encode())
        for _ in range(4):
            assert raw.line().startswith(b"+OK")
    finally:
        raw.close()  # mid-message: no QUIT, so no UPDATE
    wait_unlocked(pop3.server, pop3.alice.id)
    client = pop3.login()
    try:
        assert client.stat()[0] == 2
    finally:
        client.quit()


def test_shutdown_tells_idle_client_and_commits_nothing(server_factory: ServerFactory) -> None:
    env = make_env(server_factory)
    env.deliver(message(1))
    raw = env.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nDELE 1\r\n".encode())
        for _ in range(3):
            assert raw.line().startswith(b"+OK")
        env.server.stop()
        assert raw.line() == b"-ERR [SYS/TEMP] Server shutting down, try again later\r\n"
        assert raw.at_eof()
    finally:
        raw.close()
    again = server_factory({**SMTP_OFF, "MAILWRIGHT_DATA": str(env.server.data_dir)})
    assert len(again.store.pop3_messages(env.alice.id)) == 1
