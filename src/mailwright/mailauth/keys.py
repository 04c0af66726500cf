"""DKIM signing keys on disk: `<data>/dkim/<domain>/<selector>.<algorithm>.pem`.

Invariants:
- A key file is complete or absent: it is written to a temporary name in the same directory,
  fsynced, then linked to its final name (which fails rather than overwrite an existing key,
  so a second `generate` can never replace a published key), and the directory is fsynced.
- Private keys are readable by their owner only (0600, directories 0700).
- One key per (domain, selector): the DNS name `<selector>._domainkey.<domain>` holds one
  TXT record, and a verifier may pick any one record at that name (RFC 6376 3.6.2.2), so two
  keys under one selector would make half the signatures fail.
- This module knows files and DNS record text; the signer (dkim_sign.py) and the CLI use it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

Algorithm = Literal["ed25519", "rsa"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)
# RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits and SHOULD use 2048; 2048 is
# also the largest whose TXT record every DNS hosting panel takes (about 400 characters).
RSA_BITS: Final = 2048
# RFC 6376 3.1: selector = sub-domain *( "." sub-domain ); we keep to LDH labels.
_LABEL: Final = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_KEY_FILE: Final = re.compile(r"(?P<selector>[a-z0-9.-]+)\.(?P<algorithm>ed25519|rsa)\.pem")


class DkimKeyError(Exception):
    """A key operation refused (bad name, key exists, unreadable file); str() is one line."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str  # lower-case A-labels, no trailing dot
    selector: str
    algorithm: Algorithm
    path: Path

    @property
    def signature_algorithm(self) -> bytes:
        """The a= tag value (RFC 6376 3.3, RFC 8463 3)."""
        return b"ed25519-sha256" if self.algorithm == "ed25519" else b"rsa-sha256"

    @property
    def record_name(self) -> str:
        """Where the public key is published (RFC 6376 3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # without the trailing dot
    value: str  # the TXT text as one string

    def zone_line(self, ttl: int = 3600) -> str:
        """A zone-file line; the text is cut into quoted strings of at most 255 octets
        (RFC 1035 3.3.14: a TXT character-string holds 255; RFC 6376 3.6.2.2 concatenates)."""
        chunks = [self.value[i : i + 255] for i in range(0, len(self.value), 255)]
        quoted = " ".join(f'"{chunk}"' for chunk in chunks)
        return f"{self.name}. {ttl} IN TXT {quoted}"


def normalize_domain(domain: str) -> str:
    """Lower-case A-label form of a domain (IDNA), or DkimKeyError when it is not a host name."""
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise DkimKeyError(f"invalid domain {domain!r}") from None
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise DkimKeyError(f"invalid domain {domain!r}")
    return name


def check_selector(selector: str) -> str:
    """The selector, lower-cased, or DkimKeyError (RFC 6376 3.1 syntax, LDH labels)."""
    name = selector.strip().lower()
    if not name or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise DkimKeyError(f"invalid selector {selector!r} (letters, digits, '-' and '.')")
    return name


def key_path(keys_dir: Path, domain: str, selector: str, algorithm: Algorithm) -> Path:
    return keys_dir / domain / f"{selector}.{algorithm}.pem"


def _private_pem(algorithm: Algorithm) -> bytes:
    if algorithm == "ed25519":
        # Ed25519 keys have one PEM form: PKCS#8.
        return ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    # PKCS#1 ("RSA PRIVATE KEY"), the form OpenDKIM and dkimpy's own tools write.
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key(keys_dir: Path, domain: str, selector: str, algorithm: Algorithm) -> DkimKey:
    """Make a new key and store it; DkimKeyError if the selector already has a key."""
    domain = normalize_domain(domain)
    selector = check_selector(selector)
    existing = [key for key in list_keys(keys_dir, domain) if key.selector == selector]
    if existing:
        raise DkimKeyError(
            f"{domain} already has a key with selector {selector} ({existing[0].path}); "
            "choose another selector"
        )
    directory = keys_dir / domain
    for path in (keys_dir, directory):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = key_path(keys_dir, domain, selector, algorithm)
    pem = _private_pem(algorithm)
    # mkstemp creates the file 0600, so the key is never readable by others, not even briefly.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        try:
            # link(2), not rename(2): an existing name makes it fail instead of replacing it.
            os.link(tmp_name, final)
        except FileExistsError:
            raise DkimKeyError(f"{final} already exists") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    _fsync_dir(directory)
    return DkimKey(domain, selector, algorithm, final)


def _domain_keys(directory: Path, domain: str) -> Iterator[DkimKey]:
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        match = _KEY_FILE.fullmatch(name)
        if match:
            algorithm: Algorithm = "ed25519" if match["algorithm"] == "ed25519" else "rsa"
            yield DkimKey(domain, match["selector"], algorithm, directory / name)


def list_keys(keys_dir: Path, domain: str | None = None) -> list[DkimKey]:
    """Keys on disk (of one domain, or all), sorted by domain then selector."""
    if domain is not None:
        return list(_domain_keys(keys_dir / domain, domain))
    try:
        domains = sorted(os.listdir(keys_dir))
    except FileNotFoundError:
        return []
    return [key for name in domains for key in _domain_keys(keys_dir / name, name)]


PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def load_private_key(key: DkimKey) -> PrivateKey:
    """The key file's private key (cryptography), of the algorithm its name says."""
    try:
        private = serialization.load_pem_private_key(key.path.read_bytes(), password=None)
    except OSError as exc:
        raise DkimKeyError(f"cannot read {key.path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise DkimKeyError(f"{key.path} is not a usable private key: {exc}") from None
    wanted = ed25519.Ed25519PrivateKey if key.algorithm == "ed25519" else rsa.RSAPrivateKey
    if not isinstance(private, wanted):
        raise DkimKeyError(f"{key.path} does not hold an {key.algorithm} key")
    return private


def dns_record(key: DkimKey) -> DnsRecord:
    """The TXT record to publish for `key` (RFC 6376 3.6.1).

    p= is the SubjectPublicKeyInfo DER for RSA (RFC 6376 3.6.1), and the bare 32-octet public
    key for Ed25519 (RFC 8463 4.2).
    """
    public = load_private_key(key).public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    p = base64.b64encode(der).decode("ascii")
    return DnsRecord(key.record_name, f"v=DKIM1; k={key.algorithm}; p={p}")
