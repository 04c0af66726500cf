"""The web inbox in a real headless Chromium (Debian's, driven by Playwright).

Mail is sent with smtplib to a real server in capture mode; the page must list it, add new mail
live (server-sent events, no reload), show the HTML body in its sandboxed iframe without ever
fetching remote content, and show text, headers, raw source and attachments. A screenshot is
saved to test-artifacts/web-inbox.png at the repository root (git-ignored).
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

from support.webinbox import CAPTURE_ENV, Inbox, message  # noqa: E402  (after the skips)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
TIMEOUT_MS = 10_000


class Tracker:
    """A local HTTP server that records every request: the "remote" image host."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Tracker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    with Tracker() as t:
        yield t


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_web_inbox_in_chromium(server_factory: Any, browser: Any, tracker: Tracker) -> None:
    inbox = Inbox(server_factory(CAPTURE_ENV))
    remote = f"http://127.0.0.1:{tracker.port}/pixel.png"

    # Control: this Chromium does fetch such an image from a page without our CSP.
    control = browser.new_page()
    control.set_content(f'<img src="{remote}?control">')
    control.wait_for_load_state("load")
    assert tracker.paths == ["/pixel.png?control"]
    control.close()
    tracker.paths.clear()

    inbox.send(message("First: plain text", text="Your code is 424242.\n"),
               rcpts=["ann@example.com"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(inbox.url + "/")
    items = page.locator("#list li")
    items.filter(has_text="First: plain text").wait_for()
    page.locator("#live.on").wait_for()  # the event stream is open

    # A new message appears without a reload.
    html = (
        '<h1 id="greeting">Hello from HTML</h1>'
        '<p>Your order <b>#1234</b> shipped.</p>'
        '<img id="logo" src="cid:logo@shop.test" alt="logo">'
        f'<img id="remote" src="{remote}" alt="tracker">'
        f'<div style="background-image: url({remote}?css)">styled</div>'
        f'<link rel="stylesheet" href="http://127.0.0.1:{tracker.port}/x.css">'
        "<script>document.title = 'scripted'</script>"
    )
    inbox.send(message("Second: your order shipped", to="bob@example.com", html=html,
                       inline_png_cid="logo@shop.test",
                       attachments=[("invoice.pdf", "application/pdf", b"%PDF-1.4 fake")]),
               rcpts=["bob@example.com"])
    second = items.filter(has_text="Second: your order shipped")
    second.wait_for()
    assert items.count() == 2
    assert "Second" in items.nth(0).inner_text()  # newest first

    # The HTML view: the sandboxed iframe shows the body; nothing remote is fetched.
    second.click()
    frame_el = page.locator("#v-html")
    frame_el.wait_for()
    assert frame_el.get_attribute("sandbox") == ""
    frame = page.frame_locator("#v-html")
    frame.locator("#greeting").wait_for()
    assert frame.locator("#greeting").inner_text() == "Hello from HTML"
    assert page.locator("#v-subject").inner_text() == "Second: your order shipped"
    assert "bob@example.com" in page.locator("#v-envelope").inner_text()
    content_frame = frame_el.element_handle().content_frame()
    assert content_frame is not None
    content_frame.wait_for_load_state("load")
    # The inline (cid:) image was inlined as data: and rendered; the remote one was not.
    assert content_frame.eval_on_selector("#logo", "img => img.naturalWidth") == 1
    assert content_frame.eval_on_selector("#remote", "img => img.naturalWidth") == 0
    assert content_frame.evaluate("document.title") != "scripted"  # no script ran
    page.wait_for_timeout(300)  # time for any straggling request to arrive
    assert tracker.paths == [], "the sandboxed view fetched remote content"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web-inbox.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # Text, headers, raw and attachments tabs.
    page.get_by_role("tab", name="Text").click()
    page.locator("#v-text").wait_for()
    page.get_by_role("tab", name="Headers").click()
    headers = page.locator("#v-headers")
    headers.filter(has_text="X-Mailwright-Envelope-To").wait_for()
    assert "Second: your order shipped" in headers.inner_text()
    page.get_by_role("tab", name="Raw").click()
    raw = page.locator("#v-raw")
    raw.filter(has_text="Content-Type: multipart/mixed").wait_for()
    page.get_by_role("tab", name="Attachments").click()
    link = page.locator("#v-attachments a", has_text="invoice.pdf")
    link.wait_for()
    assert link.get_attribute("href", timeout=TIMEOUT_MS).endswith("/parts/3")
    with page.expect_download() as download:
        link.click()
    assert Path(download.value.path()).read_bytes() == b"%PDF-1.4 fake"

    # The first message has no HTML part: its Text tab shows the body.
    items.filter(has_text="First: plain text").click()
    page.get_by_role("tab", name="Text").click()
    page.locator("#v-text", has_text="Your code is 424242.").wait_for()

    # Search filters the list (the server's ?q=).
    # (expect(), not wait_for_function: the page's CSP forbids the eval that one uses.)
    page.fill("#search", "order shipped")
    expect(items).to_have_count(1)
    page.fill("#search", "")
    expect(items).to_have_count(2)

    # Delete one, then clear all (after the confirm dialog).
    second.click()
    page.locator("#v-subject", has_text="Second").wait_for()
    page.click("#delete")
    expect(items).to_have_count(1)
    assert len(inbox.messages()) == 1
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#clear")
    page.locator("#empty").wait_for()
    assert inbox.messages() == []
    assert tracker.paths == []
    assert errors == []
