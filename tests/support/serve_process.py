"""`mailwright serve` as a separate process, for the tests that kill -9 it and restart it.

A process is the only way to test a crash: the in-process `server` fixture shares the test's
memory. Each test names the listeners it wants; every other one is off, so no test binds a
default port, and the environment holds no MAILWRIGHT_* variable of the caller's.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

MAILWRIGHT = [sys.executable, "-m", "mailwright"]
LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


def serve_env(*listeners: str, **settings: str) -> dict[str, str]:
    """The process's environment: `listeners` on 127.0.0.1 free ports, the rest off;
    `settings` are more MAILWRIGHT_* variables. Inbound SPF/DKIM/DMARC are off unless asked
    for (they would ask the machine's DNS about the test domains)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
    for name in LISTENERS:
        env[f"MAILWRIGHT_LISTEN_{name.upper()}"] = "127.0.0.1:0" if name in listeners else ""
    env.update(MAILWRIGHT_HOSTNAME="mx.example.test", MAILWRIGHT_INBOUND_CHECKS="false")
    env.update(settings)
    return env


def cli(data: Path, *args: str, stdin: str | None = None) -> None:
    """Run an admin command on the data directory (as a user would, while a server runs)."""
    subprocess.run(
        [*MAILWRIGHT, *args, "--data", str(data)], input=stdin, text=True, check=True,
        capture_output=True, timeout=60, env=serve_env(),
    )


def start(
    data: Path, env: dict[str, str], prefix: Sequence[str] = (), log: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    """Start the server on `data`; return it and the bound port of each listener once every
    listener is bound (the caller kills or stops it). `prefix` runs the server under another
    command, e.g. strace (tests/e2e/test_fsync_discipline.py); `log` receives its stderr."""
    listeners = data / "listeners.json"
    listeners.unlink(missing_ok=True)
    with log.open("ab") if log is not None else contextlib.nullcontext() as log_file:
        proc = subprocess.Popen(
            [*prefix, *MAILWRIGHT, "serve", "--data", str(data)], env=env,
            stdout=subprocess.DEVNULL, stderr=log_file or subprocess.DEVNULL,
        )
    # listeners.json is written atomically once every listener is bound: from another process,
    # a file is the only signal there is.
    deadline = time.monotonic() + 30
    while not listeners.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start")
        time.sleep(0.02)
    return proc, {k: v["port"] for k, v in json.loads(listeners.read_text()).items()}
