"""`mailwright queue list | show | retry | delete | bounce` through typer's runner, on a data
directory whose queue was filled by the store's own deliver()."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mailwright.cli.app import app
from mailwright.store import Envelope, EnvelopeRecipient, open_store

BODY = (
    b"Return-Path: <alice@example.test>\r\nFrom: alice@example.test\r\n"
    b"Subject: queued\r\n\r\nx\r\n"
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MAILWRIGHT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MAILWRIGHT_HOSTNAME", "mx.example.test")
    monkeypatch.setenv("COLUMNS", "200")  # rich folds table cells to the terminal's width


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = open_store(data)
    try:
        store.add_domain("example.test")
        store.add_account("alice@example.test", "hash")

        async def queue() -> None:
            for rcpt in ("far@remote.test", "other@remote.test"):
                staged = store.stage()
                staged.write(BODY)
                await store.deliver(
                    staged, Envelope("alice@example.test", {"ENVID": "e1"}), [],
                    [EnvelopeRecipient(rcpt, {"NOTIFY": "FAILURE"})],
                )

        asyncio.run(queue())
        assert store.queue_retry(now=2_000_000_000.0) == 2  # both in the future
    finally:
        store.close()
    return data


def mw(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["queue", *args, "--data", str(data)])


def ids(data: Path) -> list[int]:
    store = open_store(data)
    try:
        return [e.id for e in store.queue_entries()]
    finally:
        store.close()


def test_list_and_show(data: Path) -> None:
    listed = mw(data, "list")
    assert listed.exit_code == 0, listed.output
    assert "far@remote.test" in listed.output
    assert "other@remote.test" in listed.output
    assert "alice@example.test" in listed.output
    first = ids(data)[0]
    shown = mw(data, "show", str(first))
    assert shown.exit_code == 0, shown.output
    assert "far@remote.test" in shown.output
    assert "NOTIFY=FAILURE" in shown.output
    assert "Subject: queued" in shown.output
    missing = mw(data, "show", "999")
    assert missing.exit_code == 1
    assert "no queued message with id 999" in missing.output


def test_retry_one_or_all(data: Path) -> None:
    first, second = ids(data)
    assert mw(data, "retry", str(first)).exit_code == 0
    store = open_store(data)
    try:
        entry = store.queue_entry(first)
        later = store.queue_entry(second)
        assert entry is not None
        assert later is not None
        assert entry.next_attempt < 2_000_000_000.0 == later.next_attempt
    finally:
        store.close()
    everything = mw(data, "retry", "--all")
    assert everything.exit_code == 0
    assert "2 queued recipient(s) due now" in everything.output
    assert mw(data, "retry").exit_code == 1  # neither an id nor --all
    assert mw(data, "retry", "999").exit_code == 1


def test_delete_drops_without_dsn(data: Path) -> None:
    first, second = ids(data)
    assert mw(data, "delete", str(first)).exit_code == 0
    assert ids(data) == [second]
    assert mw(data, "delete", str(first)).exit_code == 1
    store = open_store(data)
    try:
        alice = store.get_account("alice@example.test")
        assert alice is not None
        assert store.pop3_messages(alice.id) == []
    finally:
        store.close()


def test_bounce_sends_a_failure_dsn_to_the_local_sender(data: Path) -> None:
    first, second = ids(data)
    result = mw(data, "bounce", str(first))
    assert result.exit_code == 0, result.output
    assert ids(data) == [second]
    store = open_store(data)
    try:
        alice = store.get_account("alice@example.test")
        assert alice is not None
        [dsn] = store.pop3_messages(alice.id)
        raw = store.blob_path(dsn.blob).read_bytes()
    finally:
        store.close()
    assert raw.startswith(b"Return-Path: <>\r\n")
    assert b"message/delivery-status" in raw
    assert b"Action: failed" in raw
    assert b"far@remote.test" in raw
    assert b"Subject: queued" in raw
