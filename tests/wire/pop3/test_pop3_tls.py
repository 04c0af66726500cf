"""STLS (RFC 2595 4) and implicit TLS (RFC 8314 3.3) with the server's own certificate."""

from __future__ import annotations

import poplib
import ssl

import pytest
from pop3_wire import ALICE, PASSWORD, Pop3Env, ServerFactory, make_env, message

NO_PLAINTEXT = {"MAILWRIGHT_AUTH_ALLOW_PLAINTEXT_LOOPBACK": "false"}


def test_stls_then_login(server_factory: ServerFactory) -> None:
    env = make_env(server_factory, NO_PLAINTEXT)
    env.deliver(message(1))
    client = env.pop()
    try:
        client.stls(context=env.server.ssl_context)
        caps = client.capa()
        assert "STLS" not in caps  # RFC 2595 4: not once TLS is active
        assert "USER" in caps
        client.user(ALICE)
        client.pass_(PASSWORD)
        _, lines, _ = client.retr(1)
        assert b"Subject: message 1" in lines
    finally:
        client.quit()


def test_pop3s_implicit_tls(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    client = poplib.POP3_SSL(
        pop3.server.host, pop3.server.port("pop3s"), context=pop3.server.ssl_context, timeout=10
    )
    try:
        assert client.getwelcome().startswith(b"+OK mail.example.test")
        assert "STLS" not in client.capa()
        client.user(ALICE)
        client.pass_(PASSWORD)
        assert client.stat()[0] == 1
        with pytest.raises(poplib.error_proto, match=r"Already authenticated|STLS"):
            client._shortcmd("STLS")
    finally:
        client.quit()


def test_stls_twice_is_refused(pop3: Pop3Env) -> None:
    client = pop3.pop()
    try:
        client.stls(context=pop3.server.ssl_context)
        with pytest.raises(poplib.error_proto, match="Already using TLS"):
            client._shortcmd("STLS")
    finally:
        client.quit()


def test_stls_discards_pipelined_plaintext(pop3: Pop3Env) -> None:
    """CVE-2011-0411: commands sent with STLS must not run inside the TLS session."""
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(f"STLS\r\nUSER {ALICE}\r\nPASS {PASSWORD}\r\n".encode())
        assert raw.line().startswith(b"+OK Begin TLS")
        raw.file.close()
        tls = pop3.server.ssl_context.wrap_socket(raw.sock, server_hostname=pop3.server.host)
        file = tls.makefile("rb")
        try:
            tls.sendall(b"STAT\r\n")
            # Had USER/PASS been kept, STAT would answer +OK; it must say "not authenticated".
            assert file.readline().startswith(b"-ERR Not authenticated")
            tls.sendall(b"QUIT\r\n")
            assert file.readline().startswith(b"+OK")
        finally:
            file.close()
            tls.close()
    finally:
        raw.close()


def test_failed_handshake_closes_only_that_connection(pop3: Pop3Env) -> None:
    raw = pop3.raw()
    try:
        assert raw.line().startswith(b"+OK")
        raw.send(b"STLS\r\n")
        assert raw.line().startswith(b"+OK Begin TLS")
        raw.send(b"this is not a TLS client hello\r\n" * 10)
        assert raw.at_eof()
    finally:
        raw.close()
    client = pop3.login()
    client.quit()


def test_untrusted_client_context_fails_handshake(pop3: Pop3Env) -> None:
    ctx = ssl.create_default_context()  # does not trust the self-signed certificate
    with pytest.raises(ssl.SSLError):
        poplib.POP3_SSL(pop3.server.host, pop3.server.port("pop3s"), context=ctx, timeout=10)
    pop3.login().quit()
