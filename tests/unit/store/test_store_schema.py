"""Schema versioning and migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mailwright.store import SchemaTooNew, SqliteStore, open_store
from mailwright.store.schema import MIGRATIONS, SCHEMA_VERSION, current_version, migrate


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_fresh_store_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    store.close()
    conn = _conn(tmp_path / "data" / "mailwright.db")
    try:
        assert current_version(conn) == SCHEMA_VERSION == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {
            "schema_version",
            "domains",
            "accounts",
            "aliases",
            "mailboxes",
            "blobs",
            "messages",
            "expunged",
            "queue",
        } <= tables
    finally:
        conn.close()
    assert (tmp_path / "data" / "blobs").is_dir()
    assert (tmp_path / "data" / "tmp").is_dir()


def test_reopening_keeps_data_and_version(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.add_domain("example.test")
    store.close()
    store = open_store(tmp_path)
    try:
        assert store.list_domains() == ["example.test"]
    finally:
        store.close()


def test_new_migrations_are_applied_once_in_order(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "db")
    try:
        assert migrate(conn) == SCHEMA_VERSION
        extra = [
            *MIGRATIONS,
            ("CREATE TABLE later (x INTEGER)",),
            ("INSERT INTO later VALUES (1)",),
        ]
        assert migrate(conn, extra) == SCHEMA_VERSION + 2
        assert migrate(conn, extra) == SCHEMA_VERSION + 2  # idempotent
        assert conn.execute("SELECT count(*) FROM later").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
    finally:
        conn.close()


def test_failing_migration_changes_nothing(tmp_path: Path) -> None:
    conn = _conn(tmp_path / "db")
    try:
        migrate(conn)
        broken = [*MIGRATIONS, ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL")]
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, broken)
        assert current_version(conn) == SCHEMA_VERSION
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "half" not in names
    finally:
        conn.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = _conn(tmp_path / "mailwright.db")
    try:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    finally:
        conn.close()
    with pytest.raises(SchemaTooNew):
        SqliteStore(tmp_path)
