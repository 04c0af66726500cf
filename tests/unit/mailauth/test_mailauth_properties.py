"""Hostile DNS records and message headers (issue 6): the SPF parsers raise only their
permerror exceptions, the DMARC parser only returns, and the inbound header handling never
raises. The regressions are the fuzzers' findings (python -m fuzz), each once a crash of the
MX on one message or one sender's DNS record."""

from __future__ import annotations

import contextlib
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.mailauth import authres, dmarc, inbound
from mailwright.mailauth.spf_macro import MacroError, expand
from mailwright.mailauth.spf_record import SpfSyntaxError, parse_record

_VALUES = dict.fromkeys("slodiphvcrt", "a.b.example")
_SPF_WORDS = st.sampled_from([
    "v=spf1", " ", "all", "-", "~", "?", "+", "a", "mx", "ptr", "include:", "exists:", "ip4:",
    "ip6:", "redirect=", "exp=", "%{", "}", "%%", "%_", "%-", "d", "i", "r", ".", "/24", "//64",
    "1", "0", "9" * 5000, "\u0663", ":", "=", "x.example",
])
SPF_TEXT = st.lists(_SPF_WORDS | st.text(max_size=4), max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(SPF_TEXT)
def test_spf_parsers_raise_only_their_errors(text: str) -> None:
    with contextlib.suppress(SpfSyntaxError):
        parse_record("v=spf1 " + text)
    for explanation in (False, True):
        with contextlib.suppress(MacroError):
            expand(text, _VALUES, explanation=explanation)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["v=DMARC1", ";", " ", "p=", "sp=", "pct=", "reject", "none",
                                 "adkim=", "s", "rua=", "9" * 5000, "\u0663", "="])
                | st.text(max_size=5), max_size=20).map("".join))
def test_dmarc_parser_only_returns(text: str) -> None:
    record = dmarc.parse_record(text)
    if record is not None:
        assert record.p in dmarc.POLICIES
        assert 0 <= record.pct <= 100


HEADERS = st.lists(
    st.sampled_from([b"From", b"From:", b"From: a@b.example", b" ", b"\t", b"\r\n", b"\n",
                     b"Authentication-Results:", b";", b"(", b")", b"mx.example.test", b"\xff"])
    | st.binary(max_size=6), max_size=30).map(b"".join)
_CHECKER = inbound.InboundChecker(cast(Any, None), cast(Any, None), "mx.example.test")


@settings(max_examples=400, deadline=None)
@given(HEADERS)
def test_inbound_header_handling_never_raises(message: bytes) -> None:
    fields, end = inbound.split_header(message)
    assert b"".join(fields) == message[:end]
    inbound.from_domain(fields)
    for field in fields:
        authres.authserv_id_of(field.partition(b":")[2])
    _head, length = _CHECKER.new_head(message, b"Authentication-Results: x; dkim=none\r\n")
    assert length == end


# ----- regressions found by fuzzing ------------------------------------------------------------


@pytest.mark.parametrize("value", [b" ; spf=pass", b";", b" (comment) ; dkim=pass", b"  \r\n ;"])
def test_authentication_results_without_authserv_id(value: bytes) -> None:
    """Was IndexError: a sender's "Authentication-Results: ; spf=pass" crashed new_head."""
    assert authres.authserv_id_of(value) == ""
    message = b"Authentication-Results:" + value + b"\r\nFrom: a@b.example\r\n\r\nhi\r\n"
    head, _ = _CHECKER.new_head(message, b"Authentication-Results: mx.example.test; x\r\n")
    assert head.count(b"Authentication-Results:") == 2  # not ours: kept


@pytest.mark.parametrize("line", [b"From\r\n", b"From \r\n", b"FROM"])
def test_header_line_without_colon_is_not_a_from_field(line: bytes) -> None:
    """Was IndexError: a header line "From" with no colon crashed the DMARC From lookup."""
    fields, _ = inbound.split_header(b"Subject: x\r\n" + line + b"\r\n\r\nbody\r\n")
    assert inbound.from_domain(fields) == ""
    fields, _ = inbound.split_header(b"From: Ann <ann@Example.ORG>\r\n" + line)
    assert inbound.from_domain(fields) == "example.org"


def test_spf_macro_with_thousands_of_digits_keeps_every_label() -> None:
    """Was ValueError (CPython's 4300-digit int limit) escaping parse_record, which the SPF
    check only catches as SpfSyntaxError: one sender's TXT record failed the whole check."""
    spec = "%{d" + "9" * 5000 + "}.example.org"
    record = parse_record("v=spf1 a:" + spec + " -all")
    assert record.mechanisms[0].domain == spec
    assert expand(spec, {"d": "a.b.c"}) == "a.b.c.example.org"
    assert expand("%{d0002r}", {"d": "a.b.c"}) == "b.a"


@pytest.mark.parametrize("spec", ["%{d\u0663}", "%{d000}", "%{d\uff11}"])
def test_spf_macro_digits_are_ascii_and_not_zero(spec: str) -> None:
    with pytest.raises(MacroError):
        expand(spec, {"d": "a.b.c"})
    with pytest.raises(SpfSyntaxError):
        parse_record(f"v=spf1 a:{spec}.example")
