"""DKIM-sign outbound mail (RFC 6376) with every key of the author's domain (RFC 8463 dual).

Why our own signer rather than dkimpy's `DKIM.sign()`: dkimpy does the RSA private-key
operation in pure Python (about 9-15 ms per message with a 2048-bit key, holding the GIL, so
the queue's signing threads run one at a time), and it has no hook for another back end: its
`gen_header()` calls a module-level RSASSA function inline, so using `cryptography` there would
mean patching dkimpy globally. Signing with one canonicalization is small: parse the header
fields, relaxed header and body canonicalization (3.4.2, 3.4.4), bh= (3.7), the selected
fields plus our own field with an empty b= hashed (3.7, 5.4), signed by `cryptography`
(OpenSSL, for rsa-sha256 and ed25519-sha256 alike). The output is byte for byte what dkimpy
1.1 writes (same tags, order and folding); the tests compare it with dkimpy's and verify it
with dkimpy.

Why the key cache works the way it does: `mailwright dkim generate` runs in another process
while the server runs, and its new key must sign the very next message, without a restart and
without re-reading key files for every message. The signer keeps each domain's parsed keys
with the mtime of `<data>/dkim/<domain>/`; a key made or removed changes that mtime (the CLI
links the file into place), so one stat(2) per message tells whether the cache still holds.
An mtime younger than RACY_WINDOW_NS is not trusted alone (a second change within the file
system's timestamp granularity would leave it equal, the "racy git" problem): the names and
inodes of the key files are compared too until it is older.

Invariants:
- sign() never raises for a bad message or a bad key file: it logs and leaves that signature
  out, because an unsigned message delivered beats a message stuck in the queue.
- Signatures are relaxed/relaxed (RFC 6376 3.4: survives the header refolding and trailing
  whitespace changes relays make); From is signed once more than it occurs (RFC 6376 8.15),
  so no second From can be added without breaking the signature.
- The message is read as receivers (dkimpy) read it: CRLF or bare LF ends a line, a header
  line that is neither a field nor a continuation makes the message unsignable.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, utils

from mailwright.mailauth.keys import (
    DkimKey,
    DkimKeyError,
    PrivateKey,
    list_keys,
    load_private_key,
    normalize_domain,
)

log = logging.getLogger(__name__)

# RFC 6376 5.4.1 recommends signing the header fields that carry the message's meaning and
# origin; these are those of its list that mail user agents show or thread by.
SIGNED_HEADERS: Final = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"in-reply-to",
    b"references",
)
# RFC 6376 3.4.2 relaxed header and 3.4.4 relaxed body canonicalization.
CANONICALIZE: Final = (b"relaxed", b"relaxed")
# RFC 8301 3.2: signers MUST NOT use RSA keys shorter than 1024 bits (verifiers reject them).
MIN_RSA_BITS: Final = 1024
# Folded signature lines stay within 72 octets, as dkimpy folds them (RFC 5322 2.1.1: 78).
FOLD_WIDTH: Final = 72
# FAT has 2 s timestamps; ext4/xfs/btrfs tick in milliseconds. Within this much of the
# directory's mtime, a second change could leave the mtime unchanged.
RACY_WINDOW_NS: Final = 2_000_000_000

_Fingerprint = tuple[tuple[str, int], ...]


@dataclass(slots=True)
class _DomainKeys:
    mtime_ns: int
    fingerprint: _Fingerprint
    keys: tuple[tuple[DkimKey, PrivateKey], ...]


def signed_header_list(headers: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """h= for a message with these header fields: every present instance of SIGNED_HEADERS,
    plus one more From (signing an absent instance forbids adding one, RFC 6376 5.4.2)."""
    present = [name.lower() for name, _value in headers]
    names = [name for name in SIGNED_HEADERS for _ in range(present.count(name))]
    return [*names, b"from"]


class DkimSigner:
    """Signs with the keys under `keys_dir` (`<data>/dkim`); safe to call from any thread."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir
        self._cache: dict[str, _DomainKeys] = {}
        self._lock = threading.Lock()

    def sign(self, message: bytes, *, domain: str, now: float | None = None) -> bytes:
        """DKIM-Signature header lines (CRLF) for every key of `domain`; b"" when it has none.

        `now` is the t= time (tests); the current time otherwise."""
        try:
            domain = normalize_domain(domain)
        except DkimKeyError:
            return b""
        keys = self._keys(domain)
        if not keys:
            return b""
        parsed = parse_message(message)
        if parsed is None:
            log.warning("DKIM: cannot sign a message for %s: malformed header section", domain)
            return b""
        headers, body = parsed
        include = signed_header_list(headers)
        selected = b"".join(relaxed_header(n, v) for n, v in select_headers(headers, include))
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        timestamp = int(time.time() if now is None else now)
        signatures: list[bytes] = []
        for key, private in keys:
            try:
                signatures.append(
                    _signature(key, private, domain, include, selected, body_hash, timestamp)
                )
            except (ValueError, TypeError) as exc:  # a key cryptography cannot sign with
                log.warning("DKIM: %s selector %s did not sign: %s", domain, key.selector, exc)
        return b"".join(signatures)

    def _keys(self, domain: str) -> tuple[tuple[DkimKey, PrivateKey], ...]:
        directory = self.keys_dir / domain
        try:
            mtime_ns = os.stat(directory).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            with self._lock:
                self._cache.pop(domain, None)
            return ()
        with self._lock:
            cached = self._cache.get(domain)
            if (
                cached is not None
                and cached.mtime_ns == mtime_ns
                and time.time_ns() - mtime_ns > RACY_WINDOW_NS
            ):
                return cached.keys
            found = list_keys(self.keys_dir, domain)
            fingerprint = _fingerprint(found)
            if cached is not None and cached.fingerprint == fingerprint:
                cached.mtime_ns = mtime_ns
                return cached.keys
            loaded = _load(found)
            self._cache[domain] = _DomainKeys(mtime_ns, fingerprint, loaded)
            return loaded


def _fingerprint(keys: Sequence[DkimKey]) -> _Fingerprint:
    """Names and inodes: a key replaced under the same name (mv) has a new inode."""
    result: list[tuple[str, int]] = []
    for key in keys:
        try:
            result.append((key.path.name, os.stat(key.path).st_ino))
        except FileNotFoundError:
            continue
    return tuple(result)


def _load(keys: Sequence[DkimKey]) -> tuple[tuple[DkimKey, PrivateKey], ...]:
    loaded: list[tuple[DkimKey, PrivateKey]] = []
    for key in keys:
        try:
            private = load_private_key(key)
        except DkimKeyError as exc:
            log.warning("DKIM: skipping a key: %s", exc)
            continue
        if not isinstance(private, ed25519.Ed25519PrivateKey) and (
            private.key_size < MIN_RSA_BITS
        ):
            log.warning("DKIM: skipping %s: %d-bit RSA is too short (RFC 8301)",
                        key.path, private.key_size)
            continue
        loaded.append((key, private))
    # A stable order: Ed25519 first, then RSA, each by selector.
    loaded.sort(key=lambda item: (item[0].algorithm != "ed25519", item[0].selector))
    return tuple(loaded)


# ----- RFC 6376 signing -------------------------------------------------------------------------
_FIELD_NAME: Final = re.compile(rb"([\x21-\x7e]+?):")  # RFC 5322 2.2 ftext, then the colon
_BARE_LF: Final = re.compile(rb"(?<!\r)\n")
_LINE_END: Final = re.compile(rb"\r?\n")
# Runs of WSP that are not one SP already (matching each lone SP too costs 3x as much).
_WSP_RUN: Final = re.compile(rb"\t[\t ]*| [\t ]+")
_WSP_BEFORE_CRLF: Final = re.compile(rb"[\t ]+\r\n")

Header = tuple[bytes, bytes]  # (name, value): the value as after the colon, CRLF-terminated


def parse_message(message: bytes) -> tuple[list[Header], bytes] | None:
    """Header fields and the body (lines CRLF-terminated), or None for a malformed header.

    As dkimpy reads a message: a line ends at CRLF or a bare LF; the header section ends at
    the first empty line (or the end); a leading mbox "From " line is skipped. So what we sign
    is what a dkimpy-based receiver checks.
    """
    headers: list[list[bytes]] = []
    pos, size = 0, len(message)
    body = b""
    while pos < size:
        match = _LINE_END.search(message, pos)
        end, after = (match.start(), match.end()) if match else (size, size)
        line = message[pos:end]
        pos = after
        if not line:
            body = message[after:]
            break
        if line[0] in b"\t ":  # a continuation line (RFC 5322 2.2.3 folding)
            if not headers:
                return None
            headers[-1][1] += line + b"\r\n"
        elif (field := _FIELD_NAME.match(line)) is not None:
            headers.append([field.group(1), line[field.end() :] + b"\r\n"])
        elif not line.startswith(b"From "):
            return None
    if body.count(b"\n") != body.count(b"\r\n"):
        body = _BARE_LF.sub(b"\r\n", body)
    return [(name, value) for name, value in headers], body


def select_headers(headers: Sequence[Header], include: Sequence[bytes]) -> list[Header]:
    """The fields h= names, in h= order: each name takes the lowest instance not yet taken
    (RFC 6376 5.4.2); a name with none left (the extra From) takes nothing."""
    selected: list[Header] = []
    last: dict[bytes, int] = {}
    for name in include:
        index = last.get(name, len(headers))
        while index > 0:
            index -= 1
            if headers[index][0].lower() == name:
                selected.append(headers[index])
                break
        last[name] = index
    return selected


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value, WSP runs as one SP, no WSP around."""
    unfolded = value.replace(b"\r\n", b"").replace(b"\n", b"")
    return name.lower().rstrip() + b":" + _WSP_RUN.sub(b" ", unfolded).strip() + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: no WSP at line ends, WSP runs as one SP, no empty lines at the end;
    a last line without CRLF gets one; an empty body stays empty."""
    # The regular expressions cost most of the time; most bodies need neither.
    if b" \r\n" in body or b"\t\r\n" in body:
        body = _WSP_BEFORE_CRLF.sub(b"\r\n", body)
    if b"\t" in body or b"  " in body:
        body = _WSP_RUN.sub(b" ", body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    body = body[:end] + b"\r\n"
    return b"" if body == b"\r\n" else body


def fold(value: bytes, name_length: int) -> bytes:
    """Fold a CRLF-terminated field value at spaces (a long token such as b= is cut) so that
    each line stays within FOLD_WIDTH octets, the first one after "Name:"; as dkimpy does."""
    width = FOLD_WIDTH - name_length
    if len(value) - 2 <= width:
        return value
    lines: list[bytes] = []
    while len(value) > width:
        cut = value.rfind(b" ", 0, width)
        if cut < 0:
            lines.append(value[:width])
            value = value[width:]
        else:
            lines.append(value[:cut])
            value = value[cut + 1 :]
        width = FOLD_WIDTH - 1  # continuation lines start with one SP
    if value == b"\r\n":  # never a line of white space alone
        return b"\r\n ".join(lines) + value
    return b"\r\n ".join([*lines, value])


def _signature_octets(private: PrivateKey) -> int:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return 64  # RFC 8032 5.1.6
    return (private.key_size + 7) // 8  # RFC 8017 8.2.1: as long as the modulus


def _signature(
    key: DkimKey,
    private: PrivateKey,
    domain: str,
    include: Sequence[bytes],
    selected: bytes,
    body_hash: bytes,
    timestamp: int,
) -> bytes:
    """One DKIM-Signature field (RFC 6376 3.5), tags in dkimpy's order."""
    d = domain.encode("ascii")
    tags = b"; ".join(
        [
            b"v=1",
            b"a=" + key.signature_algorithm,
            b"c=" + b"/".join(CANONICALIZE),
            b"d=" + d,
            b"i=@" + d,
            b"q=dns/txt",
            b"s=" + key.selector.encode("ascii"),
            b"t=%d" % timestamp,
            b"h=" + b" : ".join(include),
            b"bh=" + body_hash,
            b"b=",
        ]
    )
    name = b"DKIM-Signature"
    # RFC 6376 3.7: the field itself is hashed last, as it will be sent but with b= empty and
    # without its CRLF. A placeholder as long as the signature, without spaces, folds the
    # tags before b= exactly as the final field will (b= always starts a line of its own).
    length = 4 * ((_signature_octets(private) + 2) // 3)  # in base64
    placeholder = fold(b" " + tags + b"A" * length + b"\r\n", len(name))
    unsigned = placeholder[: placeholder.rindex(b" b=") + 3]
    digest = hashlib.sha256(
        selected + relaxed_header(name, unsigned).removesuffix(b"\r\n")
    ).digest()
    if isinstance(private, ed25519.Ed25519PrivateKey):
        signature = private.sign(digest)  # RFC 8463 3: Ed25519 over the SHA-256 hash
    else:
        signature = private.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    signed = fold(b" " + tags + base64.b64encode(signature) + b"\r\n", len(name))
    assert signed.startswith(unsigned)  # the hashed field is the sent one (see above)
    return name + b":" + signed
