"""AUTHORIZATION: USER/PASS, SASL PLAIN and LOGIN (RFC 5034), the plaintext rule (RFC 8314,
2595), the uniform failure reply (RFC 3206 [AUTH]) and the maildrop lock (RFC 2449 [IN-USE])."""

from __future__ import annotations

import base64
import poplib

import pytest
from pop3_wire import (
    ALICE,
    PASSWORD,
    Pop3Env,
    RawClient,
    ServerFactory,
    close,
    make_env,
    message,
    wait_unlocked,
)

NO_PLAINTEXT = {"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"}


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _greeted(pop3: Pop3Env) -> RawClient:
    raw = pop3.raw()
    assert raw.line().startswith(b"+OK ")
    return raw


def test_auth_plain_with_initial_response(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    raw = _greeted(pop3)
    try:
        token = b64(f"\0{ALICE}\0{PASSWORD}".encode())
        raw.send(b"AUTH PLAIN " + token + b"\r\n")
        assert raw.line().startswith(b"+OK Logged in, 1 messages")
        raw.send(b"STAT\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK 1 ")
        assert raw.line().startswith(b"+OK")
    finally:
        raw.close()


def test_auth_plain_with_continuation(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH PLAIN\r\n")
        assert raw.line() == b"+ \r\n"
        raw.send(b64(f"{ALICE}\0{ALICE}\0{PASSWORD}".encode()) + b"\r\n")
        assert raw.line().startswith(b"+OK Logged in")
    finally:
        raw.close()


def test_auth_login_with_poplib_sasl_style(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH LOGIN\r\n")
        assert raw.line() == b"+ " + b64(b"Username:") + b"\r\n"
        raw.send(b64(ALICE.encode()) + b"\r\n")
        assert raw.line() == b"+ " + b64(b"Password:") + b"\r\n"
        raw.send(b64(PASSWORD.encode()) + b"\r\n")
        assert raw.line().startswith(b"+OK Logged in")
    finally:
        raw.close()


def test_auth_login_with_initial_username(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH LOGIN " + b64(ALICE.encode()) + b"\r\n")
        assert raw.line() == b"+ " + b64(b"Password:") + b"\r\n"
        raw.send(b64(PASSWORD.encode()) + b"\r\n")
        assert raw.line().startswith(b"+OK Logged in")
    finally:
        raw.close()


def test_auth_star_cancels_and_session_continues(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH LOGIN\r\n")
        assert raw.line().startswith(b"+ ")
        raw.send(b"*\r\n")
        assert raw.line() == b"-ERR Authentication cancelled\r\n"
        raw.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
        assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"+OK Logged in")
    finally:
        raw.close()


def test_auth_bad_base64_is_an_error_not_a_crash(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH PLAIN !!!notbase64\r\n")
        assert raw.line().startswith(b"-ERR Invalid SASL response")
        raw.send(b"AUTH PLAIN " + b64(b"only-one-field") + b"\r\n")
        assert raw.line().startswith(b"-ERR Invalid SASL response")
        raw.send(b"CAPA\r\n")
        assert raw.line().startswith(b"+OK")
    finally:
        raw.close()


def test_auth_unknown_mechanism(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH CRAM-MD5\r\n")
        assert raw.line() == b"-ERR Unsupported authentication mechanism\r\n"
    finally:
        raw.close()


def test_bare_auth_lists_mechanisms(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.multiline() == [b"PLAIN\r\n", b"LOGIN\r\n"]
    finally:
        raw.close()


def test_authzid_for_another_user_is_refused(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH PLAIN " + b64(f"bob@example.test\0{ALICE}\0{PASSWORD}".encode()) + b"\r\n")
        assert raw.line() == b"-ERR [AUTH] Invalid credentials\r\n"
    finally:
        raw.close()


def test_same_error_for_unknown_user_and_bad_password(pop3: Pop3Env) -> None:
    replies = []
    for user, password in ((ALICE, "wrong"), ("nobody@example.test", PASSWORD), ("x", "y")):
        client = pop3.pop()
        try:
            client.user(user)
            with pytest.raises(poplib.error_proto) as info:
                client.pass_(password)
            replies.append(info.value.args[0])
        finally:
            client.quit()
    raw = _greeted(pop3)
    try:
        raw.send(b"AUTH PLAIN " + b64(b"\0nobody@example.test\0pw") + b"\r\n")
        replies.append(raw.line().rstrip(b"\r\n"))
    finally:
        raw.close()
    assert set(replies) == {b"-ERR [AUTH] Invalid credentials"}


def test_user_reply_does_not_reveal_existence(pop3: Pop3Env) -> None:
    client = pop3.pop()
    try:
        assert client.user(ALICE) == client.user("nobody@example.test")
    finally:
        client.quit()


def test_pass_without_user_is_refused(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        raw.send(b"PASS secret\r\n")
        assert raw.line().startswith(b"-ERR No username")
    finally:
        raw.close()


def test_transaction_commands_need_login(pop3: Pop3Env) -> None:
    raw = _greeted(pop3)
    try:
        for cmd in (b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"UIDL", b"TOP 1 1"):
            raw.send(cmd + b"\r\n")
            assert raw.line().startswith(b"-ERR Not authenticated")
    finally:
        raw.close()


def test_second_session_gets_in_use(pop3: Pop3Env) -> None:
    first = pop3.login()
    try:
        second = pop3.pop()
        try:
            second.user(ALICE)
            with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
                second.pass_(PASSWORD)
        finally:
            second.quit()
    finally:
        first.quit()
    pop3.login().quit()  # released by QUIT


def test_lock_released_when_connection_drops(pop3: Pop3Env) -> None:
    first = pop3.login()
    close(first)
    wait_unlocked(pop3.server, pop3.alice.id)
    pop3.login().quit()


def test_plaintext_refused_when_not_allowed(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, NO_PLAINTEXT)
    raw = env.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(b"CAPA\r\n")
        assert raw.line().startswith(b"+OK")
        caps = raw.multiline()
        assert b"STLS\r\n" in caps
        assert b"USER\r\n" not in caps
        assert not any(c.startswith(b"SASL") for c in caps)
        raw.send(f"USER {ALICE}\r\n".encode())
        assert raw.line().startswith(b"-ERR [SYS/PERM]")
        raw.send(b"AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}".encode()) + b"\r\n")
        assert raw.line().startswith(b"-ERR [SYS/PERM]")
        raw.send(b"PASS x\r\n")  # no USER accepted: still refused, never verified
        assert raw.line().startswith(b"-ERR")
    finally:
        raw.close()


def test_capa_on_loopback_plaintext(pop3: Pop3Env) -> None:
    client = pop3.pop()
    try:
        caps = client.capa()
        for name in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS"):
            assert name in caps
        assert caps["SASL"] == ["PLAIN", "LOGIN"]
        assert caps["EXPIRE"] == ["NEVER"]
        assert caps["IMPLEMENTATION"] == ["mailwright"]
    finally:
        client.quit()


def test_capa_after_login_drops_login_capabilities(pop3: Pop3Env) -> None:
    client = pop3.login()
    try:
        caps = client.capa()
        assert "TOP" in caps
        assert "STLS" not in caps
        assert "USER" not in caps
    finally:
        client.quit()
