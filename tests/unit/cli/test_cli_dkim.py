"""`mailwright dkim`: the records it prints, published as printed in real DNS, verify the mail
the signer signs with the keys it wrote."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from support.dkim_verify import signature_tags, txt_lookup, verify_each
from support.dnsserver import DnsServer
from typer.testing import CliRunner, Result

from mailwright.cli.app import app
from mailwright.mailauth.dkim_sign import DkimSigner

MESSAGE = (
    b"From: alice@example.org\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: signed by the CLI's keys\r\n"
    b"\r\n"
    b"Hi.\r\n"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MAILWRIGHT_* settings must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("MAILWRIGHT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def mw(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--data", str(data)])


def printed_records(output: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of the plain `name:` / `value:` lines."""
    names = re.findall(r"^name:  (\S+)$", output, re.MULTILINE)
    values = re.findall(r"^value: (.+)$", output, re.MULTILINE)
    assert len(names) == len(values)
    return list(zip(names, values, strict=True))


def test_generate_prints_records_that_verify_signed_mail(
    data: Path, dns_server: DnsServer
) -> None:
    signer = DkimSigner(data / "dkim")  # as the running server holds it, used before the key
    assert signer.sign(MESSAGE, domain="example.org") == b""

    result = mw(data, "dkim", "generate", "example.org")
    assert result.exit_code == 0, result.output
    records = printed_records(result.output)
    assert [name for name, _ in records] == [
        "mw-ed25519._domainkey.example.org",
        "mw-rsa._domainkey.example.org",
    ]
    assert records[0][1].startswith("v=DKIM1; k=ed25519; p=")
    assert records[1][1].startswith("v=DKIM1; k=rsa; p=")
    for name, value in records:
        dns_server.add(name, "TXT", value)

    signed = signer.sign(MESSAGE, domain="example.org") + MESSAGE
    assert [t[b"s"] for t in signature_tags(signed)] == [b"mw-ed25519", b"mw-rsa"]
    assert verify_each(signed, txt_lookup(dns_server)) == [True, True]


def test_zone_line_is_the_same_record_split_into_strings(data: Path) -> None:
    result = mw(data, "dkim", "generate", "example.org", "--algorithm", "rsa")
    assert result.exit_code == 0, result.output
    [(name, value)] = printed_records(result.output)
    [zone] = re.findall(r"^zone:  (.+)$", result.output, re.MULTILINE)
    assert zone.startswith(f"{name}. 3600 IN TXT ")
    strings = re.findall(r'"([^"]*)"', zone)
    assert len(strings) == 2
    assert max(len(s) for s in strings) <= 255
    assert "".join(strings) == value


def test_selector_and_algorithm_options(data: Path, dns_server: DnsServer) -> None:
    result = mw(data, "dkim", "generate", "example.org", "--selector", "s2025",
                "--algorithm", "ed25519")
    assert result.exit_code == 0, result.output
    [(name, value)] = printed_records(result.output)
    assert name == "s2025._domainkey.example.org"
    assert "k=ed25519" in value
    key = data / "dkim" / "example.org" / "s2025.ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    dns_server.add(name, "TXT", value)
    signed = DkimSigner(data / "dkim").sign(MESSAGE, domain="example.org") + MESSAGE
    assert verify_each(signed, txt_lookup(dns_server)) == [True]


def test_default_selector_comes_from_the_config(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILWRIGHT_DKIM_SELECTOR", "june")
    result = mw(data, "dkim", "generate", "example.org", "--algorithm", "rsa")
    assert result.exit_code == 0, result.output
    assert printed_records(result.output)[0][0] == "june._domainkey.example.org"


def test_existing_selector_is_refused_and_the_key_kept(data: Path) -> None:
    assert mw(data, "dkim", "generate", "example.org").exit_code == 0
    key = data / "dkim" / "example.org" / "mw-rsa.rsa.pem"
    before = key.read_bytes()
    again = mw(data, "dkim", "generate", "example.org", "--algorithm", "rsa",
               "--selector", "mw-rsa")
    assert again.exit_code == 1
    assert "already has a key with selector mw-rsa" in again.stderr
    assert key.read_bytes() == before


def test_bad_domain_is_one_line_error(data: Path) -> None:
    result = mw(data, "dkim", "generate", "not_a domain")
    assert result.exit_code == 1
    assert result.stderr.startswith("mailwright: error: invalid domain")
    assert not (data / "dkim").exists()


def test_list_and_show(data: Path) -> None:
    empty = mw(data, "dkim", "list")
    assert empty.exit_code == 0
    assert "no DKIM keys" in empty.output

    made = mw(data, "dkim", "generate", "example.org")
    assert mw(data, "dkim", "generate", "b.example", "--algorithm", "ed25519").exit_code == 0
    listed = mw(data, "dkim", "list")
    assert listed.exit_code == 0, listed.output
    for text in ("example.org", "b.example", "mw-ed25519", "mw-rsa", "ed25519", "rsa"):
        assert text in listed.output

    shown = mw(data, "dkim", "show", "example.org")
    assert shown.exit_code == 0, shown.output
    assert printed_records(shown.output) == printed_records(made.output)
    missing = mw(data, "dkim", "show", "c.example")
    assert missing.exit_code == 1
    assert "no DKIM key for c.example" in missing.stderr
