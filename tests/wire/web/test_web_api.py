"""The JSON API of the web inbox against a real server in capture mode: mail sent with smtplib,
read back over HTTP."""

from __future__ import annotations

import re

from support.webinbox import HTML_CSP, PNG, Inbox, message

API = "/api/v1"


def test_list_get_and_raw(inbox: Inbox) -> None:
    inbox.send(message("Welcome, Bob", to="Bob <bob@example.com>", text="Your code is 123456.\n"),
               rcpts=["bob@example.com"])
    [summary] = inbox.messages()
    assert summary["subject"] == "Welcome, Bob"
    assert summary["envelope"] == {"from": "app@shop.test", "to": ["bob@example.com"]}
    assert summary["to"] == "Bob <bob@example.com>"
    assert summary["from"] == "app@shop.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", summary["date"])
    assert summary["url"] == f"{API}/messages/{summary['id']}"

    detail = inbox.http.get(summary["url"]).json()
    assert detail["text"] == "Your code is 123456.\n"
    assert detail["html"] is None
    assert detail["attachments"] == []
    names = [h["name"] for h in detail["headers"]]
    assert names[:2] == ["X-Mailwright-Envelope-From", "X-Mailwright-Envelope-To"]
    assert {"name": "Subject", "value": "Welcome, Bob"} in detail["headers"]

    raw = inbox.http.get(detail["raw"])
    assert raw.status == 200
    assert raw.headers.get_content_type() == "message/rfc822"
    assert raw.headers["X-Content-Type-Options"] == "nosniff"
    assert raw.body.startswith(b"X-Mailwright-Envelope-From: <app@shop.test>\r\n")
    assert b"Subject: Welcome, Bob\r\n" in raw.body
    assert len(raw.body) == summary["size"]


def test_html_view_is_sandboxed_and_inlines_cid_images(inbox: Inbox) -> None:
    html = (
        '<p>Hi <b>Bob</b></p><img src="cid:logo@shop.test" alt="logo">'
        '<img src="http://127.0.0.1:9/track.png"><script>alert(1)</script>'
    )
    pdf = b"%PDF-1.4 not really\n" * 50
    inbox.send(message("Receipt", html=html, inline_png_cid="logo@shop.test",
                       attachments=[("receipt.pdf", "application/pdf", pdf)]))
    [summary] = inbox.messages()
    detail = inbox.http.get(summary["url"]).json()
    assert detail["text"] == "Hello.\n"
    assert detail["html"] == f"{summary['url']}/html"

    view = inbox.http.get(detail["html"])
    assert view.status == 200
    assert view.headers["Content-Security-Policy"] == HTML_CSP
    assert view.headers.get_content_type() == "text/html"
    assert view.headers.get_content_charset() == "utf-8"
    body = view.body.decode()
    assert "<b>Bob</b>" in body
    assert "cid:" not in body  # rewritten into a data: URI, which the CSP allows
    assert 'src="data:image/png;base64,' in body
    # Left as is: the CSP (and the iframe's sandbox) are what block it, tested in Chromium.
    assert "http://127.0.0.1:9/track.png" in body

    by_type = {a["type"]: a for a in detail["attachments"]}
    assert set(by_type) == {"image/png", "application/pdf"}
    attachment = by_type["application/pdf"]
    assert attachment["name"] == "receipt.pdf"
    assert attachment["size"] == len(pdf)
    assert attachment["disposition"] == "attachment"
    assert by_type["image/png"]["content_id"] == "logo@shop.test"

    download = inbox.http.get(attachment["url"])
    assert download.status == 200
    assert download.body == pdf
    assert download.headers.get_content_type() == "application/pdf"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="receipt.pdf"')
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert inbox.http.get(by_type["image/png"]["url"]).body == PNG


def test_an_html_attachment_downloads_and_cannot_run_here(inbox: Inbox) -> None:
    page = b"<script>fetch('/api/v1/messages', {method: 'DELETE'})</script>"
    inbox.send(message("Report", attachments=[("report.html", "text/html", page)]))
    [summary] = inbox.messages()
    [attachment] = inbox.http.get(summary["url"]).json()["attachments"]
    download = inbox.http.get(attachment["url"])
    assert download.body == page
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_non_ascii_subject_and_filename(inbox: Inbox) -> None:
    inbox.send(message("Grüße — ваш заказ", text="Привет\n",
                       attachments=[("счёт.txt", "text/plain", b"42")]))
    [summary] = inbox.messages()
    assert summary["subject"] == "Grüße — ваш заказ"
    detail = inbox.http.get(summary["url"]).json()
    assert detail["text"] == "Привет\n"
    [attachment] = detail["attachments"]
    assert attachment["name"] == "счёт.txt"
    disposition = inbox.http.get(attachment["url"]).headers["Content-Disposition"]
    assert "filename*=UTF-8''%D1%81%D1%87%D1%91%D1%82.txt" in disposition


def test_newest_first_search_filter_and_pages(inbox: Inbox) -> None:
    for i, rcpt in enumerate(["ann@alpha.test", "bob@beta.test", "cat@alpha.test"]):
        inbox.send(message(f"Order {i}", to=rcpt), rcpts=[rcpt])
    assert [m["subject"] for m in inbox.messages()] == ["Order 2", "Order 1", "Order 0"]
    assert [m["subject"] for m in inbox.messages("?q=ORDER%201")] == ["Order 1"]
    assert [m["subject"] for m in inbox.messages("?q=alpha.test")] == ["Order 2", "Order 0"]
    assert [m["subject"] for m in inbox.messages("?to=bob@beta.test")] == ["Order 1"]
    assert inbox.messages("?q=nothing-like-this") == []

    page = inbox.http.get(f"{API}/messages?limit=2").json()
    assert [m["subject"] for m in page["messages"]] == ["Order 2", "Order 1"]
    assert page["has_more"] is True
    page = inbox.http.get(f"{API}/messages?limit=2&offset=2").json()
    assert [m["subject"] for m in page["messages"]] == ["Order 0"]
    assert page["has_more"] is False


def test_delete_one_then_clear(inbox: Inbox) -> None:
    for i in range(3):
        inbox.send(message(f"Note {i}"))
    first, *rest = inbox.messages()
    reply = inbox.http.delete(first["url"])
    assert reply.status == 204
    assert reply.body == b""
    assert inbox.http.get(first["url"]).status == 404
    assert inbox.http.delete(first["url"]).status == 404
    assert [m["id"] for m in inbox.messages()] == [m["id"] for m in rest]

    reply = inbox.http.delete(f"{API}/messages")
    assert reply.status == 200
    assert reply.json() == {"deleted": 2}
    assert inbox.messages() == []
    assert inbox.http.delete(f"{API}/messages").json() == {"deleted": 0}


def test_errors_are_json_with_their_status(inbox: Inbox) -> None:
    inbox.send(message("Only one", text="plain only\n"))
    [summary] = inbox.messages()
    url = summary["url"]
    get = inbox.http.get
    cases = {
        f"{API}/messages/no such id": 400,
        f"{API}/messages/{'x' * 65}": 400,
        f"{API}/messages/999999-1": 404,
        f"{API}/messages/999999-1/raw": 404,
        f"{url}/html": 404,  # no HTML part
        f"{url}/parts/99": 404,
        f"{url}/parts/one": 400,
        f"{url}/parts/-1": 400,
        f"{API}/messages?limit=0": 400,
        f"{API}/messages?limit=501": 400,
        f"{API}/messages?limit=ten": 400,
        f"{API}/messages?offset=-1": 400,
        f"{API}/messages?q={'a' * 257}": 400,
        f"{API}/nothing/here": 404,
        "/favicon.ico": 404,
    }
    for path, status in cases.items():
        reply = get(path.replace(" ", "%20"))
        assert reply.status == status, (path, reply)
        assert reply.error(), path
    wrong = inbox.http.request("POST", f"{API}/messages", body=b"{}")
    assert wrong.status == 405
    assert wrong.error()
    assert set(wrong.headers["Allow"].split(",")) >= {"GET", "DELETE"}
    assert inbox.http.request("HEAD", f"{API}/events").status == 405


def test_request_sizes_are_bounded(inbox: Inbox) -> None:
    # Header fields and the request line are capped by aiohttp's parser (8190 octets).
    assert inbox.http.get(f"{API}/messages", **{"X-Big": "a" * 20_000}).status == 400
    assert inbox.http.get(f"{API}/messages?q={'a' * 10_000}").status in {400, 414}
    # No endpoint reads a body; a large one is refused rather than buffered.
    big = inbox.http.request("DELETE", f"{API}/messages", body=b"x" * (1024 * 1024))
    assert big.status in {200, 413}
    assert inbox.http.get(f"{API}/messages").status == 200


def test_foreign_host_header_is_refused(inbox: Inbox) -> None:
    """DNS rebinding: a page on attacker.example resolving to 127.0.0.1 must get nothing."""
    reply = inbox.http.get(f"{API}/messages", Host=f"attacker.example:{inbox.port}")
    assert reply.status == 403
    assert "not served here" in reply.error()
    for host in ("localhost", "127.0.0.1", "mail.example.test"):
        assert inbox.http.get(f"{API}/messages", Host=f"{host}:{inbox.port}").status == 200


def test_page_and_its_assets(inbox: Inbox) -> None:
    page = inbox.http.get("/")
    assert page.status == 200
    assert page.headers.get_content_type() == "text/html"
    assert b'<script src="/app.js"' in page.body
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    script = inbox.http.get("/app.js")
    assert script.headers.get_content_type() == "text/javascript"
    assert b"EventSource" in script.body
    assert inbox.http.get("/style.css").headers.get_content_type() == "text/css"


def test_without_capture_mode_the_api_answers_503(server_factory) -> None:  # type: ignore[no-untyped-def]
    running = server_factory({"MAILWRIGHT_LISTEN_HTTP": "127.0.0.1:0"})
    assert running.server.capture is None
    inbox = Inbox(running)
    reply = inbox.http.get(f"{API}/messages")
    assert reply.status == 503
    assert "capture mode is off" in reply.error()
    assert inbox.http.get("/").status == 200
