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
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
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
    """A server-side context with Python's secure defaults and TLS 1.2 as the floor.

    Raises ConfigError (one line) when the files are missing, unreadable, invalid or do not match.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = MINIMUM_VERSION
    # Mail clients do not present certificates; asking would only slow the handshake.
    ctx.verify_mode = ssl.CERT_NONE
    ctx.options |= ssl.OP_NO_COMPRESSION  # CRIME
    try:
        ctx.load_cert_chain(cert_path, key_path)
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
    return ctx


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
