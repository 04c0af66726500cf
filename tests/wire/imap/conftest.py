"""Fixtures for the IMAP wire tests (helpers live in imap_wire.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from imap_wire import ALICE, PASSWORD, ImapEnv, WireClient, make_env, wire
from imapclient import IMAPClient


@pytest.fixture
def imap(server_factory: Any) -> ImapEnv:
    return make_env(server_factory)


@pytest.fixture
def c(imap: ImapEnv) -> Iterator[WireClient]:
    """A raw logged-in connection (imap_wire.WireClient): the exact bytes."""
    with wire(imap) as client:
        yield client


@pytest.fixture
def ic(imap: ImapEnv) -> Iterator[IMAPClient]:
    """imapclient, logged in: where it decodes the answer for us."""
    client = IMAPClient(imap.server.host, port=imap.port, ssl=False, timeout=10)
    client.login(ALICE, PASSWORD)
    yield client
    client.logout()
