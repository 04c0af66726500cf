"""DkimSigner and the key files: signatures verify with dkimpy against keys published in real DNS.

Keys are real (cryptography), published in the test DNS server (tests/support/dnsserver.py)
and fetched back over UDP/TCP by dnspython, as a receiving MTA does. Our signer (RFC 6376 on
`cryptography`) is also held to dkimpy's own sign(): byte for byte the same field, on fixed
edge cases and on Hypothesis-made messages.
"""

from __future__ import annotations

import base64
import os
import re
import stat
import types
from collections.abc import Iterator
from pathlib import Path

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.dkim_verify import signature_tags, txt_lookup, verify_each
from support.dnsserver import DnsServer

from mailwright.mailauth.dkim_sign import (
    CANONICALIZE,
    DkimSigner,
    fold,
    relaxed_body,
    signed_header_list,
)
from mailwright.mailauth.keys import (
    DkimKey,
    DkimKeyError,
    DnsRecord,
    dns_record,
    generate_key,
    list_keys,
    load_private_key,
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


# ----- our RFC 6376 signer against dkimpy ---------------------------------------------------------
NOW = 1_750_000_000  # t= for both signers


@pytest.fixture(scope="module")
def shared_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DkimKey]]:
    """One RSA and one Ed25519 key for the module: RSA generation costs ~0.1 s."""
    keys_dir = tmp_path_factory.mktemp("shared") / "dkim"
    keys = [
        generate_key(keys_dir, "example.org", "mw-ed25519", "ed25519"),
        generate_key(keys_dir, "example.org", "mw-rsa", "rsa"),
    ]
    return keys_dir, keys


@pytest.fixture
def published(shared_keys: tuple[Path, list[DkimKey]], dns_server: DnsServer) -> DnsServer:
    """The test DNS server with both shared keys in it."""
    for key in shared_keys[1]:
        publish(dns_server, key)
    return dns_server


@pytest.fixture
def frozen_dkimpy() -> Iterator[None]:
    """dkimpy's t= from NOW (its module's `time` only, not the process clock)."""
    real = dkim.time
    dkim.time = types.SimpleNamespace(time=lambda: NOW)
    yield
    dkim.time = real


def dkimpy_signatures(message: bytes, keys: list[DkimKey]) -> bytes:
    """What dkimpy's own sign() writes for these keys (its key forms: PKCS#1 PEM, seed)."""
    out = b""
    for key in keys:
        private = load_private_key(key)
        if isinstance(private, ed25519.Ed25519PrivateKey):
            form = base64.b64encode(private.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption()))
        else:
            form = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption())
        parsed = dkim.DKIM(message, linesep=b"\r\n")
        out += parsed.sign(
            key.selector.encode(), key.domain.encode(), form,
            signature_algorithm=key.signature_algorithm, canonicalize=CANONICALIZE,
            include_headers=signed_header_list(parsed.headers),
        )
    return out


EDGE_CASES = {
    "folded-headers": b"From: Alice\r\n <alice@example.org>\r\nSubject: a\r\n\tlong\r\n"
    b"  subject\r\nTo: b@example.net\r\n\r\nHi\r\n",
    "whitespace-runs": b"From:   alice@example.org  \r\nSubject:\t x \t y\t\r\n\r\n"
    b"a  \t b\r\n  lead\r\ntrail \t\r\n",
    "empty-body": b"From: alice@example.org\r\nSubject: nothing\r\n\r\n",
    "no-body-separator": b"From: alice@example.org\r\nSubject: headers only\r\n",
    "blank-lines-at-end": b"From: alice@example.org\r\n\r\nbody\r\n\r\n \r\n\t\r\n\r\n",
    "body-of-blank-lines": b"From: alice@example.org\r\n\r\n\r\n\r\n\r\n",
    "no-final-crlf": b"From: alice@example.org\r\n\r\nlast line  ",
    "8bit": "From: Zoë <zoe@example.org>\r\nSubject: café\r\n\r\nÉté — ünïcödé\r\n".encode()
    + b"\xff\xfe raw octets\r\n",
    "bare-lf": b"From: alice@example.org\nSubject: unix\n\nline one\nline two \n",
    "lone-cr": b"From: alice@example.org\r\n\r\nhalf\rline\r\n",
    "repeated-fields": b"From: a@example.org\r\nTo: one\r\nTo: two\r\nFrom: b@example.org\r\n"
    b"Received: x\r\nto: three\r\n\r\nbody\r\n",
    "mbox-from-line": b"From alice@example.org Mon Jun  2 10:00:00 2025\r\n"
    b"From: alice@example.org\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_signatures_are_dkimpys_byte_for_byte_and_verify(
    name: str,
    shared_keys: tuple[Path, list[DkimKey]],
    published: DnsServer,
    frozen_dkimpy: None,
) -> None:
    keys_dir, keys = shared_keys
    message = EDGE_CASES[name]
    ours = DkimSigner(keys_dir).sign(message, domain="example.org", now=NOW)
    assert ours == dkimpy_signatures(message, keys)
    assert verify_each(ours + message, txt_lookup(published)) == [True, True]


_WSP = st.sampled_from([" ", "\t", "  ", " \t "])
_WORD = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from("éü—€"),
    min_size=1, max_size=12,
)


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    """A field value: words, WSP runs, folds (CRLF + WSP), maybe trailing WSP."""
    out = draw(st.sampled_from(["", " ", "  ", "\t"]))
    for word in draw(st.lists(_WORD, min_size=1, max_size=6)):
        out += word + draw(st.sampled_from([" ", "\r\n ", "\r\n\t", "   "]) | _WSP)
    return out.rstrip("\r\n\t ").encode() + draw(st.sampled_from([b"", b" ", b"\t "]))


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    names = st.sampled_from([b"To", b"Cc", b"Subject", b"subject", b"Date", b"Message-ID",
                             b"Received", b"X-Mailer", b"From", b"MIME-Version", b"References"])
    fields = [(b"From", b" alice@example.org")]
    fields += draw(st.lists(st.tuples(names, header_value()), max_size=8))
    head = b"".join(name + b":" + value + b"\r\n" for name, value in draw(st.permutations(fields)))
    line = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
    line = line | st.sampled_from([b"", b" ", b"\t", b"x  ", b"a \t b", b".", b"\xc3\xa9t\xc3\xa9"])
    ends = st.sampled_from([b"\r\n"] * 6 + [b"\n", b"\r\r\n"])
    body = b"".join(draw(line) + draw(ends) for _ in range(draw(st.integers(0, 8))))
    body += draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"tail", b"tail \t"]))
    return head + b"\r\n" + body


@settings(
    max_examples=60,
    deadline=None,  # a loaded machine; each example also asks the DNS server
    # The keys, the published records and the frozen dkimpy clock are the same for every
    # example, so sharing the function-scoped fixtures is right here.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(message=messages())
def test_any_message_signs_as_dkimpy_and_verifies(
    message: bytes,
    shared_keys: tuple[Path, list[DkimKey]],
    published: DnsServer,
    frozen_dkimpy: None,
) -> None:
    keys_dir, keys = shared_keys
    ours = DkimSigner(keys_dir).sign(message, domain="example.org", now=NOW)
    assert ours == dkimpy_signatures(message, keys)
    assert verify_each(ours + message, txt_lookup(published)) == [True, True]


def test_malformed_header_section_is_not_signed(keys_dir: Path) -> None:
    generate_key(keys_dir, "example.org", "mw", "ed25519")
    signer = DkimSigner(keys_dir)
    assert signer.sign(b" continuation first\r\nFrom: a@example.org\r\n\r\nx\r\n",
                       domain="example.org") == b""
    assert signer.sign(b"From: a@example.org\r\nno colon here\r\n\r\nx\r\n",
                       domain="example.org") == b""


# A throwaway 512-bit key (openssl genrsa 512): too short to sign with (RFC 8301 3.2).
SHORT_RSA = b"""-----BEGIN RSA PRIVATE KEY-----
MIIBOwIBAAJBAJv21MC+FZhPm78OdGALjISEQhNKfqjPie4bAdsAYyfiG4BFc1fa
pHjYt/eT0r3MFpHi3e7SHlFNcTN37FdpqNsCAwEAAQJAeL5KDYHblBQlnm8hV235
dmoyAV9N2YD65pSQBi0xlqC3Y7ooJG0S1IdkpnoYTj6v+WpnT7Ln22OInLS+JU9o
OQIhAM3vCqAAC0IUkNmQ7LsD+JJ7526qG746kebhvYk0kQH/AiEAweHFN7pVwM64
3/DIeHldA2Q+NG5K1cgYMXMMMA3NoSUCIQDM3lgloKWSkb8gkorP6j1qDRXKBDUh
ZEct97mFO+RepQIhAIGyh1zFQNJPN6tPBrxY65j2OQqX8WXbihuiS7fls/YlAiAr
VPCr3THG0em7ucHyf50fMl9m66KmGfXV+Ga3jTGuNQ==
-----END RSA PRIVATE KEY-----
"""


def test_rsa_key_under_1024_bits_is_skipped(keys_dir: Path) -> None:
    generate_key(keys_dir, "example.org", "good", "ed25519")
    (keys_dir / "example.org" / "short.rsa.pem").write_bytes(SHORT_RSA)
    tags = signature_tags(DkimSigner(keys_dir).sign(MESSAGE, domain="example.org") + MESSAGE)
    assert [t[b"s"] for t in tags] == [b"good"]


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n", b""),
        (b" \r\n\t\r\n", b""),
        (b"x", b"x\r\n"),
        (b"x \t y  \r\n\r\n", b"x y\r\n"),
        (b"  lead\r\n", b" lead\r\n"),
        (b"a\r\n\r\nb\r\n\r\n\r\n", b"a\r\n\r\nb\r\n"),
    ],
)
def test_relaxed_body_canonicalization_rfc_6376_3_4_4(body: bytes, canonical: bytes) -> None:
    assert relaxed_body(body) == canonical


def test_fold_never_leaves_a_line_of_white_space() -> None:
    # 71 octets after the break, then CRLF: dkimpy would emit " \r\n" as a line of its own.
    value = b" " + b"x" * 40 + b" " + b"b=" + b"A" * 69 + b"\r\n"
    folded = fold(value, len(b"DKIM-Signature"))
    assert folded.endswith(b"A\r\n")
    assert all(line.strip() for line in folded.split(b"\r\n")[:-1])
    assert folded.replace(b"\r\n ", b" ").replace(b"\r\n", b"") == value[:-2]
