"""Helpers for the capture-mode wire tests (a uniquely named module: tests/ is no package)."""

from __future__ import annotations

import functools
import smtplib
from email.message import EmailMessage
from typing import Any

from mailwright.auth.passwords import hash_password
from mailwright.capture import CaptureBox, Captured

RunningServer = Any  # tests/conftest.py's RunningServer (not importable: no package)

CAPTURE_ENV = {"MAILWRIGHT_CAPTURE": "true"}
CAPTURE_ACCOUNT, CAPTURE_PASSWORD = "captured@capture.test", "captured"
SENDER = "app@shop.example"


@functools.cache
def password_hash(password: str) -> str:
    return hash_password(password)


def box(server: RunningServer) -> CaptureBox:
    capture = server.server.capture
    assert capture is not None, "not a capture-mode server"
    return capture  # type: ignore[no-any-return]


def captured(server: RunningServer, **kwargs: Any) -> list[Captured]:
    return server.run(box(server).list(**kwargs))  # type: ignore[no-any-return]


def message(to: str | list[str], subject: str = "Hello", sender: str = SENDER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject
    msg.set_content("Your order has shipped.\n")
    return msg


def send(
    server: RunningServer, rcpts: list[str], subject: str = "Hello", listener: str = "smtp",
    sender: str = SENDER, timeout: float = 10,
) -> None:
    with smtplib.SMTP(server.host, server.port(listener), timeout=timeout) as client:
        client.send_message(message(rcpts, subject, sender), from_addr=sender, to_addrs=rcpts)
