"""SPF/DKIM/DMARC on the MX listener, end to end: smtplib in, the real server, the test DNS.

The sender domain's records (SPF, DKIM key, DMARC) live on the test DNS server; the client is
127.0.0.1, so "v=spf1 ip4:127.0.0.1 -all" passes and "v=spf1 -all" fails.
"""

from __future__ import annotations

import base64
import imaplib
import smtplib
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from smtp_wire import ALICE, ALICE_PW, BOB, BOB_PW, add_accounts, stored_messages
from support.dnsserver import DnsServer

SENDER = "news@sender.example"
HOSTNAME = "mail.example.test"


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, str]:
    """(private key PEM, the DKIM TXT record publishing its public half)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


@pytest.fixture
def mx(server_factory: Any, dns_server: DnsServer) -> Any:
    server = server_factory(
        {
            "MAILWRIGHT_DNS_SERVERS": dns_server.spec,
            "MAILWRIGHT_DNS_TIMEOUT": "1",
            "MAILWRIGHT_INBOUND_CHECKS": "true",
        }
    )
    return add_accounts(server)


def message(subject: str = "Hello", body: str = "Hi Bob!\r\n", extra: str = "") -> bytes:
    return (
        f"From: Sender <{SENDER}>\r\nTo: {BOB}\r\nSubject: {subject}\r\n{extra}"
        f"Message-ID: <{subject.replace(' ', '.')}@sender.example>\r\n\r\n{body}"
    ).encode()


def signed(pem: bytes, raw: bytes) -> bytes:
    sig: bytes = dkim.sign(
        raw, b"sel", b"sender.example", pem, include_headers=[b"from", b"to", b"subject"]
    )
    return sig + raw


def send_mx(server: Any, raw: bytes, mail_from: str = SENDER) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), local_hostname="out.sender.example") as s:
        s.sendmail(mail_from, [BOB], raw)


def header_names(stored: bytes) -> list[str]:
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line[:1] not in (" ", "\t")]


def auth_results(stored: bytes) -> str:
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    start = head.index("Authentication-Results: ")
    end = head.index("\r\nReceived: ", start)
    return head[start:end].replace("\r\n\t", " ")


def junk_messages(server: Any, address: str, password: str) -> list[bytes]:
    imap = imaplib.IMAP4(server.host, server.port("imap"))
    try:
        imap.login(address, password)
        imap.select("Junk", readonly=True)
        _, data = imap.search(None, "ALL")
        found = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(RFC822)")
            found.append(parts[0][1])
        return found
    finally:
        imap.logout()


def publish(dns: DnsServer, key_record: str, *, spf: str, dmarc: str | None) -> None:
    dns.add("sender.example", "TXT", spf)
    dns.add("sel._domainkey.sender.example", "TXT", key_record)
    if dmarc is not None:
        dns.add("_dmarc.sender.example", "TXT", dmarc)


def test_signed_mail_passes_with_authentication_results(
    mx: Any, dns_server: DnsServer, rsa_key: tuple[bytes, str]
) -> None:
    pem, record = rsa_key
    publish(dns_server, record, spf="v=spf1 ip4:127.0.0.1 -all", dmarc="v=DMARC1; p=reject")
    forged = f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=bank.example\r\n"
    foreign = "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@y.example\r\n"
    send_mx(mx, signed(pem, message(extra=forged + foreign)))
    (stored,) = stored_messages(mx, BOB)
    names = header_names(stored)
    assert names[:3] == ["Return-Path", "Authentication-Results", "Received"]
    assert names.count("Authentication-Results") == 2  # ours and the foreign one, not the forgery
    assert b"bank.example" not in stored
    assert b"other.example; spf=pass" in stored
    ar = auth_results(stored)
    assert ar.startswith(f"Authentication-Results: {HOSTNAME};")
    assert f"spf=pass (127.0.0.1 matched ip4:127.0.0.1/32 at sender.example) " \
           f"smtp.mailfrom={SENDER}" in ar
    assert "dkim=pass (signature verified) header.d=sender.example header.s=sel header.b=" in ar
    assert "dmarc=pass (p=reject dis=none) header.from=sender.example" in ar


def test_broken_dkim_and_dmarc_reject_is_refused(
    mx: Any, dns_server: DnsServer, rsa_key: tuple[bytes, str]
) -> None:
    pem, record = rsa_key
    publish(dns_server, record, spf="v=spf1 -all", dmarc="v=DMARC1; p=reject")
    raw = signed(pem, message()).replace(b"Hi Bob!", b"Pay me!")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send_mx(mx, raw)
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1 ")
    assert stored_messages(mx, BOB) == []


def test_dmarc_quarantine_lands_in_junk(
    mx: Any, dns_server: DnsServer, rsa_key: tuple[bytes, str]
) -> None:
    pem, record = rsa_key
    publish(dns_server, record, spf="v=spf1 -all", dmarc="v=DMARC1; p=quarantine")
    send_mx(mx, signed(pem, message()).replace(b"Hi Bob!", b"Pay me!"))
    assert stored_messages(mx, BOB) == []
    (junk,) = junk_messages(mx, BOB, BOB_PW)
    ar = auth_results(junk)
    assert "spf=fail" in ar
    assert "dkim=fail (body hash did not verify) header.d=sender.example" in ar
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=sender.example" in ar


def test_spf_fail_without_dkim_lands_in_junk(mx: Any, dns_server: DnsServer) -> None:
    dns_server.add("sender.example", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    send_mx(mx, message())
    assert stored_messages(mx, BOB) == []
    (junk,) = junk_messages(mx, BOB, BOB_PW)
    ar = auth_results(junk)
    assert f"smtp.mailfrom={SENDER}" in ar
    assert "spf=fail" in ar
    assert "dkim=none" in ar
    assert "dmarc=none" in ar


def test_dns_servfail_is_451_and_the_retry_succeeds(mx: Any, dns_server: DnsServer) -> None:
    dns_server.add("sender.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_server.fail("sender.example")
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        send_mx(mx, message())
    assert deferred.value.smtp_code == 451
    assert deferred.value.smtp_error.startswith(b"4.4.3 ")
    assert stored_messages(mx, BOB) == []
    dns_server.heal("sender.example")
    send_mx(mx, message())
    (stored,) = stored_messages(mx, BOB)
    assert "spf=pass" in auth_results(stored)


def test_submission_is_not_checked(mx: Any, dns_server: DnsServer) -> None:
    with smtplib.SMTP(mx.host, mx.port("submission")) as s:
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, [BOB], f"From: {ALICE}\r\nSubject: internal\r\n\r\nhi\r\n".encode())
    (stored,) = stored_messages(mx, BOB)
    assert b"Authentication-Results" not in stored
    assert dns_server.queries == []


def test_large_signed_message_is_rewritten_intact(
    mx: Any, dns_server: DnsServer, rsa_key: tuple[bytes, str]
) -> None:
    """Over the staging buffer (64 KiB), the header is rewritten into a new temp file."""
    pem, record = rsa_key
    publish(dns_server, record, spf="v=spf1 ip4:127.0.0.1 -all", dmarc="v=DMARC1; p=reject")
    body = "".join(f"line {n:06d} of a long message\r\n" for n in range(20000))
    raw = signed(pem, message(subject="Big", body=body))
    send_mx(mx, raw)
    (stored,) = stored_messages(mx, BOB)
    assert stored.endswith(raw)  # every signed byte kept, ours only added above
    assert "dkim=pass" in auth_results(stored)
    assert dkim.verify(stored, dnsfunc=lambda name, timeout=5: record.encode())
