"""DKIM verification (RFC 6376) of every signature on a message, with dkimpy, keys via our DNS.

Why not `dkim.verify` or `dkim.asyncsupport`: the former does blocking DNS of its own and the
latter needs aiodns; both ignore our configured servers and cache, and both fold "no key",
"bad key" and "DNS down" into False. Here each signature's key record is fetched with our
async `Resolver` first, then dkimpy's own parsing, hashing and signature check run in a worker
thread (body hashing of a large message must not stall the event loop).

Results per signature (RFC 8601 2.7.1): pass; fail (the signature or body hash does not verify);
permerror (malformed signature, missing/revoked/bad key, key too small: RFC 6376 6.1.2-6.1.3,
RFC 8301 3.2); temperror (the key lookup failed temporarily). No signature: none.
"""

from __future__ import annotations

import asyncio
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import dkim.util  # type: ignore[import-untyped]

from mailwright.net.resolver import DnsTemporaryError

if TYPE_CHECKING:
    from mailwright.net.resolver import Resolver

# RFC 8301 3.2: verifiers MUST NOT consider rsa keys shorter than 1024 bits valid.
MIN_RSA_BITS: Final = 1024
# Signatures checked per message; past this, the rest are reported as permerror (a message with
# hundreds of signatures is an attack on the verifier's DNS and CPU, RFC 6376 8.4).
MAX_SIGNATURES: Final = 10
# Messages larger than this are hashed in a worker thread rather than on the event loop.
INLINE_VERIFY_MAX: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass fail permerror temperror (none: no DkimResult at all)
    domain: str  # d= (lower case), "" when the signature could not be parsed
    selector: str  # s=
    b: str  # the first 8 characters of b= (RFC 6008 header.b), to tell signatures apart
    reason: str


def _tags(value: bytes) -> dict[bytes, bytes]:
    try:
        return dict(dkim.util.parse_tag_value(value))
    except Exception:  # any malformed tag list: reported as permerror by the caller
        return {}


def _text(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace").strip()


async def verify_all(message: bytes, resolver: Resolver) -> list[DkimResult]:
    """One result per DKIM-Signature header, top first; [] when there is none."""
    try:
        verifier = dkim.DKIM(message, minkey=MIN_RSA_BITS)
    except (dkim.DKIMException, IndexError, ValueError) as exc:
        # dkimpy's parser raises IndexError on a message that starts with a continuation line.
        return [DkimResult("permerror", "", "", "", f"message not parseable: {exc}")]
    headers = [(n, v) for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    results = []
    for idx, (_, value) in enumerate(headers):
        tags = _tags(value)
        domain, selector = _text(tags.get(b"d")).lower(), _text(tags.get(b"s"))
        b = re.sub(r"\s+", "", _text(tags.get(b"b")))[:8]
        if idx >= MAX_SIGNATURES:
            results.append(DkimResult("permerror", domain, selector, b, "too many signatures"))
            continue
        results.append(await _verify_one(message, idx, domain, selector, b, resolver))
    return results


async def _verify_one(
    message: bytes, idx: int, domain: str, selector: str, b: str, resolver: Resolver
) -> DkimResult:
    def result(kind: str, reason: str) -> DkimResult:
        return DkimResult(kind, domain, selector, b, reason)

    if not domain or not selector:
        return result("permerror", "signature without d= or s=")
    name = f"{selector}._domainkey.{domain}"
    try:
        records = await resolver.txt(name)
    except DnsTemporaryError as exc:
        return result("temperror", f"key lookup failed: {exc}")
    if not records:
        return result("permerror", f"no key at {name}")  # RFC 6376 6.1.2
    key = records[0].encode("utf-8", "replace")
    if len(message) > INLINE_VERIFY_MAX:
        kind, reason = await asyncio.to_thread(_check, message, idx, key)
    else:
        kind, reason = _check(message, idx, key)
    return result(kind, reason)


def _check(message: bytes, idx: int, key: bytes) -> tuple[str, str]:
    """dkimpy's verification of signature `idx` against the key record `key` (pure CPU)."""
    verifier: Any = dkim.DKIM(message, minkey=MIN_RSA_BITS)
    try:
        prep = verifier.verify_headerprep(idx)
        if not prep:
            return "permerror", "signature not found"
        sig, include_headers, sigheaders = prep
        name = sig[b"s"] + b"._domainkey." + sig[b"d"] + b"."
        try:
            verifier.pk, verifier.keysize, verifier.ktag, verifier.seqtlsrpt = dkim.evaluate_pk(
                name, key
            )
        except (dkim.KeyFormatError, ValueError) as exc:  # revoked (p=), bad base64, k= ...
            return "permerror", f"bad key: {exc}"
        ok = verifier.verify_sig_process(sig, include_headers, sigheaders[idx], None)
    except dkim.ValidationError as exc:
        text = str(exc)
        if "body hash mismatch" in text:
            return "fail", "body hash did not verify"
        return "permerror", f"bad signature: {text}"
    except (dkim.KeyFormatError, dkim.UnknownKeyTypeError) as exc:
        return "permerror", f"unusable key: {exc}"
    except dkim.DKIMException as exc:
        return "permerror", f"bad signature: {exc}"
    except (ValueError, TypeError, IndexError, binascii.Error) as exc:
        return "permerror", f"bad signature: {exc}"
    return ("pass", "signature verified") if ok else ("fail", "signature did not verify")
