"""DkimSigner and the key files: signatures verify with dkimpy against keys published in real DNS.

Keys are real (cryptography), published in the test DNS server (tests/support/dnsserver.py)
and fetched back over UDP/TCP by dnspython, as a receiving MTA does.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from support.dkim_verify import signature_tags, txt_lookup, verify_each
from support.dnsserver import DnsServer

from mailwright.mailauth.dkim_sign import DkimSigner, signed_header_list
from mailwright.mailauth.keys import (
    DkimKey,
    DkimKeyError,
    DnsRecord,
    dns_record,
    generate_key,
    list_keys,
)

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: quarterly numbers\r\n"
    b"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"X-Mailer: test\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"the numbers are up.\r\n"
)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "dkim"


def publish(dns: DnsServer, key: DkimKey) -> DnsRecord:
    record = dns_record(key)
    dns.add(record.name, "TXT", record.value)
    return record


def test_dual_signed_mail_verifies_against_keys_in_dns(
    keys_dir: Path, dns_server: DnsServer
) -> None:
    publish(dns_server, generate_key(keys_dir, "example.org", "mw-ed25519", "ed25519"))
    publish(dns_server, generate_key(keys_dir, "example.org", "mw-rsa", "rsa"))

    signatures = DkimSigner(keys_dir).sign(MESSAGE, domain="example.org")
    signed = signatures + MESSAGE

    tags = signature_tags(signed)
    assert [(t[b"a"], t[b"s"], t[b"d"]) for t in tags] == [
        (b"ed25519-sha256", b"mw-ed25519", b"example.org"),
        (b"rsa-sha256", b"mw-rsa", b"example.org"),
    ]
    assert all(t[b"c"] == b"relaxed/relaxed" for t in tags)
    assert verify_each(signed, txt_lookup(dns_server)) == [True, True]
    assert ("mw-rsa._domainkey.example.org", "TXT") in dns_server.queries


def test_signature_lines_are_crlf_folded_headers(keys_dir: Path) -> None:
    generate_key(keys_dir, "example.org", "mw", "rsa")
    signatures = DkimSigner(keys_dir).sign(MESSAGE, domain="example.org")
    assert signatures.startswith(b"DKIM-Signature: ")
    assert signatures.endswith(b"\r\n")
    lines = signatures[:-2].split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert all(line.startswith(b" ") for line in lines[1:])  # continuation lines (RFC 5322 2.2.3)
    assert all(len(line) <= 78 for line in lines)


def test_domain_without_key_gets_no_signature(keys_dir: Path) -> None:
    signer = DkimSigner(keys_dir)
    assert signer.sign(MESSAGE, domain="example.org") == b""  # no dkim directory at all
    generate_key(keys_dir, "other.example", "mw", "ed25519")
    assert signer.sign(MESSAGE, domain="example.org") == b""
    assert signer.sign(MESSAGE, domain="not a domain") == b""


def test_key_made_after_first_use_signs_the_next_message(
    keys_dir: Path, dns_server: DnsServer
) -> None:
    signer = DkimSigner(keys_dir)
    assert signer.sign(MESSAGE, domain="example.org") == b""

    publish(dns_server, generate_key(keys_dir, "example.org", "one", "ed25519"))
    first = signer.sign(MESSAGE, domain="example.org")
    assert [t[b"s"] for t in signature_tags(first + MESSAGE)] == [b"one"]

    # The domain's keys are cached now; a second key must still be seen at once.
    publish(dns_server, generate_key(keys_dir, "example.org", "two", "rsa"))
    both = signer.sign(MESSAGE, domain="example.org") + MESSAGE
    assert [t[b"s"] for t in signature_tags(both)] == [b"one", b"two"]
    assert verify_each(both, txt_lookup(dns_server)) == [True, True]


def test_removed_key_stops_signing(keys_dir: Path) -> None:
    signer = DkimSigner(keys_dir)
    keep = generate_key(keys_dir, "example.org", "keep", "ed25519")
    gone = generate_key(keys_dir, "example.org", "gone", "ed25519")
    assert len(signature_tags(signer.sign(MESSAGE, domain="example.org") + MESSAGE)) == 2
    gone.path.unlink()
    tags = signature_tags(signer.sign(MESSAGE, domain="example.org") + MESSAGE)
    assert [t[b"s"] for t in tags] == [keep.selector.encode()]


def test_cached_keys_survive_an_old_unchanged_directory(keys_dir: Path) -> None:
    """Past the racy window the cache answers from one stat(): the key file is not re-read."""
    key = generate_key(keys_dir, "example.org", "mw", "ed25519")
    old = 1_000_000_000_000_000_000  # 2001: far outside the racy window
    os.utime(keys_dir / "example.org", ns=(old, old))
    signer = DkimSigner(keys_dir)
    assert signer.sign(MESSAGE, domain="example.org") != b""
    # Unreadable now, yet still signing: the parsed key came from the cache.
    key.path.write_bytes(b"garbage")
    os.utime(keys_dir / "example.org", ns=(old, old))
    assert signer.sign(MESSAGE, domain="example.org") != b""


def test_domain_name_is_case_insensitive(keys_dir: Path, dns_server: DnsServer) -> None:
    publish(dns_server, generate_key(keys_dir, "Example.ORG", "mw", "ed25519"))
    signed = DkimSigner(keys_dir).sign(MESSAGE, domain="EXAMPLE.org") + MESSAGE
    assert signature_tags(signed)[0][b"d"] == b"example.org"
    assert verify_each(signed, txt_lookup(dns_server)) == [True]


def test_bad_key_file_is_skipped_not_fatal(keys_dir: Path, dns_server: DnsServer) -> None:
    publish(dns_server, generate_key(keys_dir, "example.org", "good", "ed25519"))
    (keys_dir / "example.org" / "broken.rsa.pem").write_bytes(b"not a key\n")
    signed = DkimSigner(keys_dir).sign(MESSAGE, domain="example.org") + MESSAGE
    assert [t[b"s"] for t in signature_tags(signed)] == [b"good"]
    assert verify_each(signed, txt_lookup(dns_server)) == [True]


def test_from_is_oversigned_so_an_added_from_breaks_the_signature(
    keys_dir: Path, dns_server: DnsServer
) -> None:
    publish(dns_server, generate_key(keys_dir, "example.org", "mw", "ed25519"))
    signatures = DkimSigner(keys_dir).sign(MESSAGE, domain="example.org")
    names = [n.strip() for n in signature_tags(signatures + MESSAGE)[0][b"h"].split(b":")]
    assert names.count(b"from") == 2
    assert b"x-mailer" not in names

    lookup = txt_lookup(dns_server)
    assert verify_each(signatures + MESSAGE, lookup) == [True]
    forged = signatures + b"From: ceo@example.org\r\n" + MESSAGE
    assert verify_each(forged, lookup) == [False]
    altered = signatures + MESSAGE.replace(b"are up", b"are down")
    assert verify_each(altered, lookup) == [False]


def test_relaxed_canonicalization_survives_refolding_and_trailing_space(
    keys_dir: Path, dns_server: DnsServer
) -> None:
    publish(dns_server, generate_key(keys_dir, "example.org", "mw", "rsa"))
    signatures = DkimSigner(keys_dir).sign(MESSAGE, domain="example.org")
    # What relays do: refold a header, change whitespace runs, add trailing blanks.
    relayed = (
        MESSAGE.replace(b"Subject: quarterly numbers", b"Subject:  quarterly\r\n\tnumbers")
        .replace(b"Hello Bob,", b"Hello   Bob,  ")
    )
    assert verify_each(signatures + relayed, txt_lookup(dns_server)) == [True]


def test_signed_header_list_signs_each_present_instance_plus_one_from() -> None:
    headers = [
        (b"From", b"a"),
        (b"Received", b"x"),
        (b"To", b"b"),
        (b"to", b"c"),
        (b"Subject", b"s"),
        (b"X-Spam", b"y"),
    ]
    assert signed_header_list(headers) == [b"from", b"to", b"to", b"subject", b"from"]
    assert signed_header_list([]) == [b"from"]


# ----- key files ----------------------------------------------------------------------------------
def test_key_files_are_private_and_listed(keys_dir: Path) -> None:
    ed = generate_key(keys_dir, "example.org", "mw-ed25519", "ed25519")
    rsa = generate_key(keys_dir, "example.org", "mw-rsa", "rsa")
    assert ed.path == keys_dir / "example.org" / "mw-ed25519.ed25519.pem"
    assert rsa.path == keys_dir / "example.org" / "mw-rsa.rsa.pem"
    for path in (ed.path, rsa.path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((keys_dir / "example.org").stat().st_mode) == 0o700
    assert sorted(os.listdir(keys_dir / "example.org")) == [ed.path.name, rsa.path.name]
    assert list_keys(keys_dir) == [ed, rsa]
    assert list_keys(keys_dir, "example.org") == [ed, rsa]
    assert list_keys(keys_dir / "missing") == []


def test_a_selector_holds_one_key(keys_dir: Path) -> None:
    first = generate_key(keys_dir, "example.org", "mw", "ed25519")
    before = first.path.read_bytes()
    with pytest.raises(DkimKeyError, match="already has a key with selector mw"):
        generate_key(keys_dir, "example.org", "MW", "rsa")
    assert first.path.read_bytes() == before
    assert [k.selector for k in list_keys(keys_dir)] == ["mw"]


@pytest.mark.parametrize(
    ("domain", "selector"),
    [("localhost", "mw"), ("exa mple.org", "mw"), ("../etc", "mw"), ("example.org", "a/b"),
     ("example.org", ""), ("example.org", "-x")],
)
def test_bad_names_are_refused(keys_dir: Path, domain: str, selector: str) -> None:
    with pytest.raises(DkimKeyError):
        generate_key(keys_dir, domain, selector, "ed25519")
    assert not keys_dir.exists() or list_keys(keys_dir) == []


def test_dns_records_follow_rfc_6376_and_8463(keys_dir: Path) -> None:
    ed = dns_record(generate_key(keys_dir, "example.org", "e", "ed25519"))
    rsa = dns_record(generate_key(keys_dir, "example.org", "r", "rsa"))
    assert ed.name == "e._domainkey.example.org"
    assert ed.value.startswith("v=DKIM1; k=ed25519; p=")
    assert len(ed.value.removeprefix("v=DKIM1; k=ed25519; p=")) == 44  # 32 octets, base64
    assert rsa.value.startswith("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")  # 2048 SPKI
    # A zone-file line cuts the long RSA text into character-strings of at most 255 octets.
    zone = rsa.zone_line()
    assert zone.startswith("r._domainkey.example.org. 3600 IN TXT ")
    strings = re.findall(r'"([^"]*)"', zone)
    assert [len(s) for s in strings] == [255, len(rsa.value) - 255]
    assert "".join(strings) == rsa.value
