"""The Authentication-Results header field (RFC 8601): formatting ours, finding forged ones.

Invariants:
- One header field per message, authserv-id = our hostname (RFC 8601 2.5), one resinfo per
  method result: spf (smtp.mailfrom, and smtp.helo), dkim (one per signature: header.d,
  header.s, header.b of RFC 6008), dmarc (header.from). Values that are not a plain token or
  domain are quoted; comments are reduced to safe characters.
- Incoming Authentication-Results fields that carry our authserv-id are forgeries or stale
  (RFC 8601 5): `strip_ours` removes them before ours is added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mailwright.mailauth.dkim_verify import DkimResult
    from mailwright.mailauth.dmarc import DmarcResult
    from mailwright.mailauth.spf import SpfResult

HEADER: Final = "Authentication-Results"
# RFC 5322 2.2.1 folding keeps each line well under the 78-character recommendation.
_TOKEN: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~@]+$")
_UNSAFE_COMMENT: Final = re.compile(r"[^A-Za-z0-9 .,:;/=+_\-@\[\]'\"!?#]")


def _value(text: str) -> str:
    """RFC 8601 2.2 pvalue / RFC 2045 value: a token, else a quoted-string."""
    if text and _TOKEN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    cleaned = _UNSAFE_COMMENT.sub("_", text)[:120].strip()
    return f" ({cleaned})" if cleaned else ""


def _mailfrom_value(domain: str, mail_from: str) -> str:
    """The address when its local part is a plain dot-atom, else the domain (RFC 8601 2.7.2)."""
    local = mail_from.rpartition("@")[0]
    if mail_from and local and _TOKEN.match(local) and not local.startswith("."):
        return mail_from
    return domain


def format_header(
    authserv_id: str,
    *,
    spf: SpfResult | None,
    mail_from: str,
    helo_spf: SpfResult | None,
    dkim: Sequence[DkimResult],
    dmarc: DmarcResult | None,
) -> bytes:
    """The whole header field, folded, CRLF-terminated, ready to prepend."""
    parts: list[str] = []
    if spf is not None:
        parts.append(
            f"spf={spf.result}{_comment(spf.reason)} "
            f"smtp.mailfrom={_value(_mailfrom_value(spf.domain, mail_from))}"
        )
    if helo_spf is not None:
        parts.append(
            f"spf={helo_spf.result}{_comment(helo_spf.reason)} smtp.helo={_value(helo_spf.domain)}"
        )
    if not dkim:
        parts.append("dkim=none")
    for sig in dkim:
        props = [f"header.d={_value(sig.domain)}"] if sig.domain else []
        if sig.selector:
            props.append(f"header.s={_value(sig.selector)}")
        if sig.b:
            props.append(f"header.b={_value(sig.b)}")
        parts.append(f"dkim={sig.result}{_comment(sig.reason)} " + " ".join(props))
    if dmarc is not None:
        detail = f"p={dmarc.published} dis={dmarc.policy}" if dmarc.published else dmarc.reason
        from_value = f" header.from={_value(dmarc.from_domain)}" if dmarc.from_domain else ""
        parts.append(f"dmarc={dmarc.result}{_comment(detail)}{from_value}")
    body = ";\r\n\t".join([authserv_id, *(p.strip() for p in parts)])
    return f"{HEADER}: {body}\r\n".encode("utf-8", "replace")


def authserv_id_of(value: bytes) -> str:
    """The authserv-id of a raw (possibly folded) Authentication-Results value."""
    text = re.sub(rb"\r?\n[ \t]", b" ", value).decode("utf-8", "replace")
    text = re.sub(r"\([^()]*\)", " ", text)  # CFWS comments (one level is what is seen)
    # Nothing before the ";" (": ; spf=pass", or only a comment) is no authserv-id, not an error.
    words = text.split(";", 1)[0].split()
    return words[0].lower() if words else ""


def strip_ours(fields: Sequence[tuple[bytes, bytes]], authserv_id: str) -> list[bool]:
    """For each (name, raw value) header field: keep it? False for an Authentication-Results
    field that claims our authserv-id (RFC 8601 5)."""
    ours = authserv_id.lower()
    return [
        not (name.strip().lower() == HEADER.lower().encode() and authserv_id_of(value) == ours)
        for name, value in fields
    ]
