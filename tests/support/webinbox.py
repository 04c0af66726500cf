"""Helpers for the web inbox tests (tests/wire/web, tests/e2e): a small HTTP client
(http.client, so a test can send any Host or method) and mail builders sent with smtplib to
the real server."""

from __future__ import annotations

import http.client
import json
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

CAPTURE_ENV = {"MAILWRIGHT_CAPTURE": "true", "MAILWRIGHT_LISTEN_HTTP": "127.0.0.1:0"}
HTML_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox"
# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers.get_content_type() == "application/json", self.headers
        return json.loads(self.body)

    def error(self) -> str:
        body = self.json()
        assert body["error"]["status"] == self.status
        return str(body["error"]["message"])


class Http:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, headers)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)


def message(
    subject: str, to: str = "bob@example.com", sender: str = "app@shop.test",
    text: str | None = "Hello.\n", html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    inline_png_cid: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
        if inline_png_cid is not None:
            body = msg.get_body(("html",))
            assert body is not None
            body.add_related(PNG, "image", "png", cid=f"<{inline_png_cid}>")
    for name, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def send(host: str, port: int, msg: EmailMessage, rcpts: list[str] | None = None,
         sender: str = "app@shop.test") -> None:
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(msg, from_addr=sender, to_addrs=rcpts or [str(msg["To"])])


class Inbox:
    """A running server (tests/conftest.py's RunningServer) in capture mode, an HTTP client for
    its "http" listener, and `send()` over its SMTP MX listener."""

    def __init__(self, running: Any) -> None:
        self.running = running
        url = running.server.http_url
        assert url is not None
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        self.url: str = url
        self.port: int = parts.port
        self.http = Http(parts.hostname, parts.port)

    def send(self, msg: EmailMessage, rcpts: list[str] | None = None,
             sender: str = "app@shop.test") -> None:
        send(self.running.host, self.running.port("smtp"), msg, rcpts, sender)

    def messages(self, query: str = "") -> list[dict[str, Any]]:
        reply = self.http.get(f"/api/v1/messages{query}")
        assert reply.status == 200, reply
        return list(reply.json()["messages"])
