"""Not-authenticated state over the wire: greeting, CAPABILITY, STARTTLS, implicit TLS, LOGIN,
AUTHENTICATE (PLAIN, LOGIN, SASL-IR), LOGOUT and the state rules (RFC 9051 6.1-6.2, 3;
RFC 3501; RFC 4959; RFC 8314). imaplib where it can say it, a raw socket where it cannot.
"""

from __future__ import annotations

import base64
import imaplib
from typing import Any

import pytest
from imap_wire import ALICE, PASSWORD, ImapEnv, last, make_env, wire

NO_PLAINTEXT = {"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"}


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def plain(user: str = ALICE, password: str = PASSWORD, authzid: str = "") -> bytes:
    return b64(f"{authzid}\0{user}\0{password}".encode())


def single(reply: list[bytes], prefix: bytes) -> None:
    """The reply is one line, the tagged one, starting with `prefix` (no "+", no untagged)."""
    assert len(reply) == 1, reply
    assert reply[0].startswith(prefix), reply


def caps_of(line: bytes) -> set[str]:
    """The capability names in "* CAPABILITY ..." or in a [CAPABILITY ...] code."""
    text = line.decode().strip()
    if "[CAPABILITY " in text:
        text = text.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    else:
        text = text.split("CAPABILITY ", 1)[1]
    return set(text.split())


@pytest.fixture
def remote(server_factory: Any) -> ImapEnv:
    """A server that treats loopback like a remote client: no passwords without TLS."""
    return make_env(server_factory, NO_PLAINTEXT)


# ----- greeting and CAPABILITY ------------------------------------------------------------------


def test_greeting_carries_capabilities(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        assert c.greeting.startswith(b"* OK [CAPABILITY ")
        caps = caps_of(c.greeting)
        assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR",
                "LITERAL+", "IDLE", "ENABLE", "ID", "NAMESPACE"} <= caps
        assert "LOGINDISABLED" not in caps


def test_capability_before_and_after_login(imap: ImapEnv) -> None:
    c = imap.client(login=False)
    typ, data = c.capability()
    assert typ == "OK"
    before = set(data[0].decode().split())
    assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN"} <= before
    typ, data = c.login(ALICE, PASSWORD)
    assert typ == "OK"
    typ, data = c.capability()
    after = set(data[0].decode().split())
    assert {"IMAP4rev1", "IMAP4rev2", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN",
            "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "UNSELECT"} <= after
    assert any(cap.startswith("APPENDLIMIT=") for cap in after)
    # RFC 9051 6.2.1 / 6.2.2: no STARTTLS, LOGINDISABLED or AUTH= after login.
    assert not {cap for cap in after if cap.startswith("AUTH=")}
    assert "STARTTLS" not in after
    assert "LOGINDISABLED" not in after
    c.logout()


def test_login_ok_carries_new_capabilities(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", f'LOGIN {ALICE} "{PASSWORD}"')
        assert last(reply).startswith(b"a OK [CAPABILITY ")
        caps = caps_of(last(reply))
        assert "IMAP4rev2" in caps
        assert "STARTTLS" not in caps
        assert "AUTH=PLAIN" not in caps


def test_logindisabled_without_tls(remote: ImapEnv) -> None:
    with wire(remote, login=False) as c:
        caps = caps_of(c.greeting)
        assert "LOGINDISABLED" in caps
        assert "STARTTLS" in caps
        assert not {cap for cap in caps if cap.startswith("AUTH=")}
        reply = c.cmd("a", f'LOGIN {ALICE} "{PASSWORD}"')
        assert last(reply).startswith(b"a NO [PRIVACYREQUIRED]")
        reply = c.cmd("b", b"AUTHENTICATE PLAIN " + plain())
        assert last(reply).startswith(b"b NO [PRIVACYREQUIRED]")
        # Still not authenticated.
        assert last(c.cmd("c", "SELECT INBOX")).startswith(b"c BAD")


def test_starttls_enables_login(remote: ImapEnv) -> None:
    c = remote.client(login=False)
    assert "LOGINDISABLED" in c.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        c.login(ALICE, PASSWORD)
    typ, _ = c.starttls(ssl_context=remote.server.ssl_context)
    assert typ == "OK"
    # imaplib asked CAPABILITY again inside TLS.
    assert "LOGINDISABLED" not in c.capabilities
    assert "STARTTLS" not in c.capabilities
    assert "AUTH=PLAIN" in c.capabilities
    typ, _ = c.login(ALICE, PASSWORD)
    assert typ == "OK"
    typ, _data = c.select("INBOX")
    assert typ == "OK"
    c.logout()


def test_starttls_twice_is_bad(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        c.starttls(imap.server.ssl_context, imap.server.host)
        caps = caps_of(c.cmd("a", "CAPABILITY")[0])
        assert "STARTTLS" not in caps
        assert "AUTH=PLAIN" in caps
        assert last(c.cmd("b", "STARTTLS")).startswith(b"b BAD")
        c.login()


def test_starttls_after_login_is_bad(imap: ImapEnv) -> None:
    with wire(imap) as c:
        assert last(c.cmd("a", "STARTTLS")).startswith(b"a BAD")
        assert last(c.cmd("b", "NOOP")).startswith(b"b OK")


def test_starttls_injection_is_not_executed(remote: ImapEnv) -> None:
    """CVE-2011-0411: commands pipelined after STARTTLS in the same packet are dropped."""
    host = remote.server.host
    with wire(remote, login=False) as c:
        c.send(b"a STARTTLS\r\nb LOGIN " + ALICE.encode() + b' "' + PASSWORD.encode()
               + b'"\r\nc CAPABILITY\r\n')
        assert last(c.until_tagged("a")).startswith(b"a OK")
        assert c.buf == b""
        c.sock = remote.server.ssl_context.wrap_socket(c.sock, server_hostname=host)
        reply = c.cmd("d", "CAPABILITY")
        # Neither b nor c was answered: the first reply inside TLS is d's.
        assert reply[0].startswith(b"* CAPABILITY ")
        assert last(reply).startswith(b"d OK")
        assert all(not line.startswith((b"b ", b"c ")) for line in reply)
        caps = caps_of(reply[0])
        assert "AUTH=PLAIN" in caps  # still not authenticated
        assert last(c.cmd("e", "SELECT INBOX")).startswith(b"e BAD")
        c.login()


def test_implicit_tls(imap: ImapEnv) -> None:
    c = imap.tls_client(login=False)
    assert "STARTTLS" not in c.capabilities
    assert "AUTH=PLAIN" in c.capabilities
    c.login(ALICE, PASSWORD)
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    with wire(imap, login=False, tls=True) as raw:
        assert last(raw.cmd("a", "STARTTLS")).startswith(b"a BAD")


def test_implicit_tls_allows_login_when_plaintext_is_refused(remote: ImapEnv) -> None:
    c = remote.tls_client(login=False)
    assert "LOGINDISABLED" not in c.capabilities
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    c.logout()


# ----- LOGIN --------------------------------------------------------------------------------


def test_login_failures(imap: ImapEnv) -> None:
    c = imap.client(login=False)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login(ALICE, "wrong password")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login("nobody@example.test", PASSWORD)
    # The connection is still usable and a good login works.
    assert c.login(ALICE, PASSWORD)[0] == "OK"
    c.logout()


def test_login_with_literals_and_case(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        user, password = ALICE.upper().encode(), PASSWORD.encode()
        c.send(b"a LOGIN {%d}\r\n" % len(user))
        assert c.readline().startswith(b"+")
        c.send(user + b" {%d+}\r\n" % len(password) + password + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a OK")


def test_login_with_utf8_password(imap: ImapEnv) -> None:
    """RFC 9051 9: a quoted string may hold UTF-8; so may a literal."""
    password = "p\u00e4ss w\u00f6rd \u65e5\u672c"
    imap.server.add_account("carol@example.test", password)
    with wire(imap, login=False) as c:
        reply = c.cmd("a", f'LOGIN carol@example.test "{password}"'.encode())
        assert last(reply).startswith(b"a OK")
    with wire(imap, login=False) as c:
        raw = password.encode()
        reply = c.cmd("a", b"LOGIN carol@example.test {%d+}\r\n" % len(raw) + raw)
        assert last(reply).startswith(b"a OK")
    with wire(imap, login=False) as c:
        reply = c.cmd("a", b"AUTHENTICATE PLAIN " + plain("carol@example.test", password))
        assert last(reply).startswith(b"a OK")


def test_login_missing_argument_is_bad(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        assert last(c.cmd("a", f"LOGIN {ALICE}")).startswith(b"a BAD")
        assert last(c.cmd("b", "LOGIN")).startswith(b"b BAD")


# ----- AUTHENTICATE -------------------------------------------------------------------------


def test_authenticate_plain_with_imaplib(imap: ImapEnv) -> None:
    c = imap.client(login=False)
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
    assert typ == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()


def test_authenticate_plain_without_initial_response(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.readline() == b"+ \r\n"
        c.send(plain() + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a OK [CAPABILITY ")
        assert last(c.cmd("b", "SELECT INBOX")).startswith(b"b OK")


def test_authenticate_plain_with_sasl_ir(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", b"AUTHENTICATE PLAIN " + plain())
        assert len(reply) == 1
        assert reply[0].startswith(b"a OK")
        assert last(c.cmd("b", "SELECT INBOX")).startswith(b"b OK")


def test_authenticate_plain_empty_initial_response(imap: ImapEnv) -> None:
    """RFC 4959 3: "=" is an empty initial response; PLAIN then asks for the message."""
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE PLAIN =\r\n")
        assert c.readline() == b"+ \r\n"
        c.send(plain() + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a OK")


def test_authenticate_plain_authzid(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", b"AUTHENTICATE PLAIN " + plain(authzid="bob@example.test"))
        assert last(reply).startswith(b"a NO [AUTHORIZATIONFAILED]")
        reply = c.cmd("b", b"AUTHENTICATE PLAIN " + plain(authzid=ALICE))
        assert last(reply).startswith(b"b OK")


def test_authenticate_plain_wrong_password(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", b"AUTHENTICATE PLAIN " + plain(password="nope"))
        assert last(reply).startswith(b"a NO [AUTHENTICATIONFAILED]")
        c.send(b"b AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith(b"+")
        c.send(plain(password="nope") + b"\r\n")
        assert last(c.until_tagged("b")).startswith(b"b NO [AUTHENTICATIONFAILED]")
        assert last(c.cmd("c", b"AUTHENTICATE PLAIN " + plain())).startswith(b"c OK")


def test_authenticate_login_without_initial_response(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE LOGIN\r\n")
        assert c.readline() == b"+ " + b64(b"Username:") + b"\r\n"
        c.send(b64(ALICE.encode()) + b"\r\n")
        assert c.readline() == b"+ " + b64(b"Password:") + b"\r\n"
        c.send(b64(PASSWORD.encode()) + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a OK")


def test_authenticate_login_with_initial_response(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE LOGIN " + b64(ALICE.encode()) + b"\r\n")
        assert c.readline() == b"+ " + b64(b"Password:") + b"\r\n"
        c.send(b64(PASSWORD.encode()) + b"\r\n")
        assert last(c.until_tagged("a")).startswith(b"a OK")


def test_authenticate_cancel(imap: ImapEnv) -> None:
    """RFC 9051 6.2.2: "*" cancels the exchange and the server answers BAD."""
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"*\r\n")
        assert last(c.until_tagged("a")).startswith(b"a BAD")
        c.send(b"b AUTHENTICATE LOGIN\r\n")
        assert c.readline().startswith(b"+")
        c.send(b64(ALICE.encode()) + b"\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"*\r\n")
        assert last(c.until_tagged("b")).startswith(b"b BAD")
        # Not authenticated, still usable.
        assert last(c.cmd("c", "SELECT INBOX")).startswith(b"c BAD")
        c.login()


def test_authenticate_bad_base64(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        c.send(b"a AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith(b"+")
        c.send(b"!!!not base64!!!\r\n")
        assert last(c.until_tagged("a")).startswith(b"a BAD")
        assert last(c.cmd("b", "AUTHENTICATE PLAIN ***")).startswith(b"b BAD")
        # Base64 of a PLAIN message without its NULs.
        assert last(c.cmd("c", b"AUTHENTICATE PLAIN " + b64(b"garbage"))).startswith(b"c BAD")
        c.login()


def test_authenticate_unknown_mechanism(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", "AUTHENTICATE CRAM-MD5")
        assert len(reply) == 1
        assert reply[0].startswith(b"a NO")
        assert last(c.cmd("b", "AUTHENTICATE XOAUTH2 dGVzdA==")).startswith(b"b NO")
        c.login()


def test_authenticate_mechanism_is_case_insensitive(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        assert last(c.cmd("a", b"AUTHENTICATE plain " + plain())).startswith(b"a OK")


def test_authenticate_on_tls(imap: ImapEnv) -> None:
    with wire(imap, login=False, tls=True) as c:
        assert last(c.cmd("a", b"AUTHENTICATE PLAIN " + plain())).startswith(b"a OK")


# ----- states -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    "SELECT INBOX", "EXAMINE INBOX", "CREATE foo", "DELETE foo", "RENAME a b", "SUBSCRIBE a",
    "UNSUBSCRIBE a", 'LIST "" "*"', 'LSUB "" "*"', "NAMESPACE", "STATUS INBOX (MESSAGES)",
    "ENABLE UTF8=ACCEPT", "IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "FETCH 1 FLAGS",
    "SEARCH ALL", "STORE 1 +FLAGS (\\Seen)", "COPY 1 Trash", "MOVE 1 Trash", "UID FETCH 1 FLAGS",
])
def test_commands_before_login_are_bad(imap: ImapEnv, command: str) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", command)
        single(reply, b"a BAD")
        assert last(c.cmd("b", "NOOP")).startswith(b"b OK")


def test_append_before_login_is_bad_and_sends_no_continuation(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        reply = c.cmd("a", "APPEND INBOX {10}")
        single(reply, b"a BAD")
        assert last(c.cmd("b", "NOOP")).startswith(b"b OK")
        c.send(b"c APPEND INBOX {10+}\r\n0123456789\r\n")
        assert last(c.until_tagged("c")).startswith(b"c BAD")
        # Over APPENDLIMIT too: the state is what is wrong.
        single(c.cmd("c2", "APPEND INBOX {4294967296}"), b"c2 BAD")
        reply = c.cmd("d", "NOOP")
        single(reply, b"d OK")


@pytest.mark.parametrize("command", [
    f'LOGIN {ALICE} "{PASSWORD}"', "AUTHENTICATE PLAIN", "STARTTLS", "CHECK", "CLOSE",
    "UNSELECT", "EXPUNGE", "FETCH 1 FLAGS", "SEARCH ALL", "STORE 1 +FLAGS (\\Seen)",
    "COPY 1 Trash", "UID SEARCH ALL",
])
def test_commands_in_authenticated_state_are_bad(imap: ImapEnv, command: str) -> None:
    with wire(imap) as c:
        reply = c.cmd("a", command)
        single(reply, b"a BAD")
        assert last(c.cmd("b", "NOOP")).startswith(b"b OK")


@pytest.mark.parametrize("command", [
    f'LOGIN {ALICE} "{PASSWORD}"', "AUTHENTICATE PLAIN", "STARTTLS", "ENABLE UTF8=ACCEPT",
])
def test_commands_in_selected_state_are_bad(imap: ImapEnv, command: str) -> None:
    with wire(imap) as c:
        assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
        reply = c.cmd("a", command)
        single(reply, b"a BAD")
        assert last(c.cmd("b", "NOOP")).startswith(b"b OK")


@pytest.mark.parametrize("login", [False, True])
def test_logout_says_bye_then_ok(imap: ImapEnv, login: bool) -> None:
    with wire(imap, login=login) as c:
        if login:
            c.cmd("s", "SELECT INBOX")
        reply = c.cmd("a", "LOGOUT")
        assert len(reply) == 2
        assert reply[0].startswith(b"* BYE ")
        assert reply[1].startswith(b"a OK")
        assert c.at_eof()


def test_logout_with_imaplib(imap: ImapEnv) -> None:
    c = imap.client()
    typ, _data = c.logout()
    assert typ == "BYE"


def test_noop_and_capability_in_every_state(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        for state in ("not authenticated", "authenticated", "selected"):
            if state == "authenticated":
                c.login()
            if state == "selected":
                assert last(c.cmd("s", "SELECT INBOX")).startswith(b"s OK")
            assert last(c.cmd("n", "NOOP")).startswith(b"n OK"), state
            reply = c.cmd("c", "CAPABILITY")
            assert reply[0].startswith(b"* CAPABILITY IMAP4rev1 IMAP4rev2"), state
            assert last(reply).startswith(b"c OK"), state


def test_tls_handshake_garbage_closes(imap: ImapEnv) -> None:
    with wire(imap, login=False) as c:
        assert last(c.cmd("a", "STARTTLS")).startswith(b"a OK")
        c.send(b"this is not a TLS client hello\r\n" * 4)
        c.sock.settimeout(10)
        try:
            data = c.sock.recv(1024)
            while data:
                data = c.sock.recv(1024)
        except (TimeoutError, ConnectionError):
            pass
    # The server is still fine.
    with wire(imap) as c2:
        assert last(c2.cmd("a", "NOOP")).startswith(b"a OK")
