"""What inbound mail and its senders' DNS control: SPF records and macros
(mailauth/spf_record.py, spf_macro.py), DMARC records (mailauth/dmarc.py), and the header
handling of the inbound checks (mailauth/inbound.py, authres.py, dkim_verify.py).

Documented errors: `SpfSyntaxError` from `parse_record` (a permerror), `MacroError` from
`expand`; the DMARC parser returns None for a record it cannot apply; the inbound header
functions and DKIM verification return values for any message.
"""

from __future__ import annotations

import base64
from typing import Any, cast

from mailwright.mailauth import authres, dkim_verify, dmarc, inbound
from mailwright.mailauth.spf_macro import MacroError, expand, truncate_domain
from mailwright.mailauth.spf_record import (
    MECHANISMS,
    QUALIFIERS,
    SpfSyntaxError,
    is_spf_record,
    parse_record,
)

# What an evaluation fills the macro letters with (spf.py `_values`), a hostile sender included.
_VALUES = {
    "s": "a.b%{d}@example.org", "l": "a.b%{d}", "o": "example.org", "d": "example.org",
    "i": "192.0.2.1", "p": "unknown", "v": "in-addr", "h": "mx.example.net",
    "c": "192.0.2.1", "r": "mx.example.test", "t": "1700000000",
}


def _txt(data: bytes) -> str:
    """A TXT record as the resolver hands it over (net/resolver.py)."""
    return data.decode("utf-8", "replace")


def fuzz_spf(data: bytes) -> None:
    text = _txt(data)
    for explanation in (False, True):
        try:
            out = expand(text, _VALUES, explanation=explanation)
        except MacroError:
            pass
        else:
            assert isinstance(out, str)
            assert len(truncate_domain(out)) <= max(253, len(out.rpartition(".")[2]))
    record_text = text if is_spf_record(text) else "v=spf1 " + text
    try:
        record = parse_record(record_text)
    except SpfSyntaxError:
        return
    for mech in record.mechanisms:
        assert mech.qualifier in QUALIFIERS
        assert mech.name in MECHANISMS
        assert 0 <= mech.cidr4 <= 32
        assert 0 <= mech.cidr6 <= 128
        str(mech)
        # A record that parsed has domain-specs that expand (parse_record checks them).
        if mech.domain is not None:
            expand(mech.domain, _VALUES)
    for spec in (record.redirect, record.exp):
        if spec is not None:
            expand(spec, _VALUES)


def fuzz_dmarc(data: bytes) -> None:
    """Byte 0 bit 0: prefix "v=DMARC1; " (discovery only parses such records)."""
    mode, text = (data[0] if data else 0), _txt(data[1:])
    if mode & 1:
        text = "v=DMARC1; " + text
    record = dmarc.parse_record(text)
    if record is not None:
        assert record.p in dmarc.POLICIES
        assert record.sp in dmarc.POLICIES
        assert record.adkim in ("r", "s")
        assert record.aspf in ("r", "s")
        assert 0 <= record.pct <= 100
    name, _, other = text.partition(";")
    for mode_ in ("r", "s"):
        assert isinstance(dmarc.aligned(name, other, mode_), bool)


# A real Ed25519 key record (RFC 8463 A.2), so that DKIM verification gets past the key.
_DKIM_KEY = b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
_CHECKER = inbound.InboundChecker(cast(Any, None), cast(Any, None), "mx.example.test")


# The SMTP session writes these before the client's octets (smtp/session.py `_trace_headers`),
# so the inbound checks never see a message that starts with a continuation line (on which
# dkimpy's header parser raises IndexError).
_TRACE = (
    b"Return-Path: <ann@example.org>\r\nReceived: from client.example ([192.0.2.1])\r\n"
    b"\tby mx.example.test (mailwright) with ESMTP id 0A1B2C3D4E5F;\r\n"
    b"\tTue, 05 Mar 2024 23:30:00 +0000\r\n"
)


def fuzz_inbound(data: bytes) -> None:
    message = _TRACE + data
    fields, end = inbound.split_header(message)
    assert 0 <= end <= len(message)
    assert b"".join(fields) == message[:end]
    domain = inbound.from_domain(fields)
    assert isinstance(domain, str)
    if domain:
        dmarc.organizational_domain(domain)
        dmarc.aligned(domain, "example.org", "r")
    [f.split(b":", 1)[0] for f in fields]
    values = [f.split(b":", 1)[1] if b":" in f else b"" for f in fields]
    for value in values:
        authres.authserv_id_of(value)
    ours = b"Authentication-Results: mx.example.test; dkim=none\r\n"
    head, length = _CHECKER.new_head(message, ours)
    assert ours in head
    assert length == end
    # DKIM: the header walk of verify_all and each signature's check, as the server runs them.
    if b"dkim-signature" not in message[:end].lower():
        return
    import dkim  # type: ignore[import-untyped]  # dkimpy; only this target loads it

    try:
        verifier = dkim.DKIM(message, minkey=1024)
    except dkim.DKIMException:
        return
    signatures = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
    for idx, value in enumerate(signatures[:3]):
        tags = dkim_verify._tags(value)
        base64.b64encode(tags.get(b"b", b""))
        kind, reason = dkim_verify._check(message, idx, _DKIM_KEY)
        assert kind in ("pass", "fail", "permerror"), (kind, reason)
