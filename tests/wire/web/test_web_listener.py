"""The "http" listener: configuration, `serve --capture`, listeners.json, start and stop."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.serve_process import MAILWRIGHT, serve_env
from support.webinbox import CAPTURE_ENV, Http, Inbox, message, send

from mailwright import config as mwconfig
from mailwright.config import Listen
from mailwright.web.listener import allowed_hosts


def load(env: dict[str, str], **kwargs: Any) -> mwconfig.Config:
    return mwconfig.load(None, None, {"MAILWRIGHT_HOSTNAME": "mx.test", **env}, **kwargs)


def test_http_is_off_by_default_and_set_like_the_other_listeners(tmp_path: Path) -> None:
    assert "http" not in load({}).listeners
    assert load({"MAILWRIGHT_LISTEN_HTTP": "127.0.0.1:8080"}).listeners["http"] == Listen(
        "127.0.0.1", 8080
    )
    toml = tmp_path / "mw.toml"
    toml.write_text('[listen]\nhttp = "[::1]:0"\n')
    assert mwconfig.load(toml, None, {"MAILWRIGHT_HOSTNAME": "mx.test"}).listeners[
        "http"
    ] == Listen("::1", 0)
    with pytest.raises(mwconfig.ConfigError, match=r"listen\.http"):
        load({"MAILWRIGHT_LISTEN_HTTP": "8025"})


def test_capture_default_yields_to_file_and_environment() -> None:
    """What `serve --capture` asks for: 127.0.0.1:8025 unless listen.http is set; "" is off."""
    defaults = {"http": mwconfig.CAPTURE_HTTP_DEFAULT}
    assert load({}, listen_defaults=defaults).listeners["http"] == Listen("127.0.0.1", 8025)
    env = {"MAILWRIGHT_LISTEN_HTTP": "127.0.0.1:0"}
    assert load(env, listen_defaults=defaults).listeners["http"] == Listen("127.0.0.1", 0)
    assert "http" not in load({"MAILWRIGHT_LISTEN_HTTP": ""}, listen_defaults=defaults).listeners


def test_allowed_hosts() -> None:
    assert allowed_hosts("127.0.0.1", "Mail.Test") == {"localhost", "127.0.0.1", "::1",
                                                       "mail.test"}
    assert allowed_hosts("192.0.2.7", "mail.test") == {"localhost", "127.0.0.1", "::1",
                                                       "mail.test", "192.0.2.7"}
    assert allowed_hosts("0.0.0.0", "mail.test") is None
    assert allowed_hosts("::", "mail.test") is None


def test_url_and_listeners_file(inbox: Inbox) -> None:
    server = inbox.running.server
    listeners = json.loads((inbox.running.data_dir / "listeners.json").read_text())
    assert listeners["http"] == {"host": "127.0.0.1", "port": inbox.port, "tls": "none"}
    assert server.http_url == f"http://127.0.0.1:{inbox.port}"
    assert listeners["smtp"]["tls"] == "starttls"


def test_no_http_listener_unless_asked(server_factory: Any) -> None:
    running = server_factory({"MAILWRIGHT_CAPTURE": "true"})
    assert running.server.http_url is None
    assert "http" not in running.server.bound


def test_http_port_in_use_fails_the_start(server_factory: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="for http"):
            server_factory({**CAPTURE_ENV, "MAILWRIGHT_LISTEN_HTTP": f"127.0.0.1:{port}"})


def test_ipv6_loopback(server_factory: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 here")
    running = server_factory({**CAPTURE_ENV, "MAILWRIGHT_LISTEN_HTTP": "[::1]:0"})
    url = running.server.http_url
    assert url.startswith("http://[::1]:")
    http = Http("::1", int(url.rpartition(":")[2]))
    assert http.get("/api/v1/messages", Host=f"[::1]:{http.port}").status == 200


def _serve_capture(
    data: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = subprocess.Popen(
        [*MAILWRIGHT, "serve", "--capture", "--data", str(data)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    listeners = data / "listeners.json"
    deadline = time.monotonic() + 30
    while not listeners.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start")
        time.sleep(0.02)
    return proc, json.loads(listeners.read_text())


def _stop(proc: subprocess.Popen[bytes]) -> bytes:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return out


def test_serve_capture_serves_the_inbox(tmp_path: Path) -> None:
    env = serve_env("smtp", MAILWRIGHT_LISTEN_HTTP="127.0.0.1:0")
    proc, listeners = _serve_capture(tmp_path, env)
    try:
        port = listeners["http"]["port"]
        http = Http("127.0.0.1", port)
        inbox_page = http.get("/")
        assert inbox_page.status == 200
        send("127.0.0.1", listeners["smtp"]["port"], message("From serve"), ["x@far.test"])
        [summary] = http.get("/api/v1/messages").json()["messages"]
        assert summary["subject"] == "From serve"
    finally:
        out = _stop(proc)
    assert f"http://127.0.0.1:{port}/" in out.decode()


def test_serve_capture_defaults_to_port_8025(tmp_path: Path) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8025))
        except OSError:
            pytest.skip("127.0.0.1:8025 is in use here")
    env = serve_env("smtp")
    env.pop("MAILWRIGHT_LISTEN_HTTP", None)
    proc, listeners = _serve_capture(tmp_path, env)
    try:
        assert listeners["http"] == {"host": "127.0.0.1", "port": 8025, "tls": "none"}
    finally:
        _stop(proc)
