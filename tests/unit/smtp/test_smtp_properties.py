"""SMTP address parsing round-trips what we render, in every form RFC 5321 4.1.2 and RFC 6531
allow (dot-atoms, quoted local parts, UTF-8, address literals, source routes); and a whole
pipelined session of arbitrary lines never raises (issue 6: properties beside the fuzzers)."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.smtp.commands import ALL_COMMANDS, Bdat, Mail, Rcpt
from mailwright.smtp.core import NEED_DATA, ConnectionClosed, ServerConnection
from mailwright.smtp.parser import parse_command, parse_mailbox

_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
_UTF8 = st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF, categories=["L", "N"])
_ATOM = st.text(st.sampled_from(_ATEXT) | _UTF8, min_size=1, max_size=8)
_DOT_ATOM = st.lists(_ATOM, min_size=1, max_size=3).map(".".join)
# RFC 5321 4.1.2 qtextSMTP (printable ASCII but '"' and '\'), or quoted-pairSMTP.
_QCHAR = st.sampled_from([chr(c) for c in range(32, 127) if chr(c) not in '"\\']) | st.sampled_from(
    ["\\\\", '\\"', "\\ ", "\\a"])
_QUOTED = st.lists(_QCHAR, max_size=8).map(lambda cs: '"' + "".join(cs) + '"')
_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z") | st.text(
    _UTF8, min_size=1, max_size=5)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_LITERAL = (
    st.ip_addresses(v=4).map(lambda ip: f"[{ip}]")
    | st.ip_addresses(v=6).map(lambda ip: f"[IPv6:{ip}]")
)
ADDRESSES = st.builds(lambda local, domain: f"{local}@{domain}", _DOT_ATOM | _QUOTED,
                      _DOMAIN | _LITERAL)


@settings(max_examples=400, deadline=None)
@given(ADDRESSES)
def test_rendered_address_parses_to_itself(address: str) -> None:
    wire = address.encode()
    assert parse_mailbox(address) == address
    assert parse_command(b"MAIL FROM:<" + wire + b">") == Mail(address, {})
    assert parse_command(b"RCPT TO:<" + wire + b"> NOTIFY=NEVER") == Rcpt(
        address, {"NOTIFY": "NEVER"})
    # "MAIL FROM: <a@b>" with a space (Postfix and Exim accept it) means the same.
    assert parse_command(b"mail from: <" + wire + b">") == Mail(address, {})


@settings(max_examples=200, deadline=None)
@given(ADDRESSES, st.lists(_DOMAIN, min_size=1, max_size=3))
def test_source_route_is_dropped(address: str, route: list[str]) -> None:
    path = ",".join("@" + d for d in route) + ":" + address
    assert parse_command(b"RCPT TO:<" + path.encode() + b">") == Rcpt(address, {})


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_ip_literal_domain_is_kept_as_written(ip: ipaddress.IPv4Address | ipaddress.IPv6Address
                                              ) -> None:
    literal = f"[{ip}]" if ip.version == 4 else f"[IPv6:{ip.exploded}]"
    assert parse_mailbox(f"postmaster@{literal}") == f"postmaster@{literal}"


_LINES = st.sampled_from([
    b"EHLO x", b"MAIL FROM:<a@b>", b"RCPT TO:<c@d>", b"DATA", b"BDAT 3", b"BDAT 0 LAST",
    b"AUTH PLAIN", b"RSET", b"QUIT", b".", b"..", b"", b"STARTTLS", b"NOOP x",
]) | st.binary(max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINES, max_size=30), st.integers(min_value=1, max_value=64),
       st.integers(min_value=8, max_value=200))
def test_pipelined_garbage_never_raises(lines: list[bytes], step: int, limit: int) -> None:
    """Any session, read in any chunks, with small limits: only events, then ConnectionClosed."""
    core = ServerConnection(max_command_line=limit, max_data_line=limit, max_message_size=limit)
    wire = b"".join(line + b"\r\n" for line in lines)
    for i in range(0, len(wire), step):
        core.receive_data(wire[i : i + step])
        while (ev := core.next_event()) is not NEED_DATA:
            # Accept every command, as a permissive session would (a BDAT is decided at its
            # ChunkEnd, so it is left alone here).
            if isinstance(ev, ALL_COMMANDS) and not isinstance(ev, Bdat):
                core.transition(ev, ok=True)
    core.receive_data(b"")
    for _ in range(len(wire) + 10):
        if isinstance(core.next_event(), ConnectionClosed):
            return
    raise AssertionError("no ConnectionClosed after EOF")
