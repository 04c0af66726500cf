"""DKIM-sign outbound mail (RFC 6376) with every key of the author's domain (RFC 8463 dual).

Why the cache works the way it does: `mailwright dkim generate` runs in another process while
the server runs, and its new key must sign the very next message, without a restart and
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
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mailwright.mailauth.keys import (
    DkimKey,
    DkimKeyError,
    list_keys,
    normalize_domain,
    signing_key,
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
# FAT has 2 s timestamps; ext4/xfs/btrfs tick in milliseconds. Within this much of the
# directory's mtime, a second change could leave the mtime unchanged.
RACY_WINDOW_NS: Final = 2_000_000_000

_Fingerprint = tuple[tuple[str, int], ...]


@dataclass(slots=True)
class _DomainKeys:
    mtime_ns: int
    fingerprint: _Fingerprint
    keys: tuple[tuple[DkimKey, bytes], ...]  # (key, private key in dkimpy's form)


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

    def sign(self, message: bytes, *, domain: str) -> bytes:
        """DKIM-Signature header lines (CRLF) for every key of `domain`; b"" when it has none."""
        try:
            domain = normalize_domain(domain)
        except DkimKeyError:
            return b""
        keys = self._keys(domain)
        if not keys:
            return b""
        # Imported on the first message there is a key for: a server that signs nothing does
        # not carry dkimpy (and its crypto back ends) in memory.
        import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information

        try:
            parsed = dkim.DKIM(message, linesep=b"\r\n")
            include = signed_header_list(parsed.headers)
        except dkim.DKIMException as exc:
            log.warning("DKIM: cannot sign a message for %s: %s", domain, exc)
            return b""
        signatures: list[bytes] = []
        for key, private in keys:
            try:
                header: bytes = parsed.sign(
                    key.selector.encode("ascii"),
                    domain.encode("ascii"),
                    private,
                    signature_algorithm=key.signature_algorithm,
                    canonicalize=CANONICALIZE,
                    include_headers=include,
                )
            except dkim.DKIMException as exc:
                log.warning("DKIM: %s selector %s did not sign: %s", domain, key.selector, exc)
                continue
            signatures.append(header)
        return b"".join(signatures)

    def _keys(self, domain: str) -> tuple[tuple[DkimKey, bytes], ...]:
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


def _load(keys: Sequence[DkimKey]) -> tuple[tuple[DkimKey, bytes], ...]:
    loaded: list[tuple[DkimKey, bytes]] = []
    for key in keys:
        try:
            loaded.append((key, signing_key(key)))
        except DkimKeyError as exc:
            log.warning("DKIM: skipping a key: %s", exc)
    # A stable order: Ed25519 first, then RSA, each by selector.
    loaded.sort(key=lambda item: (item[0].algorithm != "ed25519", item[0].selector))
    return tuple(loaded)
