"""Fault injection for capture mode: what to answer instead of success, decided purely.

An application's retry and bounce handling can only be tested against a server that fails on
demand. The recipient's local part asks for a fault (the conventions of Mailpit's "chaos" and
of smtp4dev's rules, in one naming scheme):

    temperror@x    451 4.3.0 at RCPT          data-temperror@x   the same after DATA/BDAT
    permerror@x    550 5.1.1 at RCPT          data-permerror@x
    code-NNN@x     NNN (4xx/5xx) at RCPT      data-code-NNN@x
    timeout@x      no reply at RCPT           data-timeout@x

A "+tag" is ignored (`temperror+42@x`), so one test can tell its messages apart. Server-wide
settings (`FaultSettings`) fail a fraction of RCPTs or DATAs and delay replies.

`decide` is pure (the caller rolls the dice); `FaultFile` is the one piece of I/O: the settings
shared with `mailwright captured faults` in another process through `<data>/capture-faults.json`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

Stage = Literal["rcpt", "data"]
FAULTS_FILE: Final = "capture-faults.json"
DATA_PREFIX: Final = "data-"

# Enhanced status codes (RFC 3463) for the reply codes a test is likely to ask for; any other
# code gets the generic X.0.0 of its class.
_STATUS: Final = {
    421: "4.3.0", 450: "4.2.0", 451: "4.3.0", 452: "4.2.2",
    550: "5.1.1", 551: "5.1.6", 552: "5.3.4", 553: "5.1.3", 554: "5.7.1",
}


class FaultSettingsError(ValueError):
    """A rate outside 0..1, a code that is not 4xx/5xx, a negative delay."""


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Server-wide faults: the fraction of RCPTs and of DATAs failed with `fail_code`, and a
    delay before every reply."""

    rcpt_fail_rate: float = 0.0
    data_fail_rate: float = 0.0
    fail_code: int = 451
    reply_delay: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rcpt_fail_rate", "data_fail_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise FaultSettingsError(f"{name} must be between 0 and 1, got {value!r}")
        if not (isinstance(self.fail_code, int) and 400 <= self.fail_code <= 599):
            raise FaultSettingsError(f"fail_code must be a 4xx or 5xx code, got {self.fail_code!r}")
        delay = self.reply_delay
        if not (isinstance(delay, int | float) and math.isfinite(delay) and delay >= 0):
            raise FaultSettingsError(f"reply_delay must be >= 0 seconds, got {delay!r}")

    @property
    def active(self) -> bool:
        return bool(self.rcpt_fail_rate or self.data_fail_rate or self.reply_delay)


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of accepting: reply `code status text`, or (`timeout`) never reply."""

    code: int
    status: str
    text: str
    timeout: bool = False


TIMEOUT: Final = Fault(0, "", "", timeout=True)


def fault_for_code(code: int, text: str | None = None) -> Fault:
    status = _STATUS.get(code, f"{code // 100}.0.0")
    kind = "temporary" if code < 500 else "permanent"
    return Fault(code, status, text or f"Injected {kind} failure (mailwright capture mode)")


TEMPERROR: Final = fault_for_code(451)
PERMERROR: Final = fault_for_code(550, "No such user (injected by mailwright capture mode)")


def address_fault(address: str) -> tuple[Stage, Fault] | None:
    """The fault the address's local part asks for, and when; None for an ordinary address."""
    local = address.strip().strip("<>").rpartition("@")[0] if "@" in address else address
    local = local.strip('"').lower().partition("+")[0]
    stage: Stage = "rcpt"
    if local.startswith(DATA_PREFIX):
        stage, local = "data", local[len(DATA_PREFIX):]
    if local == "temperror":
        return stage, TEMPERROR
    if local == "permerror":
        return stage, PERMERROR
    if local == "timeout":
        return stage, TIMEOUT
    if local.startswith("code-"):
        digits = local[len("code-"):]
        if len(digits) == 3 and digits.isdigit() and 400 <= int(digits) <= 599:
            return stage, fault_for_code(int(digits))
    return None


def decide(
    stage: Stage, addresses: Iterable[str], settings: FaultSettings, roll: float
) -> Fault | None:
    """The fault for this stage: the first address that asks for one at this stage, else the
    server-wide rate (`roll` in [0, 1), e.g. random.random()); None means go on as normal."""
    for address in addresses:
        found = address_fault(address)
        if found is not None and found[0] == stage:
            return found[1]
    rate = settings.rcpt_fail_rate if stage == "rcpt" else settings.data_fail_rate
    if rate > 0 and roll < rate:
        return fault_for_code(settings.fail_code)
    return None


def to_json(settings: FaultSettings) -> str:
    return json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n"


def from_json(text: str) -> FaultSettings:
    """Raises FaultSettingsError for anything but an object of known keys and valid values."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FaultSettingsError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FaultSettingsError("expected a JSON object")
    known = set(FaultSettings.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise FaultSettingsError(f"unknown keys: {', '.join(sorted(unknown))}")
    try:
        return FaultSettings(**data)
    except TypeError as exc:
        raise FaultSettingsError(str(exc)) from None


class FaultFile:
    """`<data>/capture-faults.json`: written whole and renamed (a reader sees the old or the
    new file), re-read by `current` only when its mtime or size changed (one stat per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._settings: FaultSettings | None = None

    def save(self, settings: FaultSettings) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(to_json(settings), encoding="utf-8")
        os.replace(tmp, self.path)
        self._settings = settings
        self._seen = self._stamp()

    def load(self) -> FaultSettings | None:
        """The file's settings, or None when there is none. Raises FaultSettingsError."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return from_json(text)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._seen, self._settings = None, None

    def current(self, default: FaultSettings) -> FaultSettings:
        """The file's settings (re-read if it changed since last seen); `default` when there
        is no file. A broken file keeps the last good settings."""
        stamp = self._stamp()
        if stamp is None:
            self._seen, self._settings = None, None
            return default
        if stamp != self._seen:
            self._seen = stamp
            with contextlib.suppress(FaultSettingsError, OSError):
                self._settings = self.load()
        return self._settings or default

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size  # a rename makes a new inode
