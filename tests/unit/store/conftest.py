"""Fixtures for the store's unit tests: a fresh SQLite store in a temporary data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import Deliver

from mailwright.store import Account, SqliteStore

DOMAIN = "example.test"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SqliteStore]:
    """Durable (real fsyncs): the store's contract is durability, and fsync is cheap here."""
    s = SqliteStore(data_dir, durable=True)
    s.add_domain(DOMAIN)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def alice(store: SqliteStore) -> Account:
    return store.add_account("alice@example.test", "hash-a")


@pytest.fixture
def bob(store: SqliteStore) -> Account:
    return store.add_account("bob@example.test", "hash-b")


@pytest.fixture
def carol(store: SqliteStore) -> Account:
    return store.add_account("carol@example.test", "hash-c", "keep")


@pytest.fixture
def deliver(store: SqliteStore) -> Deliver:
    return Deliver(store)
