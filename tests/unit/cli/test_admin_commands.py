"""Admin commands through typer's runner: domains, accounts, aliases, passwords, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailwright.auth.passwords import verify_password
from mailwright.cli.app import app
from mailwright.store import open_store


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MAILWRIGHT_* settings must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("MAILWRIGHT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def mw(data: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--data", str(data)], input=stdin)


def password_hash(data: Path, address: str) -> str:
    store = open_store(data)
    try:
        found = store.get_credentials(address)
        assert found is not None
        return found[1]
    finally:
        store.close()


def test_domain_add_list_remove(data: Path) -> None:
    assert mw(data, "domain", "add", "example.test").exit_code == 0
    assert mw(data, "domain", "add", "b.example").exit_code == 0
    listed = mw(data, "domain", "list")
    assert listed.exit_code == 0
    assert sorted(listed.stdout.split()) == ["b.example", "example.test"]
    assert mw(data, "domain", "remove", "b.example").exit_code == 0
    assert mw(data, "domain", "list").stdout.split() == ["example.test"]


def test_account_add_with_password_stdin_hashes_with_argon2id(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    result = mw(data, "account", "add", "alice@example.test", "--password-stdin",
                stdin="s3cret pass\n")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    stored = password_hash(data, "alice@example.test")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "s3cret pass")  # the newline is not part of the password


def test_account_add_prompts_twice_without_password_stdin(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    mismatch = mw(data, "account", "add", "bob@example.test", stdin="one\ntwo\nthree\nthree\n")
    assert mismatch.exit_code == 0, mismatch.output  # asked again after the mismatch
    assert verify_password(password_hash(data, "bob@example.test"), "three")


def test_account_list_shows_a_table_with_policy_and_aliases(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    mw(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    mw(data, "account", "add", "bob@example.test", "--password-stdin", "--pop3-policy", "keep",
       stdin="pw\n")
    assert mw(data, "alias", "add", "info@example.test", "alice@example.test").exit_code == 0
    result = mw(data, "account", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    alice = next(line for line in lines if "alice@example.test" in line)
    bob = next(line for line in lines if "bob@example.test" in line)
    assert "delete" in alice
    assert "info@example.test" in alice
    assert " 0 " in alice
    assert "keep" in bob
    assert "Address" in result.stdout
    assert "POP3 policy" in result.stdout


def test_account_passwd_changes_the_hash(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    mw(data, "account", "add", "alice@example.test", "--password-stdin", stdin="old\n")
    result = mw(data, "account", "passwd", "alice@example.test", "--password-stdin", stdin="new\n")
    assert result.exit_code == 0, result.output
    stored = password_hash(data, "alice@example.test")
    assert verify_password(stored, "new")
    assert not verify_password(stored, "old")


def test_account_policy_and_remove(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    mw(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    assert mw(data, "account", "policy", "alice@example.test", "keep").exit_code == 0
    assert "keep" in mw(data, "account", "list").stdout
    refused = mw(data, "account", "remove", "alice@example.test", stdin="n\n")
    assert refused.exit_code == 1
    assert mw(data, "account", "remove", "alice@example.test", "--yes").exit_code == 0
    assert "alice@example.test" not in mw(data, "account", "list").stdout


def test_alias_add_list_remove(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    mw(data, "account", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    assert mw(data, "alias", "add", "postmaster@example.test", "alice@example.test").exit_code == 0
    assert mw(data, "alias", "list").stdout == "postmaster@example.test -> alice@example.test\n"
    assert mw(data, "alias", "remove", "postmaster@example.test").exit_code == 0
    assert mw(data, "alias", "list").stdout == ""


@pytest.mark.parametrize(
    ("setup", "command"),
    [
        ([], ["account", "add", "alice@nowhere.test", "--password-stdin"]),
        ([["domain", "add", "example.test"]], ["domain", "add", "example.test"]),
        ([], ["domain", "remove", "missing.test"]),
        ([], ["account", "passwd", "ghost@example.test", "--password-stdin"]),
        ([], ["account", "remove", "ghost@example.test", "--yes"]),
        ([], ["domain", "add", "not a domain"]),
    ],
)
def test_store_errors_are_one_line_and_exit_1(
    data: Path, setup: list[list[str]], command: list[str]
) -> None:
    for args in setup:
        assert mw(data, *args).exit_code == 0
    result = mw(data, *command, stdin="pw\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("mailwright: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_empty_password_is_refused(data: Path) -> None:
    mw(data, "domain", "add", "example.test")
    result = mw(data, "account", "add", "alice@example.test", "--password-stdin", stdin="\n")
    assert result.exit_code == 1
    assert result.stderr == "mailwright: error: the password is empty\n"


def test_data_directory_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILWRIGHT_DATA", str(tmp_path / "envdata"))
    result = CliRunner().invoke(app, ["domain", "add", "example.test"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "envdata" / "mailwright.db").exists()


def test_data_directory_from_config_file(tmp_path: Path) -> None:
    config = tmp_path / "mailwright.toml"
    config.write_text(f'data = "{tmp_path / "cfgdata"}"\n')
    result = CliRunner().invoke(app, ["domain", "add", "example.test", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cfgdata" / "mailwright.db").exists()


def test_bad_config_file_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "mailwright.toml"
    config.write_text("colour = 'blue'\n")
    result = CliRunner().invoke(app, ["domain", "list", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr == "mailwright: error: unknown configuration key colour\n"


def test_admin_commands_do_not_need_a_certificate(data: Path) -> None:
    assert mw(data, "domain", "add", "example.test").exit_code == 0
    assert not (data / "tls").exists()
