"""[capture] configuration: defaults, environment names, validation, `serve --capture`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright import config as mwconfig
from mailwright.cli.serve import capture_config


def load(tmp_path: Path, **env: str) -> mwconfig.Config:
    return mwconfig.load(None, tmp_path, {"MAILWRIGHT_HOSTNAME": "mail.test", **env})


def test_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path).capture
    assert not cfg.enabled
    assert not cfg.accept_any_auth
    assert (cfg.account, cfg.password, cfg.imap) == ("captured@capture.test", "captured",
                                                     "catch-all")
    assert (cfg.rcpt_fail_rate, cfg.data_fail_rate, cfg.fail_code, cfg.reply_delay) == (
        0.0, 0.0, 451, 0.0)


def test_environment(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, MAILWRIGHT_CAPTURE="true", MAILWRIGHT_CAPTURE_ACCEPT_ANY_AUTH="1",
        MAILWRIGHT_CAPTURE_IMAP="per-domain", MAILWRIGHT_CAPTURE_ACCOUNT="sink@dev.test",
        MAILWRIGHT_CAPTURE_RCPT_FAIL_RATE="0.25", MAILWRIGHT_CAPTURE_REPLY_DELAY="1.5",
    ).capture
    assert cfg.enabled
    assert cfg.accept_any_auth
    assert cfg.imap == "per-domain"
    assert cfg.account == "sink@dev.test"
    assert cfg.rcpt_fail_rate == 0.25
    assert cfg.reply_delay == 1.5


def test_file(tmp_path: Path) -> None:
    toml = tmp_path / "mw.toml"
    toml.write_text('[capture]\nenabled = true\nimap = "per-domain"\nfail_code = 554\n')
    cfg = mwconfig.load(toml, tmp_path, {"MAILWRIGHT_HOSTNAME": "mail.test"}).capture
    assert (cfg.enabled, cfg.imap, cfg.fail_code) == (True, "per-domain", 554)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("IMAP", "per-user", "capture.imap"), ("RCPT_FAIL_RATE", "1.5", "capture.rcpt_fail_rate"),
     ("FAIL_CODE", "250", "capture.fail_code"), ("ACCOUNT", "nobody", "capture.account"),
     ("PASSWORD", "", "capture.password"), ("ENABLED", "maybe", "capture.enabled")],
)
def test_invalid(tmp_path: Path, key: str, value: str, message: str) -> None:
    with pytest.raises(mwconfig.ConfigError, match=message):
        load(tmp_path, **{f"MAILWRIGHT_CAPTURE_{key}": value})


def test_serve_capture_turns_capture_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_HOSTNAME", "mail.test")
    monkeypatch.delenv("MAILWRIGHT_CAPTURE", raising=False)
    monkeypatch.delenv("MAILWRIGHT_LISTEN_HTTP", raising=False)
    cfg = capture_config(None, tmp_path)
    assert cfg.capture.enabled
    assert "http" in cfg.listeners  # the web inbox comes with it (docs/web.md)
    monkeypatch.setenv("MAILWRIGHT_LISTEN_HTTP", "")
    assert "http" not in capture_config(None, tmp_path).listeners
