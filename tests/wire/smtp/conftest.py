"""Fixtures for the SMTP wire tests: the shared `server` with two accounts, and a raw client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from smtp_wire import RunningServer, Wire, add_accounts


@pytest.fixture
def mx(server: RunningServer) -> RunningServer:
    return add_accounts(server)


@pytest.fixture
def wire(mx: RunningServer) -> Iterator[Wire]:
    w = Wire(mx.host, mx.port("smtp"))
    w.expect(220)
    yield w
    w.close()
