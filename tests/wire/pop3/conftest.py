"""Fixtures for the POP3 wire tests (helpers live in pop3_wire.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pop3_wire import Pop3Env, make_env


@pytest.fixture
def pop3(server_factory: Any) -> Pop3Env:
    return make_env(server_factory)
