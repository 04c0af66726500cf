"""The server under test, as its own process: set up accounts, start, find ports, stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mailwright.auth.passwords import hash_password
from mailwright.store import open_store

DOMAIN = "bench.test"
PASSWORD = "bench-password"
# All senders come from 127.0.0.1, like one big relay: lift the per-address limit above the
# largest concurrency level so the bench measures delivery, not the limiter.
MAX_CONNECTIONS_PER_IP = 200


def create_accounts(data_dir: Path, addresses: list[str]) -> None:
    """Domain and accounts straight in the store, before the server starts (one hash shared)."""
    store = open_store(data_dir)
    try:
        store.add_domain(DOMAIN)
        password_hash = hash_password(PASSWORD)
        for address in addresses:
            store.add_account(address, password_hash)
    finally:
        store.close()


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    ports: dict[str, int]
    banner: str
    spy: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        data_dir: Path,
        profile: Path | None = None,
        extra_env: dict[str, str] | None = None,
        spy: Path | None = None,
    ) -> ServerProcess:
        """Start `mailwright serve` on free ports; `extra_env` overrides the settings below.

        `profile`: run it under cProfile (main thread only: the event loop), stats written to
        that file on exit. `spy`: attach py-spy to it (every thread, so the store's writer and
        reader threads too), collapsed stacks written to that file on exit (`bench.spy_report`).
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
        env.update(
            MAILWRIGHT_LISTEN_SMTP="127.0.0.1:0",
            MAILWRIGHT_LISTEN_POP3="127.0.0.1:0",
            MAILWRIGHT_LISTEN_IMAP="127.0.0.1:0",
            MAILWRIGHT_LISTEN_SUBMISSION="",
            MAILWRIGHT_LISTEN_SUBMISSIONS="",
            MAILWRIGHT_LISTEN_POP3S="",
            MAILWRIGHT_LISTEN_IMAPS="",
            MAILWRIGHT_HOSTNAME="mx.bench.test",
            MAILWRIGHT_SMTP_MAX_CONNECTIONS_PER_IP=str(MAX_CONNECTIONS_PER_IP),
            MAILWRIGHT_POP3_MAX_CONNECTIONS_PER_IP=str(MAX_CONNECTIONS_PER_IP),
            # Fsynced before every 250 (the point); BENCH_DURABLE=false measures CPU cost alone.
            MAILWRIGHT_STORE_DURABLE=os.environ.get("BENCH_DURABLE", "true"),
            MAILWRIGHT_IMAP_MAX_CONNECTIONS_PER_IP=str(MAX_CONNECTIONS_PER_IP),
            # SPF/DKIM/DMARC on the MX would measure this machine's DNS (bench.inbound_checks
            # measures the checks against a loopback DNS server); BENCH_INBOUND_CHECKS=true
            # turns them on.
            MAILWRIGHT_INBOUND_CHECKS=os.environ.get("BENCH_INBOUND_CHECKS", "false"),
        )
        env.update(extra_env or {})
        # --profile: the server runs under cProfile, which writes its stats on the clean exit.
        runner = ["-m", "cProfile", "-o", str(profile)] if profile else []
        proc = subprocess.Popen(
            [
                sys.executable,
                *runner,
                "-m",
                "mailwright",
                "serve",
                "--data",
                str(data_dir),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        # The banner ends with "ready" once every listener is bound: the readiness signal.
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("ready"):
                break
        else:
            raise RuntimeError(f"mailwright serve exited with {proc.wait()}")
        listeners = json.loads((data_dir / "listeners.json").read_text())
        ports = {name: int(info["port"]) for name, info in listeners.items()}
        server = cls(proc, ports, "".join(lines))
        if spy is not None:
            server.spy = start_py_spy(proc.pid, spy)
        return server

    def rss_bytes(self) -> int:
        """The server's resident set size now (VmRSS of /proc/<pid>/status), in bytes."""
        return read_rss(self.proc.pid)

    def stop(self) -> int:
        """SIGTERM and wait: a clean shutdown must exit 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.spy is not None:
            self.spy.wait(timeout=60)  # py-spy writes its file when the process is gone
        return code


def start_py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    # --nonblocking: sample without pausing the server, so the numbers stay close to unprofiled.
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--output", str(output), "--format", "raw",
         "--threads", "--rate", "250", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def read_rss(pid: int) -> int:
    """VmRSS of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
