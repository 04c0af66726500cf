"""The README's tutorial, verbatim, against the real server; and `mailwright serve` as a process.

The first test is the classic scenario every Python mail tutorial shows (smtplib, then poplib on
localhost). The others run the real console entry point the way a user does: banner, port 0,
listeners.json, exit 0 on SIGTERM, one-line errors and a non-zero exit for bad configurations.
"""

from __future__ import annotations

import json
import os
import poplib
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import RunningServer

MAILWRIGHT = [sys.executable, "-m", "mailwright"]
LISTENERS = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")


def test_classic_smtplib_then_poplib_tutorial(server: RunningServer) -> None:
    server.add_account("alice@example.test", "alice-password")
    server.add_account("bob@example.test", "bob-password")
    host, smtp_port, pop3_port = server.host, server.port("smtp"), server.port("pop3")

    message = EmailMessage()
    message["From"] = "alice@example.test"
    message["To"] = "bob@example.test"
    message["Subject"] = "Hello from the tutorial"
    message.set_content("Hi Bob,\n\nthis came through mailwright.\n")

    smtp = smtplib.SMTP()
    smtp.connect(host, smtp_port)
    smtp.login("alice@example.test", "alice-password")
    refused = smtp.sendmail("alice@example.test", ["bob@example.test"], message.as_string())
    assert refused == {}
    smtp.quit()

    pop = poplib.POP3(host, pop3_port)
    pop.user("bob@example.test")
    pop.pass_("bob-password")
    count, size = pop.stat()
    assert count == 1
    assert size > 0
    response, listing, _ = pop.list()
    assert response.startswith(b"+OK")
    assert listing == [f"1 {size}".encode()]
    response, lines, _octets = pop.retr(1)
    assert response.startswith(b"+OK")
    text = b"\r\n".join(lines)
    assert b"Subject: Hello from the tutorial" in text
    assert b"this came through mailwright." in text
    assert any(line.startswith(b"Received: ") for line in lines)
    assert lines[0] == b"Return-Path: <alice@example.test>"
    pop.dele(1)
    pop.quit()

    # DELE + QUIT removed it (the default POP3 policy is "delete").
    pop = poplib.POP3(host, pop3_port)
    pop.user("bob@example.test")
    pop.pass_("bob-password")
    assert pop.stat() == (0, 0)
    pop.quit()


# ----- the real process ---------------------------------------------------------------------
def serve_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
    env.update({f"MAILWRIGHT_LISTEN_{name.upper()}": "127.0.0.1:0" for name in LISTENERS})
    env["MAILWRIGHT_HOSTNAME"] = "mx.example.test"
    env.update(overrides)
    return env


def start(data: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MAILWRIGHT, "serve", "--data", str(data), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, list[str]]]:
    data = tmp_path / "data"
    proc = start(data, serve_env())
    banner: list[str] = []
    assert proc.stdout is not None
    # The banner is printed once every listener is bound: reading it is the readiness signal.
    for line in proc.stdout:
        banner.append(line)
        if line.startswith("ready"):
            break
    else:
        proc.wait(timeout=30)
        pytest.fail(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield proc, data, banner
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_prints_banner_writes_listeners_json_and_exits_0_on_sigterm(
    serve_process: tuple[subprocess.Popen[str], Path, list[str]],
) -> None:
    proc, data, banner = serve_process
    listeners = json.loads((data / "listeners.json").read_text())
    assert set(listeners) == set(LISTENERS)
    text = "".join(banner)
    assert "mx.example.test" in text
    assert str(data) in text
    for name, where in listeners.items():
        assert where["host"] == "127.0.0.1"
        assert where["port"] > 0
        assert name in text
        assert f"127.0.0.1:{where['port']}" in text
    assert listeners["submissions"]["tls"] == "implicit"
    assert listeners["pop3s"]["tls"] == "implicit"
    assert listeners["smtp"]["tls"] == "starttls"
    assert "implicit TLS" in text
    assert "STARTTLS" in text

    with smtplib.SMTP("127.0.0.1", listeners["smtp"]["port"], timeout=10) as smtp:
        code, _ = smtp.ehlo("client.example")
        assert code == 250
    with socket.create_connection(("127.0.0.1", listeners["pop3"]["port"]), timeout=10) as sock:
        assert sock.recv(512).startswith(b"+OK")

    # Admin commands work on the running server's data directory, and take effect at once.
    for args, stdin in (
        (["domain", "add", "example.test"], None),
        (["account", "add", "dave@example.test", "--password-stdin"], "dave-password\n"),
    ):
        subprocess.run(
            [*MAILWRIGHT, *args, "--data", str(data)], input=stdin, text=True, check=True,
            capture_output=True, timeout=60, env=serve_env(),
        )
    pop = poplib.POP3("127.0.0.1", listeners["pop3"]["port"], timeout=10)
    pop.user("dave@example.test")
    pop.pass_("dave-password")
    assert pop.stat() == (0, 0)
    pop.quit()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not (data / "listeners.json").exists()


def test_serve_sigint_is_a_clean_stop_too(
    serve_process: tuple[subprocess.Popen[str], Path, list[str]],
) -> None:
    proc, _data, _banner = serve_process
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0


def run_failing(data: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [*MAILWRIGHT, "serve", "--data", str(data), *args],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("mailwright: error: ")
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


def test_unknown_config_key_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "mailwright.toml"
    config.write_text('[smtp]\nmax_mesage_size = 10\n')
    line = run_failing(tmp_path / "data", serve_env(), "--config", str(config))
    assert line == "mailwright: error: unknown configuration key smtp.max_mesage_size"


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = run_failing(
            tmp_path / "data", serve_env(MAILWRIGHT_LISTEN_POP3=f"127.0.0.1:{port}")
        )
    assert f"127.0.0.1:{port}" in line
    assert "pop3" in line
    assert "in use" in line


def test_unreadable_certificate_is_a_one_line_error(tmp_path: Path) -> None:
    env = serve_env(
        MAILWRIGHT_TLS_CERT=str(tmp_path / "missing.pem"),
        MAILWRIGHT_TLS_KEY=str(tmp_path / "missing.key"),
    )
    line = run_failing(tmp_path / "data", env)
    assert "TLS: cannot read" in line
    assert "missing.pem" in line
