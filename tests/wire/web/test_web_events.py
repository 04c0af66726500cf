"""Server-sent events of the web inbox: a `message` event per new arrival, keep-alive comments,
and a clean end of the stream when the server stops."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

import pytest
from support.webinbox import CAPTURE_ENV, Inbox, message

from mailwright.web.app import MAX_EVENT_STREAMS
from mailwright.web.listener import HttpListener


class EventStream:
    """A raw GET /api/v1/events read line by line (what EventSource parses)."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=10)
        self.conn.request("GET", "/api/v1/events", headers={"Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.headers.get_content_type() == "text/event-stream"
        # Subscribed before the first byte: nothing sent after this line can be missed.
        assert self.read_block() == ["retry: 2000", ": connected"]

    def read_block(self) -> list[str]:
        """The lines of one event or comment block, up to its blank line ([] at the end)."""
        lines: list[str] = []
        while True:
            line = self.resp.readline()
            if not line:
                return lines
            text = line.decode().rstrip("\n")
            if text == "":
                return lines
            lines.append(text)

    def next_event(self) -> tuple[str, Any]:
        while True:
            block = self.read_block()
            assert block, "stream ended"
            if block[0].startswith("event: "):
                name = block[0].removeprefix("event: ")
                data = "\n".join(x.removeprefix("data: ") for x in block[1:])
                return name, json.loads(data)

    def close(self) -> None:
        self.conn.close()


def stream(inbox: Inbox) -> EventStream:
    return EventStream(inbox.http.host, inbox.http.port)


def test_each_new_message_is_an_event(inbox: Inbox) -> None:
    events = stream(inbox)
    try:
        inbox.send(message("First"), rcpts=["a@one.test"])
        inbox.send(message("Second"), rcpts=["b@two.test", "c@two.test"])
        name, first = events.next_event()
        assert name == "message"
        assert first["subject"] == "First"
        assert first["envelope"]["to"] == ["a@one.test"]
        _, second = events.next_event()
        assert second["subject"] == "Second"
        assert second["envelope"]["to"] == ["b@two.test", "c@two.test"]
        # The event is the list's JSON for that message.
        assert inbox.messages() == [second, first]
    finally:
        events.close()


def test_two_streams_both_get_the_event(inbox: Inbox) -> None:
    one, two = stream(inbox), stream(inbox)
    try:
        inbox.send(message("Broadcast"))
        assert one.next_event()[1]["subject"] == "Broadcast"
        assert two.next_event()[1]["subject"] == "Broadcast"
    finally:
        one.close()
        two.close()


def test_keep_alive_comments(inbox: Inbox) -> None:
    """A listener with a short keep-alive on the same server's box and loop."""
    running = inbox.running
    listener = HttpListener(running.server.capture, "mail.example.test", keepalive=0.1)
    host, port = running.run(listener.start("127.0.0.1", 0))
    try:
        events = EventStream(host, port)
        assert events.read_block() == [": keep-alive"]
        assert events.read_block() == [": keep-alive"]
        inbox.send(message("Between keep-alives"))
        assert events.next_event()[1]["subject"] == "Between keep-alives"
        events.close()
    finally:
        running.run(listener.stop())


def test_a_client_that_goes_away_is_unsubscribed_at_once(inbox: Inbox) -> None:
    """Not at the next keep-alive (15 s): its handler is cancelled when the connection drops."""
    box = inbox.running.server.capture
    events = stream(inbox)
    assert len(box._subscriptions) == 1
    events.close()
    deadline = time.monotonic() + 2
    while box._subscriptions and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not box._subscriptions


def test_open_streams_are_bounded(inbox: Inbox) -> None:
    streams = [stream(inbox) for _ in range(MAX_EVENT_STREAMS)]
    try:
        refused = inbox.http.get("/api/v1/events")
        assert refused.status == 503
        assert "too many event streams" in refused.error()
        streams.pop().close()
        assert inbox.http.get("/api/v1/messages").status == 200  # still served meanwhile
        deadline = time.monotonic() + 2
        while True:
            try:
                streams.append(stream(inbox))
                break
            except AssertionError:  # 503 until the closed stream's handler has ended
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    finally:
        for s in streams:
            s.close()


def test_server_stop_ends_the_stream_cleanly(server_factory) -> None:  # type: ignore[no-untyped-def]
    running = server_factory(CAPTURE_ENV)
    inbox = Inbox(running)
    events = stream(inbox)
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 3.0
    # The chunked response is finished (terminating chunk), not cut: read() ends without
    # IncompleteRead, after nothing more.
    assert events.resp.read() == b""
    events.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((inbox.http.host, inbox.http.port), timeout=2).close()
