"""`mailwright check [--repair]` through typer's runner: table, summary and exit codes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailwright.cli.app import app
from mailwright.store import Envelope, open_store

MESSAGE = b"From: a@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MAILWRIGHT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILWRIGHT_HOSTNAME", "mx.example.test")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = open_store(data)
    try:
        store.add_domain("example.test")
        alice = store.add_account("alice@example.test", "hash")

        async def deliver() -> None:
            staged = store.stage()
            staged.write(MESSAGE)
            await store.deliver(staged, Envelope("a@remote.test"), [alice.id], [])

        asyncio.run(deliver())
    finally:
        store.close()
    return data


def mw(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["check", *args, "--data", str(data)])


def test_clean_store_exits_0(data: Path) -> None:
    result = mw(data)
    assert result.exit_code == 0, result.output
    assert "1 message(s)" in result.output
    assert "clean" in result.output


def test_leftover_is_reported_then_repaired(data: Path) -> None:
    (data / "tmp" / "deadbeef.tmp").write_bytes(b"partial")
    found = mw(data)
    assert found.exit_code == 1, found.output
    assert "temp-file" in found.output
    assert "tmp/deadbeef.tmp" in found.output
    assert "repairable (--repair)" in found.output
    repaired = mw(data, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "1 repaired, 0 remain" in repaired.output
    assert mw(data).exit_code == 0


def test_lost_message_file_exits_1_even_with_repair(data: Path) -> None:
    for path in (data / "blobs").rglob("*"):
        if path.is_file():
            path.unlink()
    result = mw(data, "--repair")
    assert result.exit_code == 1, result.output
    assert "missing-file" in result.output
    assert "cannot repair" in result.output
    assert "alice@example.test/INBOX UID 1" in result.output


def test_no_store_exits_2(tmp_path: Path) -> None:
    result = mw(tmp_path / "empty")
    assert result.exit_code == 2
    assert "no store" in result.output
