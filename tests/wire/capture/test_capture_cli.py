"""`mailwright captured list|show|clear|faults` beside a running `mailwright serve --capture`
(a separate process on the same data directory)."""

from __future__ import annotations

import json
import re
import signal
import smtplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.serve_process import MAILWRIGHT, serve_env

SENDER = "app@shop.example"
BODY = b"From: app@shop.example\r\nTo: bob@example.com\r\nSubject: Welcome aboard\r\n\r\nHi Bob\r\n"


def env() -> dict[str, str]:
    # Wide output, so that rich does not fold the columns the asserts look at; the web inbox
    # (which --capture turns on) stays off: this test is about the CLI.
    return {**serve_env("smtp", "imap"), "COLUMNS": "250", "MAILWRIGHT_LISTEN_HTTP": "",
            "MAILWRIGHT_STORE_DURABLE": "false"}


def run(data: Path, *args: str, code: int = 0) -> str:
    done = subprocess.run(
        [*MAILWRIGHT, "captured", *args, "--data", str(data)], capture_output=True,
        timeout=60, env=env(),
    )
    assert done.returncode == code, done.stderr.decode()
    return done.stdout.decode("utf-8", "replace")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    data = tmp_path / "data"
    data.mkdir()
    listeners = data / "listeners.json"
    proc = subprocess.Popen(
        [*MAILWRIGHT, "serve", "--capture", "--data", str(data)], env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not listeners.exists():
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield data, json.loads(listeners.read_text())["smtp"]["port"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_list_show_clear(running: tuple[Path, int]) -> None:
    data, port = running
    assert "no captured mail" in run(data, "list")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(SENDER, ["bob@example.com"], BODY)
        client.sendmail(SENDER, ["carol@example.org"], BODY.replace(b"Welcome", b"Invoice"))
    listing = run(data, "list")
    assert "Welcome aboard" in listing
    assert "Invoice aboard" in listing
    assert "bob@example.com" in listing
    only_bob = run(data, "list", "--to", "bob@example.com")
    assert "Welcome aboard" in only_bob
    assert "Invoice" not in only_bob
    [captured_id] = re.findall(r"^\W*(\d+-\d+) ", only_bob, re.MULTILINE)  # the Id column
    shown = run(data, "show", captured_id)
    assert "Welcome aboard" in shown
    assert "<app@shop.example>" in shown
    assert "Hi Bob" in shown
    raw = subprocess.run(
        [*MAILWRIGHT, "captured", "show", captured_id, "--raw", "--data", str(data)],
        capture_output=True, timeout=60, env=env(), check=True,
    ).stdout
    assert raw.startswith(b"X-Mailwright-Envelope-From: <app@shop.example>\r\n")
    assert raw.endswith(BODY)
    run(data, "show", "999-999", code=1)
    assert "2 captured message(s) removed" in run(data, "clear")
    assert "no captured mail" in run(data, "list")


def test_faults_apply_to_the_running_server(running: tuple[Path, int]) -> None:
    data, port = running
    shown = run(data, "faults")
    assert "RCPT fail rate" in shown
    run(data, "faults", "--rcpt-fail-rate", "1", "--fail-code", "452")
    assert json.loads((data / "capture-faults.json").read_text())["rcpt_fail_rate"] == 1.0
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(SENDER, ["bob@example.com"], BODY)
        assert refused.value.recipients["bob@example.com"][0] == 452
        run(data, "faults", "--clear")
        assert client.sendmail(SENDER, ["bob@example.com"], BODY) == {}
    run(data, "faults", "--data-fail-rate", "2", code=1)  # refused: not a fraction


def test_faults_file_garbage_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "capture-faults.json").write_text("{nope")
    done = subprocess.run(
        [*MAILWRIGHT, "captured", "faults", "--data", str(data)], capture_output=True,
        timeout=60, env=env(),
    )
    assert done.returncode == 1
    assert b"--clear" in done.stderr
    assert "RCPT fail rate" in run(data, "faults", "--clear")
    assert json.loads((data / "capture-faults.json").read_text())["rcpt_fail_rate"] == 0
