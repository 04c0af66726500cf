"""Capture mode: mail for other domains is kept (never relayed, never queued), and faults are
injected on request, so that an application's mail can be tested against a real server.

`CaptureBox` (box.py) holds the captured mail; faults.py decides the injected failures.
"""

from mailwright.capture.box import (
    DEFAULT_ACCOUNT,
    CaptureBox,
    Captured,
    CaptureSubscription,
    ImapMode,
)
from mailwright.capture.faults import Fault, FaultSettings, FaultSettingsError

__all__ = [
    "DEFAULT_ACCOUNT",
    "CaptureBox",
    "CaptureSubscription",
    "Captured",
    "Fault",
    "FaultSettings",
    "FaultSettingsError",
    "ImapMode",
]
