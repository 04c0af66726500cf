"""Failed logins get slower and slower, per address and per account, across protocols; success
resets; too many from one address start a temporary ban; unknown users and wrong passwords get
the same answer in the same time; no password is taken in plaintext off loopback."""

from __future__ import annotations

import base64
import logging
import poplib
import smtplib
import time
from typing import Any

import pytest
from access_wire import Line, add_account

ALICE, ALICE_PW = "alice@example.test", "alice-pw"
BASE = 0.3  # seconds: failures wait 0.3, 0.6, 1.2, ... (argon2 adds ~0.15 s to each)


def pop3_login(server: Any, password: str) -> float:
    """Seconds the PASS took; asserts the protocol's answer."""
    client = poplib.POP3(server.host, server.port("pop3"), timeout=30)
    try:
        client.user(ALICE)
        started = time.monotonic()
        if password == ALICE_PW:
            client.pass_(password)
        else:
            with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
                client.pass_(password)
        elapsed = time.monotonic() - started
        client.quit()
    finally:
        client.close()
    return elapsed


def test_failure_delay_grows_per_address_is_shared_and_resets(server_factory: Any) -> None:
    server = server_factory({"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": str(BASE),
                             "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "5"})
    server.add_account(ALICE, ALICE_PW)
    first = pop3_login(server, "wrong-1")
    second = pop3_login(server, "wrong-2")
    assert first >= BASE
    assert second >= 2 * BASE
    # The third failure comes through SMTP: the penalty belongs to the address, not the protocol.
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as client:
        client.ehlo()
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(ALICE, "wrong-3")
        third = time.monotonic() - started
    assert third >= 4 * BASE
    assert third > first + 2 * BASE
    pop3_login(server, ALICE_PW)  # success clears the penalty
    assert pop3_login(server, "wrong-4") < third  # back to the first step (0.3 s, not 2.4 s)


# ----- per account, the temporary ban, one answer for everyone, plaintext rules -------------------
# Clients connect from their own loopback addresses (127.0.0.x), so each is a distinct
# "address" to the throttle, as distinct hosts would be.

BOB, BOB_PW = "bob@example.test", "bob-pw"
QUIET = {"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": "0", "MAILWRIGHT_AUTH_BAN_AFTER": "0"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def attempt(server: Any, how: str, user: str, password: str, source: str = "") -> tuple[str, float]:
    """One login by `how`; (the server's answer to it, tag and code kept; seconds it took)."""
    port = {"smtp": "smtp", "pop": "pop3", "imap": "imap"}[how.split("-")[0]]
    with Line(server.host, server.port(port), source=source) as c:
        if how.startswith("smtp"):
            c.smtp_reply()
            c.send(b"EHLO client.test\r\n")
            assert c.smtp_reply()[0] == 250
            started = time.monotonic()
            if how == "smtp-plain":
                c.send(f"AUTH PLAIN {b64(chr(0) + user + chr(0) + password)}\r\n")
            else:
                c.send(b"AUTH LOGIN\r\n")
                code, text = c.smtp_reply()
                if code != 334:  # refused before any challenge
                    return f"{code} {text}", time.monotonic() - started
                c.send(b64(user) + "\r\n")
                assert c.smtp_reply()[0] == 334
                started = time.monotonic()
                c.send(b64(password) + "\r\n")
            code, text = c.smtp_reply()
            answer = f"{code} {text}"
        elif how.startswith("pop"):
            c.line()
            if how == "pop-user":
                c.send(f"USER {user}\r\n")
                assert c.line().startswith(b"+OK")  # the same for every name (RFC 1939 7)
                started = time.monotonic()
                c.send(f"PASS {password}\r\n")
            else:
                started = time.monotonic()
                c.send(f"AUTH PLAIN {b64(chr(0) + user + chr(0) + password)}\r\n")
            answer = c.line().decode()
        else:
            c.line()
            started = time.monotonic()
            if how == "imap-login":
                c.send(f'a LOGIN "{user}" "{password}"\r\n')
            else:
                c.send(f"a AUTHENTICATE PLAIN {b64(chr(0) + user + chr(0) + password)}\r\n")
            answer = c.imap_until("a")[-1].decode()
        return answer, time.monotonic() - started


HOWS = ["smtp-plain", "smtp-login", "pop-user", "pop-auth", "imap-login", "imap-authenticate"]
FAILED = {"smtp": "535 5.7.8", "pop": "-ERR [AUTH]", "imap": "a NO [AUTHENTICATIONFAILED]"}


@pytest.mark.parametrize("how", HOWS)
def test_unknown_user_and_wrong_password_look_the_same(server_factory: Any, how: str) -> None:
    """The same text and the same timing class (one argon2 verify each; no throttle delay
    here): nothing tells a guesser which accounts exist."""
    server = server_factory(QUIET)
    add_account(server, ALICE, ALICE_PW)
    unknown = ["nobody@example.test", "alice@nowhere.test", "alice"]
    answers: dict[str, list[float]] = {"wrong": [], "unknown": []}
    texts = set()
    for n in range(3):
        text, took = attempt(server, how, ALICE, f"wrong-{n}")
        answers["wrong"].append(took)
        texts.add(text)
        text, took = attempt(server, how, unknown[n], f"wrong-{n}")
        answers["unknown"].append(took)
        texts.add(text)
    assert len(texts) == 1, texts
    assert texts.pop().startswith(FAILED[how.split("-")[0]])
    wrong, unknown_t = min(answers["wrong"]), min(answers["unknown"])
    # argon2id costs ~0.1 s; an unknown user skipping it would answer in ~1 ms.
    assert unknown_t > 0.5 * wrong, answers
    assert wrong > 0.5 * unknown_t, answers
    assert attempt(server, how, ALICE, ALICE_PW)[0].startswith(("235", "+OK", "a OK"))


def test_account_penalty_grows_across_addresses(server_factory: Any) -> None:
    """A distributed guesser: one failure per address, and still every answer for alice
    comes slower; bob, guessed at from a fresh address, is not slowed by alice's penalty,
    and alice herself, with her password, logs in without a delay."""
    server = server_factory({"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": str(BASE),
                             "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "5",
                             "MAILWRIGHT_AUTH_BAN_AFTER": "0"})
    add_account(server, ALICE, ALICE_PW)
    add_account(server, BOB, BOB_PW)
    took = [attempt(server, "smtp-plain", ALICE, "guess", source=f"127.0.0.{n}")[1]
            for n in (11, 12, 13)]
    assert [took[0] >= BASE, took[1] >= 2 * BASE, took[2] >= 4 * BASE] == [True] * 3, took
    assert took[2] > took[0] + 2 * BASE
    bob = attempt(server, "pop-user", BOB, "guess", source="127.0.0.14")[1]
    assert bob < took[2] - BASE  # one failure of its own: the first step
    answer, ok = attempt(server, "imap-login", ALICE, ALICE_PW, source="127.0.0.15")
    assert answer.startswith("a OK")
    assert ok < took[2]


def test_address_is_banned_after_n_failures(server_factory: Any,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """After ban_after failures from one address, every protocol refuses it with a temporary
    error, even with the right password; other addresses are not affected; it ends."""
    caplog.set_level(logging.INFO, logger="mailwright.auth")
    server = server_factory({"MAILWRIGHT_AUTH_FAILURE_BASE_DELAY": "0.01",
                             "MAILWRIGHT_AUTH_FAILURE_MAX_DELAY": "0.05",
                             "MAILWRIGHT_AUTH_BAN_AFTER": "3",
                             "MAILWRIGHT_AUTH_BAN_TIME": "2"})
    add_account(server, ALICE, ALICE_PW)
    bad = "127.0.0.21"
    for n in range(3):
        assert attempt(server, "smtp-plain", "mallory@example.test", f"g{n}", bad)[0].startswith(
            "535")
    assert attempt(server, "smtp-plain", ALICE, ALICE_PW, bad)[0].startswith("454 4.7.0")
    assert attempt(server, "pop-user", ALICE, ALICE_PW, bad)[0].startswith("-ERR [SYS/TEMP]")
    assert attempt(server, "imap-login", ALICE, ALICE_PW, bad)[0].startswith("a NO [UNAVAILABLE]")
    assert attempt(server, "smtp-plain", ALICE, ALICE_PW, "127.0.0.22")[0].startswith("235")
    messages = [r.getMessage() for r in caplog.records if r.name == "mailwright.auth"]
    failures = [m for m in messages if m.startswith("auth: failed login")]
    assert len(failures) == 3
    assert all("'mallory@example.test'" in m and bad in m for m in failures)
    assert any(m.startswith(f"auth: banning {bad}") and "mallory" in m for m in messages)
    assert sum(m.startswith("auth: refused login for 'alice@example.test'") for m in messages) == 3
    time.sleep(2.2)  # the ban ends
    assert attempt(server, "smtp-plain", ALICE, ALICE_PW, bad)[0].startswith("235")


REMOTE = {"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"}  # loopback treated as remote


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allow_plaintext"])
def test_no_plaintext_password_without_tls(server_factory: Any, how: str, allow: bool) -> None:
    """RFC 8314 / RFC 4954 4 / RFC 2595 / RFC 9051 6.2.3: on an unencrypted connection that is
    not loopback, no password is taken (not even checked: no throttle failure), unless
    auth.allow_plaintext says so."""
    env = {**REMOTE, "MAILWRIGHT_AUTH_ALLOW_PLAINTEXT": "true" if allow else "false"}
    server = server_factory(env)
    add_account(server, ALICE, ALICE_PW)
    if how == "pop-user":
        with Line(server.host, server.port("pop3")) as c:
            c.line()
            c.send(f"USER {ALICE}\r\n")
            answer = c.line().decode()
            if answer.startswith("+OK"):
                c.send(f"PASS {ALICE_PW}\r\n")
                answer = c.line().decode()
    else:
        answer = attempt(server, how, ALICE, ALICE_PW)[0]
    expected_ok = {"smtp": "235", "pop": "+OK", "imap": "a OK"}
    refused = {"smtp": "538 5.7.11", "pop": "-ERR [SYS/PERM]", "imap": "a NO [PRIVACYREQUIRED]"}
    kind = how.split("-")[0]
    assert answer.startswith(expected_ok[kind] if allow else refused[kind]), answer
    assert server.server.services.authenticator.throttle.failures("127.0.0.1") == 0


@pytest.mark.parametrize("listener", ["smtp", "pop3", "imap"])
def test_no_password_mechanisms_advertised_without_tls(server_factory: Any, listener: str) -> None:
    server = server_factory(REMOTE)
    with Line(server.host, server.port(listener)) as c:
        if listener == "smtp":
            c.smtp_reply()
            c.send(b"EHLO client.test\r\n")
            lines = []
            while (line := c.line().decode())[3:4] == "-":
                lines.append(line[4:])
            lines.append(line[4:])
            assert "STARTTLS" in lines
            assert not any(x.startswith("AUTH") for x in lines)
        elif listener == "pop3":
            c.line()
            c.send(b"CAPA\r\n")
            caps = []
            while (line := c.line()) != b".":
                caps.append(line.decode())
            assert "STLS" in caps
            assert "USER" not in caps
            assert not any(x.startswith("SASL") for x in caps)
        else:
            greeting = c.line().decode()
            assert "LOGINDISABLED" in greeting
            assert "AUTH=PLAIN" not in greeting
            assert "STARTTLS" in greeting
