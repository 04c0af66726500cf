"""TLS policy on every listener (issue 6) and certificate reload on SIGHUP.

Refusals are checked twice: our server refuses the client, and the same client completes a
handshake with a permissive context over a socket pair, so the refusal is our policy and not
the client's own OpenSSL refusing to try. The reload runs `mailwright serve` in a process (a
signal needs one) and waits for its own log line, not for a time.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import cli, serve_env, start

from mailwright.net.tls import TLS12_CIPHERS, client_context, write_self_signed

RunningServer = Any  # tests/conftest.py's RunningServer
IMPLICIT = ("submissions", "imaps", "pop3s")
# Both offered in this order; the server's order puts AES-GCM first.
CLIENT_PREFERS_CHACHA = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
CBC_ONLY = (
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES128-SHA256:AES128-SHA"
)
RSA_KEY_EXCHANGE = "AES128-GCM-SHA256:AES256-GCM-SHA384"
# How a refusal looks to the client: the server's alert, or (uvloop closes the transport
# without flushing it) the end of the stream. Never a client-side "no protocols/ciphers".
REFUSED = {"TLSV1_ALERT_PROTOCOL_VERSION", "SSLV3_ALERT_HANDSHAKE_FAILURE",
           "UNEXPECTED_EOF_WHILE_READING"}


def raw_client(version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    """A client that tries what it is told to (no verification: only the handshake counts)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        with warnings.catch_warnings():  # TLSVersion.TLSv1_1 is deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def tls11_client() -> ssl.SSLContext:
    # OpenSSL 3 allows TLS 1.1 only at security level 0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return raw_client(ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0")


def handshake(server: RunningServer, listener: str, client: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection((server.host, server.port(listener)), timeout=10)
    try:
        return client.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


def permissive_handshake(cert: Path, key: Path, client: ssl.SSLContext) -> str:
    """The TLS version `client` gets from a server context that allows anything."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("ALL:@SECLEVEL=0")
    server_ctx.load_cert_chain(cert, key)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        thread = threading.Thread(
            target=lambda: server_ctx.wrap_socket(ours, server_side=True).close(), daemon=True
        )
        thread.start()
        with client.wrap_socket(theirs) as tls:
            version = tls.version()
        thread.join(10)
    assert version is not None
    return version


# ----- policy ------------------------------------------------------------------------------------
def test_server_context_allows_only_ecdhe_aead_and_tls_1_2_up(server: RunningServer) -> None:
    ctx = server.server.services.tls
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    for flag in (ssl.OP_NO_COMPRESSION, ssl.OP_CIPHER_SERVER_PREFERENCE,
                 ssl.OP_NO_RENEGOTIATION):
        assert ctx.options & flag
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert [c["name"] for c in tls12] == TLS12_CIPHERS.split(":")
    assert all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12)


@pytest.mark.parametrize("listener", IMPLICIT)
def test_tls_1_1_client_is_refused(server: RunningServer, listener: str) -> None:
    with pytest.raises(ssl.SSLError) as info:
        handshake(server, listener, tls11_client()).close()
    assert info.value.reason in REFUSED
    assert permissive_handshake(server.config.cert_path, server.config.key_path,
                                tls11_client()) == "TLSv1.1"


@pytest.mark.parametrize("ciphers", [CBC_ONLY, RSA_KEY_EXCHANGE], ids=["cbc", "rsa-kx"])
@pytest.mark.parametrize("listener", IMPLICIT)
def test_tls_1_2_client_without_ecdhe_aead_is_refused(
    server: RunningServer, listener: str, ciphers: str
) -> None:
    client = raw_client(ssl.TLSVersion.TLSv1_2, ciphers)
    with pytest.raises(ssl.SSLError) as info:
        handshake(server, listener, client).close()
    assert info.value.reason in REFUSED  # no suite in common
    if ciphers == CBC_ONLY:  # (our certificate is ECDSA: RSA key exchange can never work)
        assert permissive_handshake(server.config.cert_path, server.config.key_path,
                                    client) == "TLSv1.2"


@pytest.mark.parametrize("listener", IMPLICIT)
def test_tls_1_2_uses_the_servers_cipher_order(server: RunningServer, listener: str) -> None:
    with handshake(server, listener, raw_client(ssl.TLSVersion.TLSv1_2,
                                                CLIENT_PREFERS_CHACHA)) as tls:
        assert tls.version() == "TLSv1.2"
        assert tls.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        assert tls.compression() is None


def test_tls_1_2_client_with_starttls_gets_an_aead_suite(server: RunningServer) -> None:
    client = client_context(server.config.cert_path)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as smtp:
        smtp.starttls(context=client)
        assert isinstance(smtp.sock, ssl.SSLSocket)
        assert smtp.sock.cipher()[0] in TLS12_CIPHERS.split(":")
        assert smtp.noop()[0] == 250


# ----- a good client on every TLS listener --------------------------------------------------------
def _tls_of(sock: socket.socket) -> tuple[str | None, str]:
    assert isinstance(sock, ssl.SSLSocket)
    return sock.version(), sock.cipher()[0]


def test_good_client_works_on_every_listener(server: RunningServer) -> None:
    ctx = server.ssl_context  # verifies the certificate and the name
    seen: dict[str, tuple[str | None, str]] = {}
    with smtplib.SMTP_SSL(server.host, server.port("submissions"), context=ctx,
                          timeout=10) as smtps:
        assert smtps.noop()[0] == 250
        seen["submissions"] = _tls_of(smtps.sock)
    for listener in ("smtp", "submission"):
        with smtplib.SMTP(server.host, server.port(listener), timeout=10) as smtp:
            assert smtp.starttls(context=ctx)[0] == 220
            assert smtp.ehlo()[0] == 250
            seen[listener] = _tls_of(smtp.sock)
    imaps = imaplib.IMAP4_SSL(server.host, server.port("imaps"), ssl_context=ctx, timeout=10)
    assert imaps.noop()[0] == "OK"
    seen["imaps"] = _tls_of(imaps.sock)
    imaps.logout()
    imap = imaplib.IMAP4(server.host, server.port("imap"), timeout=10)
    assert imap.starttls(ssl_context=ctx)[0] == "OK"
    assert imap.noop()[0] == "OK"
    seen["imap"] = _tls_of(imap.sock)
    imap.logout()
    pop3s = poplib.POP3_SSL(server.host, server.port("pop3s"), context=ctx, timeout=10)
    assert pop3s.capa()
    seen["pop3s"] = _tls_of(pop3s.sock)
    pop3s.quit()
    pop3 = poplib.POP3(server.host, server.port("pop3"), timeout=10)
    assert pop3.stls(context=ctx).startswith(b"+OK")
    assert pop3.capa()
    seen["pop3"] = _tls_of(pop3.sock)
    pop3.quit()
    assert set(seen) == {"submissions", "smtp", "submission", "imaps", "imap", "pop3s", "pop3"}
    assert all(version == "TLSv1.3" for version, _cipher in seen.values())


# ----- reload -------------------------------------------------------------------------------------
def peer_certificate(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, raw_client(
    ).wrap_socket(sock) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def pem_to_der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def wait_for_line(log: Path, text: str, after: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the server's stderr, past offset `after`, holds `text` (its own signal)."""
    deadline = time.monotonic() + 20
    while text.encode() not in log.read_bytes()[after:]:
        assert proc.poll() is None, "server exited"
        assert time.monotonic() < deadline, f"no {text!r} in the server log"
        time.sleep(0.02)


@contextlib.contextmanager
def serving(data: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int]]]:
    proc, ports = start(data, serve_env("imaps", "pop3s"), log=log)
    try:
        yield proc, ports
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


def test_sighup_reloads_the_certificate_without_dropping_sessions(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    cli(data, "domain", "add", "example.test")
    cli(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw-alice\n")
    with serving(data, log) as (proc, ports):
        cert, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"
        first = pem_to_der(cert)
        assert peer_certificate(ports["imaps"]) == first
        before = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"],
                                   ssl_context=client_context(cert), timeout=10)
        before.login("alice@example.test", "pw-alice")
        before.select("INBOX")

        write_self_signed(cert, key, "mx.example.test")  # a renewed pair
        second = pem_to_der(cert)
        assert second != first
        offset = log.stat().st_size
        proc.send_signal(signal.SIGHUP)
        wait_for_line(log, "TLS certificate reloaded", offset, proc)

        assert before.noop()[0] == "OK"  # the session from before lives on, on the old pair
        assert before.select("INBOX")[0] == "OK"
        assert isinstance(before.sock, ssl.SSLSocket)
        assert before.sock.getpeercert(binary_form=True) == first
        for listener in ("imaps", "pop3s"):
            assert peer_certificate(ports[listener]) == second
        after = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"],
                                  ssl_context=client_context(cert), timeout=10)
        assert after.login("alice@example.test", "pw-alice")[0] == "OK"
        after.logout()

        # A broken file: logged, and the pair that works keeps serving.
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
        offset = log.stat().st_size
        proc.send_signal(signal.SIGHUP)
        wait_for_line(log, "TLS reload failed", offset, proc)
        assert peer_certificate(ports["imaps"]) == second
        assert before.noop()[0] == "OK"
        before.logout()


def test_reload_with_a_mismatched_key_keeps_the_old_pair(
    server: RunningServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In process: the key of another pair must not half-replace the live one."""
    port = server.port("imaps")
    old = peer_certificate(port)
    write_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", "other.example")
    server.config.key_path.write_bytes((tmp_path / "key.pem").read_bytes())
    with caplog.at_level(logging.ERROR, logger="mailwright.server"):
        assert server.call(server.server.reload_tls) is False
    assert any("TLS reload failed" in r.getMessage() for r in caplog.records)
    assert peer_certificate(port) == old  # and handshakes still work: the old key is there
    with smtplib.SMTP_SSL(server.host, server.port("submissions"), context=server.ssl_context,
                          timeout=10) as smtps:
        assert smtps.noop()[0] == 250
