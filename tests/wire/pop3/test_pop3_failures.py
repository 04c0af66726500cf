"""Server-side failures: storage errors become -ERR [SYS/TEMP] and commit nothing; a bug closes
only the connection that hit it, releases its lock and leaves the server serving others."""

from __future__ import annotations

import poplib
from collections.abc import Sequence
from pathlib import Path

import pytest
from pop3_wire import ALICE, PASSWORD, Pop3Env, message

from mailwright.store.api import StorageUnavailable


def test_commit_failure_replies_sys_temp_and_keeps_messages(pop3: Pop3Env) -> None:
    pop3.deliver(message(1))
    store = pop3.server.store

    async def unavailable(account_id: int, uids: Sequence[int], policy: str) -> None:
        raise StorageUnavailable("disk full")

    store.pop3_commit = unavailable  # type: ignore[method-assign]
    try:
        client = pop3.login()
        client.dele(1)
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[SYS/TEMP\]"):
            client.quit()
        client.close()
    finally:
        del store.pop3_commit  # type: ignore[attr-defined]
    client = pop3.login()  # lock released
    try:
        assert client.stat()[0] == 1
    finally:
        client.quit()


def test_storage_unavailable_at_login_is_sys_temp(pop3: Pop3Env) -> None:
    store = pop3.server.store

    def unavailable(account_id: int) -> list[object]:
        raise StorageUnavailable("database locked")

    store.pop3_messages = unavailable  # type: ignore[method-assign]
    try:
        client = pop3.pop()
        try:
            client.user(ALICE)
            with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
                client.pass_(PASSWORD)
        finally:
            client.quit()
    finally:
        del store.pop3_messages  # type: ignore[attr-defined]
    pop3.login().quit()  # the failed attempt left no lock behind


def test_missing_message_file_is_sys_temp_not_a_crash(pop3: Pop3Env, tmp_path: Path) -> None:
    pop3.deliver(message(1))
    store = pop3.server.store
    store.blob_path = lambda blob: tmp_path / "missing"  # type: ignore[method-assign]
    try:
        client = pop3.login()
        try:
            with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
                client.retr(1)
            assert client.noop().startswith(b"+OK")
        finally:
            client.quit()
    finally:
        del store.blob_path  # type: ignore[attr-defined]


def test_bug_closes_one_connection_and_server_keeps_running(
    pop3: Pop3Env, caplog: pytest.LogCaptureFixture
) -> None:
    pop3.deliver(message(1))
    store = pop3.server.store

    def broken(account_id: int) -> list[object]:
        raise RuntimeError("simulated bug")

    store.pop3_messages = broken  # type: ignore[method-assign]
    try:
        client = pop3.pop()
        try:
            client.user(ALICE)
            with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\] Internal server error"):
                client.pass_(PASSWORD)
        finally:
            client.close()
    finally:
        del store.pop3_messages  # type: ignore[attr-defined]
    assert "simulated bug" in caplog.text
    assert PASSWORD not in caplog.text
    client = pop3.login()  # the lock taken before the bug was released
    try:
        assert client.stat()[0] == 1
    finally:
        client.quit()
