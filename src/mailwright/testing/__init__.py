"""mailwright inside a test suite: `MailServer`, the pytest fixtures (`plugin`), and helpers
that pull links and one-time codes out of messages. See docs/testing.md.

Every name is loaded on first use (PEP 562), because pytest imports the plugin in this package
in every session of every project that has mailwright installed; the server itself is loaded
only when a MailServer starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailwright.capture.faults import FaultSettings
    from mailwright.testing.extract import codes, links
    from mailwright.testing.mailserver import Account, MailServer
    from mailwright.testing.messages import MailMessage, MailTimeout, parse_message

__all__ = [
    "Account",
    "FaultSettings",
    "MailMessage",
    "MailServer",
    "MailTimeout",
    "codes",
    "links",
    "parse_message",
]

_WHERE = {
    "Account": "mailwright.testing.mailserver",
    "MailMessage": "mailwright.testing.messages",
    "MailServer": "mailwright.testing.mailserver",
    "MailTimeout": "mailwright.testing.messages",
    "parse_message": "mailwright.testing.messages",
    "codes": "mailwright.testing.extract",
    "links": "mailwright.testing.extract",
    "FaultSettings": "mailwright.capture.faults",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
