"""Self-signed certificate on first run, reuse afterwards, and one-line errors for bad files."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from mailwright import config as mwconfig
from mailwright.config import ConfigError
from mailwright.net.tls import (
    client_context,
    ensure_certificate,
    load_server_context,
    server_context,
)


def make_config(tmp_path: Path, **env: str) -> mwconfig.Config:
    return mwconfig.load(None, tmp_path, {"MAILWRIGHT_HOSTNAME": "mx.example.test", **env})


def test_first_run_makes_a_certificate_for_hostname_and_loopback(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert ensure_certificate(config)
    cert = x509.load_pem_x509_certificate(config.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"mx.example.test", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
    }
    assert stat.S_IMODE(config.key_path.stat().st_mode) == 0o600
    assert client_context(config.cert_path).check_hostname


def test_second_run_reuses_the_certificate(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    load_server_context(config)
    first = config.cert_path.read_bytes()
    assert not ensure_certificate(config)
    load_server_context(config)
    assert config.cert_path.read_bytes() == first


def test_operator_named_missing_certificate_is_one_line_error(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        MAILWRIGHT_TLS_CERT=str(tmp_path / "nope.pem"),
        MAILWRIGHT_TLS_KEY=str(tmp_path / "nope.key"),
    )
    with pytest.raises(ConfigError, match="file not found") as info:
        load_server_context(config)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "nope.pem").exists()  # never invented for the operator


def test_mismatched_key_is_one_line_error(tmp_path: Path) -> None:
    a, b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    ensure_certificate(a)
    ensure_certificate(b)
    with pytest.raises(ConfigError, match="TLS: invalid certificate") as info:
        server_context(a.cert_path, b.key_path)
    assert "\n" not in str(info.value)


def test_unreadable_key_is_one_line_error(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    ensure_certificate(config)
    config.key_path.write_text("garbage")
    with pytest.raises(ConfigError, match="TLS:"):
        server_context(config.cert_path, config.key_path)
