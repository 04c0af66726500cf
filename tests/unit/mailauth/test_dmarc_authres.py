"""DMARC evaluation (RFC 7489), the verdict, and the Authentication-Results field (RFC 8601)."""

from __future__ import annotations

import pytest
from support.dnsserver import DnsServer

from mailwright.config import InboundConfig
from mailwright.mailauth import authres, dmarc, policy
from mailwright.mailauth.dkim_verify import DkimResult
from mailwright.mailauth.spf import SpfResult
from mailwright.net.resolver import Resolver

PASS_SPF = SpfResult("pass", "bounce.example.org", "matched")
FAIL_SPF = SpfResult("fail", "evil.example", "no match")


def dkim_result(result: str, domain: str) -> DkimResult:
    return DkimResult(result, domain, "sel", "AbCdEfGh", "x")


def record(text: str) -> dmarc.Discovery:
    parsed = dmarc.parse_record(text)
    return dmarc.Discovery(parsed, "example.org")


@pytest.mark.parametrize(
    ("identifier", "author", "mode", "expected"),
    [
        ("example.org", "example.org", "s", True),
        ("mail.example.org", "example.org", "s", False),
        ("mail.example.org", "example.org", "r", True),
        ("a.b.example.co.uk", "example.co.uk", "r", True),
        ("other.co.uk", "example.co.uk", "r", False),
        ("EXAMPLE.org.", "example.org", "s", True),
    ],
)
def test_alignment(identifier: str, author: str, mode: str, expected: bool) -> None:
    assert dmarc.aligned(identifier, author, mode) is expected


def test_organizational_domain_uses_the_public_suffix_list() -> None:
    assert dmarc.organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert dmarc.organizational_domain("mail.example.test") == "example.test"


def test_spf_alignment_relaxed_passes_and_strict_fails() -> None:
    relaxed = dmarc.evaluate("example.org", record("v=DMARC1; p=reject"), PASS_SPF, [])
    assert (relaxed.result, relaxed.policy) == ("pass", "none")
    strict = dmarc.evaluate("example.org", record("v=DMARC1; p=reject; aspf=s"), PASS_SPF, [],
                            sample=lambda: 0.0)
    assert (strict.result, strict.policy) == ("fail", "reject")


def test_dkim_aligned_pass_passes_even_when_spf_fails() -> None:
    sigs = [dkim_result("pass", "other.example"), dkim_result("pass", "news.example.org")]
    result = dmarc.evaluate("example.org", record("v=DMARC1; p=reject"), FAIL_SPF, sigs)
    assert result.result == "pass"
    strict = dmarc.evaluate("example.org", record("v=DMARC1; p=reject; adkim=s"), FAIL_SPF,
                            sigs, sample=lambda: 0.0)
    assert strict.result == "fail"


def test_pct_samples_the_policy() -> None:
    half = record("v=DMARC1; p=reject; pct=50")
    inside = dmarc.evaluate("example.org", half, FAIL_SPF, [], sample=lambda: 0.2)
    outside = dmarc.evaluate("example.org", half, FAIL_SPF, [], sample=lambda: 0.7)
    assert (inside.policy, outside.policy) == ("reject", "quarantine")
    zero = dmarc.evaluate("example.org", record("v=DMARC1; p=quarantine; pct=0"), FAIL_SPF, [])
    assert zero.policy == "none"


def test_aligned_temperror_is_temperror() -> None:
    sigs = [dkim_result("temperror", "example.org")]
    result = dmarc.evaluate("example.org", record("v=DMARC1; p=reject"), FAIL_SPF, sigs)
    assert result.result == "temperror"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=reject", ("reject", "reject", 100)),
        ("v=DMARC1;p=quarantine;sp=none;pct=20", ("quarantine", "none", 20)),
        ("v=DMARC1; p=bogus; rua=mailto:d@example.org", ("none", "none", 100)),
        ("v=DMARC1; p=bogus", None),
        ("v=DMARC1", None),
        ("p=reject; v=DMARC1", None),
    ],
)
def test_parse_record(text: str, expected: tuple[str, str, int] | None) -> None:
    parsed = dmarc.parse_record(text)
    assert (None if parsed is None else (parsed.p, parsed.sp, parsed.pct)) == expected


@pytest.mark.asyncio
async def test_discovery_falls_back_to_the_organizational_domain(dns_server: DnsServer) -> None:
    dns_server.add("_dmarc.example.org", "TXT", "v=DMARC1; p=reject; sp=quarantine")
    resolver = Resolver(dns_server.spec, timeout=0.5)
    found = await dmarc.discover(resolver, "news.example.org")
    assert found.domain == "example.org"
    result = dmarc.evaluate("news.example.org", found, FAIL_SPF, [], sample=lambda: 0.0)
    assert (result.published, result.policy) == ("quarantine", "quarantine")
    own = await dmarc.discover(resolver, "example.org")
    assert dmarc.evaluate("example.org", own, FAIL_SPF, [], sample=lambda: 0.0).policy == "reject"
    assert (await dmarc.discover(resolver, "none.example")).record is None


@pytest.mark.asyncio
async def test_discovery_dns_failure_is_temperror(dns_server: DnsServer) -> None:
    dns_server.fail("_dmarc.example.org")
    resolver = Resolver(dns_server.spec, timeout=0.5)
    found = await dmarc.discover(resolver, "example.org")
    assert dmarc.evaluate("example.org", found, PASS_SPF, []).result == "temperror"


def test_verdicts() -> None:
    cfg = InboundConfig()
    fail_reject = dmarc.DmarcResult("fail", "example.org", "reject", "reject", "x")
    assert policy.decide(cfg, FAIL_SPF, [], fail_reject).code == 550
    not_enforced = InboundConfig(enforce_dmarc=False)
    assert policy.decide(not_enforced, FAIL_SPF, [], fail_reject).action == "junk"
    unknown = dmarc.DmarcResult("temperror", "example.org", "none", "", "SERVFAIL")
    assert policy.decide(cfg, PASS_SPF, [], unknown).status == "4.4.3"
    nothing = dmarc.DmarcResult("none", "example.org", "none", "", "no record")
    assert policy.decide(cfg, FAIL_SPF, [], nothing).action == "junk"
    signed = [dkim_result("pass", "other.example")]
    assert policy.decide(cfg, FAIL_SPF, signed, nothing).action == "deliver"
    assert policy.decide(InboundConfig(spf_fail_to_junk=False), FAIL_SPF, [], nothing).action \
        == "deliver"
    spf_temp = SpfResult("temperror", "example.org", "timeout")
    assert policy.decide(cfg, spf_temp, [], nothing).action == "tempfail"
    assert policy.decide(cfg, spf_temp, signed, nothing).action == "deliver"


def test_authentication_results_format() -> None:
    header = authres.format_header(
        "mx.example.net",
        spf=PASS_SPF,
        mail_from="bounce+x@bounce.example.org",
        helo_spf=SpfResult("none", "helo.example", "no SPF record at helo.example"),
        dkim=[dkim_result("pass", "example.org")],
        dmarc=dmarc.DmarcResult("pass", "example.org", "none", "reject", "ok"),
    )
    assert header == (
        b"Authentication-Results: mx.example.net;\r\n"
        b"\tspf=pass (matched) smtp.mailfrom=bounce+x@bounce.example.org;\r\n"
        b"\tspf=none (no SPF record at helo.example) smtp.helo=helo.example;\r\n"
        b"\tdkim=pass (x) header.d=example.org header.s=sel header.b=AbCdEfGh;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=example.org\r\n"
    )


def test_odd_local_part_reports_the_domain_and_comments_are_safe() -> None:
    header = authres.format_header(
        "mx", spf=SpfResult("fail", "example.org", "evil (comment) \r\n text"),
        mail_from='"odd person"@example.org', helo_spf=None, dkim=[], dmarc=None,
    )
    assert b"spf=fail (evil _comment_ __ text) smtp.mailfrom=example.org;" in header
    assert b"dkim=none" in header


def test_strip_ours_only_drops_our_authserv_id() -> None:
    fields = [
        (b"Authentication-Results", b" MX.example.net; spf=pass"),
        (b"Authentication-Results", b" (c) mx.example.net 1;\r\n\tdkim=pass"),
        (b"Authentication-Results", b" other.example; spf=pass"),
        (b"Subject", b" mx.example.net"),
    ]
    assert authres.strip_ours(fields, "mx.example.net") == [False, False, True, True]
