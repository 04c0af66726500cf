"""Fixtures for the web inbox tests: a real server in capture mode with its "http" listener."""

from __future__ import annotations

from typing import Any

import pytest
from support.webinbox import CAPTURE_ENV, Inbox


@pytest.fixture
def inbox(server_factory: Any) -> Inbox:
    return Inbox(server_factory(CAPTURE_ENV))
