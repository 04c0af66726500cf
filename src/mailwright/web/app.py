"""The web inbox: a JSON API over the CaptureBox (/api/v1), server-sent events, the page.

Invariants:
- Every error is JSON, `{"error": {"status": N, "message": "..."}}`, with its HTTP status; an
  exception in a handler is logged and answered 500, never a traceback on the wire.
- A captured message is untrusted HTML from the application under test. It is only ever served
  from /messages/{id}/html under a CSP that blocks scripts, remote images, fonts, frames and
  form posts, and puts the document in a sandbox (an opaque origin, so it cannot call this API
  even if the iframe's own sandbox attribute were removed). Downloads (/raw, /parts/{n}) carry
  `nosniff` and a sandbox CSP, so an attached .html opened from the page cannot run either.
- Requests whose Host is not one of ours are refused (403): a DNS-rebinding page in the
  developer's browser would otherwise read and delete the captured mail on 127.0.0.1.
- Parsing a message runs in a worker thread: a 25 MB message must not stall SMTP sessions that
  share this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from aiohttp import web

from mailwright.web.view import MessageView, inline_images, parse

if TYPE_CHECKING:
    from mailwright.capture.box import CaptureBox, Captured

log = logging.getLogger("mailwright.web")

API: Final = "/api/v1"
# The policy of the sandboxed HTML view (issue 7): nothing remote loads, no script runs.
HTML_CSP: Final = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox"
DOWNLOAD_CSP: Final = "default-src 'none'; sandbox"
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# No endpoint takes a body; 64 KiB bounds what a client can make us buffer.
MAX_REQUEST_BODY: Final = 64 * 1024
# Query bounds: enough for any real search, small enough that a scan stays cheap.
MAX_LIMIT: Final = 500
DEFAULT_LIMIT: Final = 50
MAX_OFFSET: Final = 1_000_000
MAX_QUERY_CHARS: Final = 256
MAX_ADDRESS_CHARS: Final = 320  # RFC 5321 4.5.3.1: 64 + 1 + 255
# Ids are f"{mailbox_id}-{uid}" (capture/box.py); anything else is a client error, not a lookup.
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PART: Final = re.compile(r"[0-9]{1,6}")
_MIME_TYPE: Final = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
# Each open event stream holds a subscription on the change bus; a runaway page reloading in a
# loop must not pile them up.
MAX_EVENT_STREAMS: Final = 64
# SSE comments this often keep proxies and the browser from timing the stream out (a client
# that leaves cancels its handler at once: listener.py).
KEEPALIVE_SECONDS: Final = 15.0
_CAPTURE_OFF: Final = (
    "capture mode is off: start with `mailwright serve --capture` or MAILWRIGHT_CAPTURE=true"
)

STATIC_FILES: Final[Mapping[str, str]] = {
    "/": "index.html",
    "/app.js": "app.js",
    "/style.css": "style.css",
}
_CONTENT_TYPES: Final[Mapping[str, str]] = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}


@dataclass
class WebState:
    box: CaptureBox | None
    allowed_hosts: frozenset[str] | None  # None: any Host (a wildcard listen address)
    keepalive: float
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    streams: set[web.StreamResponse] = field(default_factory=set)


STATE: Final = web.AppKey("mailwright_web", WebState)


def create_app(
    box: CaptureBox | None,
    *,
    allowed_hosts: frozenset[str] | None = None,
    keepalive: float = KEEPALIVE_SECONDS,
) -> web.Application:
    """The aiohttp application over `box` (None: capture is off, the API answers 503).

    `allowed_hosts` lists the host names (no port) a request's Host may name; None allows any.
    """
    app = web.Application(
        middlewares=[_json_errors, _check_host], client_max_size=MAX_REQUEST_BODY
    )
    app[STATE] = WebState(box, allowed_hosts, keepalive)
    app.on_shutdown.append(stop_streams)
    r = app.router
    r.add_get(f"{API}/messages", list_messages)
    r.add_delete(f"{API}/messages", clear_messages)
    r.add_get(f"{API}/messages/{{id}}", get_message)
    r.add_delete(f"{API}/messages/{{id}}", delete_message)
    r.add_get(f"{API}/messages/{{id}}/raw", get_raw)
    r.add_get(f"{API}/messages/{{id}}/html", get_html)
    r.add_get(f"{API}/messages/{{id}}/parts/{{n}}", get_part)
    # GET only: a HEAD would open a stream that never sends anything.
    r.add_get(f"{API}/events", events, allow_head=False)
    r.add_get("/api/openapi.json", _static_handler("openapi.json", "application/json", None))
    for path, name in STATIC_FILES.items():
        r.add_get(path, _static_handler(f"static/{name}", _CONTENT_TYPES[name], PAGE_CSP))
    return app


async def stop_streams(app: web.Application) -> None:
    """End every event stream now (server stop): each handler returns and the chunked
    response is finished cleanly, instead of being cut when the connection is closed."""
    app[STATE].stopping.set()


# ----- middlewares --------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"error": {"status": status, "message": message}}
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = exc.text if exc.text and exc.content_type == "text/plain" else exc.reason
        return _error(exc.status, message.removeprefix(f"{exc.status}: "), headers)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged by the server)")


@web.middleware
async def _check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    allowed = request.app[STATE].allowed_hosts
    if allowed is not None and host_name(request.host) not in allowed:
        return _error(403, f"Host {request.host!r} is not served here")
    return await handler(request)


def host_name(host: str) -> str:
    """The name in a Host header: "[::1]:8025" -> "::1", "Localhost.:8025" -> "localhost"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


# ----- helpers ------------------------------------------------------------------------------------
def _box(request: web.Request) -> CaptureBox:
    box = request.app[STATE].box
    if box is None:
        raise web.HTTPServiceUnavailable(text=_CAPTURE_OFF)
    return box


def _message_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not _ID.fullmatch(value):
        raise web.HTTPBadRequest(text=f"invalid message id {value!r}")
    return value


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 7:
        raise web.HTTPBadRequest(text=f"{name}: expected an integer, got {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise web.HTTPBadRequest(text=f"{name}: must be between {low} and {high}")
    return number


def _str_param(request: web.Request, name: str, limit: int) -> str | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise web.HTTPBadRequest(text=f"{name}: longer than {limit} characters")
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(captured: Captured) -> dict[str, Any]:
    """The JSON of one captured message in the list and in each `message` event."""
    return {
        "id": captured.id,
        "mailbox": captured.mailbox,
        "envelope": {"from": captured.mail_from, "to": list(captured.rcpts)},
        "subject": captured.subject,
        "from": captured.from_header,
        "to": captured.to_header,
        "date": _iso(captured.date),
        "size": captured.size,
        "url": f"{API}/messages/{captured.id}",
    }


async def _captured(request: web.Request) -> tuple[CaptureBox, Captured, bytes]:
    box = _box(request)
    message_id = _message_id(request)
    captured = await box.get(message_id)
    raw = await box.raw(message_id) if captured is not None else None
    if captured is None or raw is None:
        raise web.HTTPNotFound(text=f"no message {message_id}")
    return box, captured, raw


async def _view(raw: bytes) -> MessageView:
    return await asyncio.to_thread(parse, raw)


def _download_headers(disposition: str) -> dict[str, str]:
    return {
        "Content-Disposition": disposition,
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _attachment_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name in filename*."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "part"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ----- handlers -----------------------------------------------------------------------------------
async def list_messages(request: web.Request) -> web.Response:
    box = _box(request)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    to = _str_param(request, "to", MAX_ADDRESS_CHARS)
    query = _str_param(request, "q", MAX_QUERY_CHARS)
    # One more than asked tells whether another page exists without counting them all.
    found = await box.list(to=to, query=query, limit=limit + 1, offset=offset)
    return web.json_response(
        {
            "messages": [summary(c) for c in found[:limit]],
            "limit": limit,
            "offset": offset,
            "has_more": len(found) > limit,
        }
    )


async def clear_messages(request: web.Request) -> web.Response:
    # Shielded: a client that hangs up does not stop a clear half-way (listener.py cancels
    # the handlers of clients that went away).
    deleted = await asyncio.shield(_box(request).clear())
    return web.json_response({"deleted": deleted})


async def get_message(request: web.Request) -> web.Response:
    _, captured, raw = await _captured(request)
    view = await _view(raw)
    base = f"{API}/messages/{captured.id}"
    body = summary(captured)
    body.update(
        headers=[{"name": name, "value": value} for name, value in view.headers],
        text=view.text,
        html=f"{base}/html" if view.html is not None else None,
        raw=f"{base}/raw",
        attachments=[
            {
                "part": part.index,
                "name": part.filename,
                "type": part.content_type,
                "size": len(part.payload),
                "disposition": part.disposition,
                "content_id": part.content_id,
                "url": f"{base}/parts/{part.index}",
            }
            for part in view.attachments
        ],
    )
    return web.json_response(body)


async def delete_message(request: web.Request) -> web.Response:
    box = _box(request)
    message_id = _message_id(request)
    if not await asyncio.shield(box.delete(message_id)):  # see clear_messages
        raise web.HTTPNotFound(text=f"no message {message_id}")
    return web.Response(status=204)


async def get_raw(request: web.Request) -> web.Response:
    _, captured, raw = await _captured(request)
    headers = _download_headers(f'inline; filename="{captured.id}.eml"')
    return web.Response(body=raw, content_type="message/rfc822", headers=headers)


async def get_html(request: web.Request) -> web.Response:
    _, captured, raw = await _captured(request)
    view = await _view(raw)
    if view.html is None:
        raise web.HTTPNotFound(text=f"message {captured.id} has no HTML part")
    html = await asyncio.to_thread(inline_images, view.html, view.parts)
    headers = {
        "Content-Security-Policy": HTML_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)


async def get_part(request: web.Request) -> web.Response:
    number = request.match_info["n"]
    if not _PART.fullmatch(number):
        raise web.HTTPBadRequest(text=f"invalid part number {number!r}")
    _, captured, raw = await _captured(request)
    view = await _view(raw)
    index = int(number)
    if index >= len(view.parts):
        raise web.HTTPNotFound(text=f"message {captured.id} has no part {index}")
    part = view.parts[index]
    content_type = part.content_type if _MIME_TYPE.fullmatch(part.content_type) else (
        "application/octet-stream"
    )
    name = part.filename or f"part-{index}" + (".eml" if content_type == "message/rfc822" else "")
    headers = _download_headers(_attachment_disposition(name))
    return web.Response(body=part.payload, content_type=content_type, headers=headers)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `message` event (the summary JSON) per new captured message."""
    box = _box(request)
    state = request.app[STATE]
    if state.stopping.is_set():
        raise web.HTTPServiceUnavailable(text="the server is stopping")
    if len(state.streams) >= MAX_EVENT_STREAMS:
        raise web.HTTPServiceUnavailable(text=f"too many event streams (max {MAX_EVENT_STREAMS})")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    # Subscribe before telling the client it is connected: what arrives after the first
    # byte is then never missed.
    subscription = box.subscribe()
    state.streams.add(response)
    next_item: asyncio.Future[Any] | None = None  # survives keep-alives (a cancel may drop one)
    stopping: asyncio.Future[Any] = asyncio.ensure_future(state.stopping.wait())
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        while True:
            if next_item is None:
                next_item = asyncio.ensure_future(anext(subscription))
            done, _ = await asyncio.wait(
                {next_item, stopping}, timeout=state.keepalive,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if stopping in done:
                break
            if next_item in done:
                try:
                    captured = next_item.result()
                except StopAsyncIteration:
                    break
                next_item = None
                data = json.dumps(summary(captured), separators=(",", ":"))
                await response.write(f"event: message\ndata: {data}\n\n".encode())
            else:
                await response.write(b": keep-alive\n\n")
    except ConnectionError:
        pass  # the client went away: a write to its closed connection failed
    finally:
        state.streams.discard(response)
        stopping.cancel()
        if next_item is not None:
            next_item.cancel()
        subscription.close()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def _static_handler(
    resource: str, content_type: str, csp: str | None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = importlib.resources.files("mailwright.web").joinpath(resource).read_bytes()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if csp is not None:
        headers["Content-Security-Policy"] = csp
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers=headers
        )

    return handler
