"""Fixtures for the capture-mode wire tests: a server with [capture] enabled = true."""

from __future__ import annotations

import pytest
from capture_wire import CAPTURE_ENV, RunningServer


@pytest.fixture
def capture_server(server_factory: RunningServer) -> RunningServer:
    return server_factory(CAPTURE_ENV)
