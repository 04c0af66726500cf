"""DKIM verification results per signature (RFC 6376, RFC 8601 2.7.1) with the test DNS."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.dnsserver import DnsServer

from mailwright.mailauth.dkim_verify import verify_all
from mailwright.net.resolver import Resolver

RAW = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def sign(pem: bytes, selector: bytes, raw: bytes = RAW) -> bytes:
    return dkim.sign(raw, selector, b"example.org", pem, include_headers=[b"from"]) + raw


@pytest.mark.asyncio
async def test_every_signature_gets_its_result(
    dns_server: DnsServer, key: tuple[bytes, str]
) -> None:
    pem, record = key
    dns_server.add("good._domainkey.example.org", "TXT", record)
    dns_server.add("revoked._domainkey.example.org", "TXT", "v=DKIM1; p=")
    dns_server.fail("down._domainkey.example.org")
    message = sign(pem, b"good")
    for selector in (b"revoked", b"missing", b"down"):
        message = sign(pem, selector, message)
    results = await verify_all(message, Resolver(dns_server.spec, timeout=0.5))
    assert [(r.selector, r.result) for r in results] == [
        ("down", "temperror"), ("missing", "permerror"), ("revoked", "permerror"), ("good", "pass")
    ]
    assert all(r.domain == "example.org" for r in results)


@pytest.mark.asyncio
async def test_tampered_header_fails_and_no_signature_is_empty(
    dns_server: DnsServer, key: tuple[bytes, str]
) -> None:
    pem, record = key
    dns_server.add("good._domainkey.example.org", "TXT", record)
    resolver = Resolver(dns_server.spec, timeout=0.5)
    tampered = sign(pem, b"good").replace(b"From: a@", b"From: z@")
    (result,) = await verify_all(tampered, resolver)
    assert (result.result, result.reason) == ("fail", "signature did not verify")
    assert await verify_all(RAW, resolver) == []
