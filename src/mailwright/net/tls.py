"""TLS for every listener: the server's certificate and its `ssl.SSLContext`.

Invariants:
- A fresh install works without any PKI: when the configuration names no certificate, a
  self-signed one is made on first run under `<data>/tls/` (ECDSA P-256, valid for the
  configured hostname, localhost, 127.0.0.1 and ::1) and reused on every later start.
- The private key is created with mode 0600 before a single byte of it is written, so it is never
  readable by others, not even for an instant.
- A certificate or key that the operator named but that cannot be read or does not match is a
  `ConfigError` with a one-line reason: the server refuses to start instead of serving without
  TLS (RFC 8314 4.1: implicit-TLS ports must not fall back to plaintext).
- Every server context has one policy (RFC 9325, BCP 195): TLS 1.2 or later; for TLS 1.2 only
  ECDHE key exchange with an AEAD cipher (no RSA key exchange, no CBC, no SHA-1 MAC); the
  server's cipher order; no compression (CRIME); no renegotiation (a client-driven CPU cost,
  and the pre-RFC 5746 injection attack).
- A reload (SIGHUP) changes the live contexts only when the new pair loads completely: a bad
  file leaves the old certificate serving. Sessions already up keep theirs (OpenSSL copies the
  certificate into each connection); only new handshakes see the new one.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailwright.config import Config, ConfigError

# Ten years: a self-signed certificate is trusted by pinning, not by its dates, and an expired
# one would break clients that pinned it on a server nobody remembered to renew.
SELF_SIGNED_VALIDITY: Final = datetime.timedelta(days=3650)
# RFC 8996 deprecates TLS 1.0 and 1.1; RFC 8314 4.1 asks for TLS 1.2 or later.
MINIMUM_VERSION: Final = ssl.TLSVersion.TLSv1_2
# TLS 1.2 suites: Mozilla's "intermediate" list without DHE (RFC 9325 4.2: ECDHE with AES-GCM
# or ChaCha20-Poly1305), ECDSA first as our self-signed certificate is ECDSA. TLS 1.3 suites
# are all AEAD; OpenSSL's defaults stand.
TLS12_CIPHERS: Final = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
SERVER_OPTIONS: Final = (
    ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
)


def ensure_certificate(config: Config) -> bool:
    """Create the self-signed pair if the configuration names none and none exists yet.

    Returns True when a new certificate was made (the server logs it once).
    """
    if config.tls.cert or config.tls.key:
        return False  # the operator's own files: never overwrite or invent them
    cert_path, key_path = config.cert_path, config.key_path
    if cert_path.exists() and key_path.exists():
        return False
    write_self_signed(cert_path, key_path, config.hostname)
    return True


def write_self_signed(cert_path: Path, key_path: Path, hostname: str) -> None:
    """Write a new ECDSA P-256 key (mode 0600) and a self-signed certificate for `hostname`."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for dns in dict.fromkeys([hostname, "localhost"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(dns)))
        except ValueError:
            names.append(x509.DNSName(dns))
    names += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # An hour of slack for clients whose clocks run a little behind ours.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + SELF_SIGNED_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # CA:TRUE so that clients can pin this certificate as their trust anchor (cafile=...).
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert_pem, 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Temp file created with its final mode, fsynced, renamed: no torn or world-readable key."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server-side context with our TLS policy (module docstring) and this pair loaded.

    Raises ConfigError (one line) when the files are missing, unreadable, invalid or do not match.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MINIMUM_VERSION
    # Mail clients do not present certificates; asking would only slow the handshake.
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= SERVER_OPTIONS
    _load_pair(ctx, cert_path, key_path, cert_path, key_path)
    return ctx


def _load_pair(
    ctx: ssl.SSLContext, cert: Path | str, key: Path | str, cert_path: Path, key_path: Path
) -> None:
    """load_cert_chain with one-line ConfigErrors naming the operator's files."""
    try:
        ctx.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS: cannot read {exc.filename or cert_path}: file not found") from None
    except PermissionError as exc:
        raise ConfigError(
            f"TLS: cannot read {exc.filename or cert_path}: permission denied"
        ) from None
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise ConfigError(
            f"TLS: invalid certificate {cert_path} or key {key_path}: {reason}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"TLS: cannot read {cert_path}: {exc.strerror or exc}") from None


def reload_certificate(
    contexts: Sequence[ssl.SSLContext], cert_path: Path, key_path: Path
) -> None:
    """Load the pair again into live contexts (SIGHUP); new handshakes get it.

    All or nothing: the files are read once and tried on a scratch context first, because a
    half-failed load_cert_chain on a live context can leave it with a certificate whose key
    is gone. ConfigError (one line) when they do not load; the contexts are then unchanged.
    """
    try:
        cert, key = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"TLS: cannot read {exc.filename or cert_path}: {exc.strerror or exc}"
        ) from None
    # The same bytes for the trial and the real loads, even if the files change meanwhile
    # (an ACME client rewriting them).
    with _private_files(cert, key) as (cert_copy, key_copy):
        _load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert_copy, key_copy,
                   cert_path, key_path)
        for ctx in contexts:
            _load_pair(ctx, cert_copy, key_copy, cert_path, key_path)


@contextlib.contextmanager
def _private_files(*contents: bytes) -> Iterator[list[str]]:
    """Paths holding `contents` for OpenSSL to open: anonymous memory files on Linux (the
    key never touches a disk), else files in a fresh 0700 directory, removed after."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create("mailwright-tls", os.MFD_CLOEXEC) for _ in contents]
        try:
            for fd, data in zip(fds, contents, strict=True):
                with open(fd, "wb", closefd=False) as file:  # writes it all
                    file.write(data)
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="mailwright-tls-") as directory:
        paths = [Path(directory) / str(index) for index in range(len(contents))]
        for path, data in zip(paths, contents, strict=True):
            _write_atomic(path, data, 0o600)
        yield [str(path) for path in paths]


def load_server_context(config: Config) -> ssl.SSLContext:
    """Make the self-signed pair if needed, then load it (or the operator's) into a context."""
    try:
        ensure_certificate(config)
    except OSError as exc:
        raise ConfigError(
            f"TLS: cannot create a certificate under {config.cert_path.parent}: "
            f"{exc.strerror or exc}"
        ) from None
    return server_context(config.cert_path, config.key_path)


def client_context(cert_path: Path) -> ssl.SSLContext:
    """A client context that trusts exactly this server's certificate (tests, bench, examples)."""
    ctx = ssl.create_default_context(cafile=str(cert_path))
    ctx.minimum_version = MINIMUM_VERSION
    return ctx
