"""The event loop the server runs on: uvloop (libuv) when available, else asyncio's own.

Why: on this project's 2-core benchmark machine uvloop's C transports cut the server's CPU per
SMTP transaction by about 12% (bench/, 4 KB at 10 senders). The server and the test fixtures
both get their loop here, so the tests exercise the loop production runs on.
`MAILWRIGHT_EVENT_LOOP=asyncio` forces the standard loop (for debugging, or a platform without
uvloop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _use_uvloop() -> bool:
    if os.environ.get("MAILWRIGHT_EVENT_LOOP", "").lower() == "asyncio":
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    if _use_uvloop():
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run() on the loop chosen above."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
