"""`python -m bench.inbound_checks [-n N]`: the cost per message of SPF + DKIM + DMARC.

In-process, on one event loop: `InboundChecker.check()` plus the header rewrite
(`new_head`) against the loopback test DNS server (tests/support/dnsserver.py). "cold" gives
every message a sender domain of its own (every lookup goes to DNS); "warm" reuses one domain
(answers from the resolver's cache: the steady state for a busy sender). Never part of
pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import time
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.dnsserver import DnsServer  # test support, found via sys.path

from mailwright.config import InboundConfig
from mailwright.mailauth.inbound import InboundChecker
from mailwright.net.resolver import Resolver


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def _message(domain: str, size: int, pem: bytes | None) -> bytes:
    line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    body = line * max(1, size // len(line))
    raw = (f"From: news@{domain}\r\nTo: bob@example.test\r\nSubject: bench\r\n"
           f"Message-ID: <1@{domain}>\r\n\r\n").encode() + body
    if pem is not None:
        raw = dkim.sign(raw, b"sel", domain.encode(), pem,
                        include_headers=[b"from", b"to", b"subject"]) + raw
    trace = b"Return-Path: <x>\r\nReceived: from bench ([127.0.0.1]) by mx; now\r\n"
    return trace + raw


async def _case(dns: DnsServer, key: tuple[bytes, str], n: int, size: int, signed: bool,
                warm: bool) -> tuple[float, float, float]:
    pem, record = key
    resolver = Resolver(dns.spec, timeout=2.0)
    checker = InboundChecker(resolver, InboundConfig(), "mx.bench.test")
    tag = f"{size}-{signed}-{warm}"
    times = []
    messages = []
    for i in range(n):
        domain = f"s{0 if warm else i}.{tag}.bench.example".replace("True", "t").replace(
            "False", "f")
        if warm and i > 0:
            messages.append((domain, messages[0][1]))
            continue
        dns.add(domain, "TXT", "v=spf1 ip4:127.0.0.1 -all")
        dns.add(f"out.{domain}", "A", "127.0.0.1")
        dns.add(f"sel._domainkey.{domain}", "TXT", record)
        dns.add(f"_dmarc.{domain}", "TXT", "v=DMARC1; p=reject")
        messages.append((domain, _message(domain, size, pem if signed else None)))
    before = len(dns.queries)
    for domain, raw in messages:
        start = time.perf_counter()
        result = await checker.check(raw, client_ip="127.0.0.1", helo=f"out.{domain}",
                                     mail_from=f"news@{domain}")
        checker.new_head(raw, result.header)
        times.append(time.perf_counter() - start)
        assert result.verdict.action == "deliver", result
    queries = (len(dns.queries) - before) / n
    return statistics.mean(times) * 1e6, statistics.quantiles(times, n=100)[98] * 1e6, queries


async def main(n: int) -> None:
    key = _key()
    table = Table(title=f"inbound checks per message (n={n}, loopback DNS, RSA-2048 DKIM)")
    for column in ("case", "mean µs", "p99 µs", "DNS queries/msg", "msgs/s (1 loop)"):
        table.add_column(column, justify="right" if column != "case" else "left")
    with DnsServer() as dns:
        for size, signed in ((4096, False), (4096, True), (102400, True)):
            for warm in (False, True):
                mean, p99, queries = await _case(dns, key, n, size, signed, warm)
                name = (f"{size // 1024} KiB {'signed' if signed else 'unsigned'}, "
                        f"{'warm' if warm else 'cold'} cache")
                table.add_row(name, f"{mean:,.0f}", f"{p99:,.0f}", f"{queries:.1f}",
                              f"{1e6 / mean:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="messages per case")
    asyncio.run(main(parser.parse_args().n))
