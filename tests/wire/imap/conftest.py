"""Fixtures for the IMAP wire tests (helpers live in imap_wire.py)."""

from __future__ import annotations

from typing import Any

import pytest
from imap_wire import ImapEnv, make_env


@pytest.fixture
def imap(server_factory: Any) -> ImapEnv:
    return make_env(server_factory)
