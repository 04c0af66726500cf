from pathlib import Path

import pytest

from mailwright.config import ConfigError, Listen, load, parse_listen


def test_defaults_are_unprivileged_loopback_ports() -> None:
    config = load(environ={})
    assert config.listeners["smtp"] == Listen("127.0.0.1", 2525)
    assert config.listeners["imap"] == Listen("127.0.0.1", 2143)
    assert config.listeners["imaps"] == Listen("127.0.0.1", 2993)
    assert set(config.listeners) == {
        "smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"
    }
    assert all(listen.port > 1024 for listen in config.listeners.values())
    assert config.data_dir == Path("./data").absolute()


def test_environment_overrides_listeners_and_empty_turns_one_off() -> None:
    config = load(environ={"MAILWRIGHT_LISTEN_SMTP": "127.0.0.1:0", "MAILWRIGHT_LISTEN_POP3": ""})
    assert config.listeners["smtp"].port == 0
    assert "pop3" not in config.listeners


def test_imap_section_from_environment() -> None:
    config = load(
        environ={"MAILWRIGHT_LISTEN_IMAPS": "", "MAILWRIGHT_IMAP_MAX_MESSAGE_SIZE": "1000"}
    )
    assert "imaps" not in config.listeners
    assert config.imap.max_message_size == 1000
    assert config.imap.idle_timeout >= 1800  # RFC 9051 5.4


def test_file_then_environment_precedence(tmp_path: Path) -> None:
    path = tmp_path / "mailwright.toml"
    path.write_text(
        'hostname = "mx.example.test"\ndata = "/srv/mail"\n'
        '[listen]\nsmtp = "0.0.0.0:25"\n[smtp]\nmax_message_size = 1000\n'
        '[auth]\nallow_plaintext = true\n'
    )
    config = load(path, environ={"MAILWRIGHT_SMTP_MAX_MESSAGE_SIZE": "2000"})
    assert config.hostname == "mx.example.test"
    assert config.data_dir == Path("/srv/mail")
    assert config.listeners["smtp"] == Listen("0.0.0.0", 25)
    assert config.smtp.max_message_size == 2000
    assert config.auth.allow_plaintext is True


def test_explicit_data_dir_wins_over_environment(tmp_path: Path) -> None:
    config = load(data_dir=tmp_path, environ={"MAILWRIGHT_DATA": "/elsewhere"})
    assert config.data_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", "unknown configuration key bogus"),
        ("[smtp]\nmax_mesage_size = 1\n", "unknown configuration key smtp.max_mesage_size"),
        ("[listen]\nsmpt = \"127.0.0.1:25\"\n", "unknown configuration key listen.smpt"),
        ("[smtp]\nmax_recipients = \"many\"\n", "smtp.max_recipients: expected an integer"),
        ("[auth]\nallow_plaintext = \"maybe\"\n", "auth.allow_plaintext: expected true or false"),
        ("[listen]\nsmtp = \"nohost\"\n", "listen.smtp: expected host:port"),
        ("[listen]\nsmtp = \"127.0.0.1:99999\"\n", "out of range"),
        ("this is not toml", "config file"),
    ],
)
def test_bad_configuration_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, environ={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "absent.toml", environ={})


def test_ipv6_listen_address() -> None:
    assert parse_listen("[::1]:2525", "smtp") == Listen("::1", 2525)
    assert str(Listen("::1", 2525)) == "[::1]:2525"
