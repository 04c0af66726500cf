"""mailwright.testing.links / codes: links and one-time codes out of text and HTML parts."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from mailwright.testing import codes, links


def alternative(text: str, html: str, cte: str = "quoted-printable") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Welcome"
    msg.set_content(text, cte=cte)
    msg.add_alternative(html, subtype="html", cte=cte)
    return msg


def test_links_from_text_and_html_deduplicated_in_order() -> None:
    msg = alternative(
        "Confirm: https://app.example/confirm?token=abc&u=1\nDocs at http://docs.example/x.\n",
        '<p><a href="https://app.example/confirm?token=abc&amp;u=1">Confirm</a>'
        ' <a href="https://app.example/unsubscribe">stop</a>'
        ' <a href="mailto:help@app.example">mail</a> <a href="#top">top</a>'
        ' <a href="/relative">rel</a></p>',
    )
    assert links(msg) == [
        "https://app.example/confirm?token=abc&u=1",
        "http://docs.example/x",
        "https://app.example/unsubscribe",
    ]


def test_long_link_survives_quoted_printable_soft_breaks() -> None:
    url = "https://app.example/verify?token=" + "x" * 150 + "&next=%2Fhome"
    msg = alternative(f"Go to {url} now\n", f'<a href="{url}">go</a>')
    raw = msg.as_bytes()
    assert b"=\n" in raw or b"=\r\n" in raw  # the encoder did fold the line
    assert links(raw) == [url]


def test_links_trim_sentence_punctuation_but_keep_balanced_parentheses() -> None:
    msg = EmailMessage()
    msg.set_content(
        "See (https://a.example/page). Or https://en.example/wiki/Foo_(bar), "
        'or "https://q.example/x?y=1"!\n'
    )
    assert links(msg) == [
        "https://a.example/page",
        "https://en.example/wiki/Foo_(bar)",
        "https://q.example/x?y=1",
    ]


def test_links_skip_attachments_and_accept_compat32_messages() -> None:
    outer = MIMEMultipart()
    outer.attach(MIMEText("Click https://site.example/a\n", "plain", "utf-8"))
    attached = MIMEText("https://attached.example/ignored\n", "plain", "utf-8")
    attached.add_header("Content-Disposition", "attachment", filename="notes.txt")
    outer.attach(attached)
    assert links(outer) == ["https://site.example/a"]


def test_codes_default_six_digits_from_subject_text_and_visible_html() -> None:
    msg = alternative(
        "Your code is 482913.\nOrder 12345678 is not a code.\n",
        '<html><head><style>p { color: #123456 }</style></head>'
        '<body><p style="color:#654321">Code: <b>482913</b></p>'
        "<p>Backup code 771020</p><script>var x = 999999;</script></body></html>",
    )
    del msg["Subject"]
    msg["Subject"] = "555123 is your sign-in code"
    assert codes(msg) == ["555123", "482913", "771020"]


def test_codes_custom_pattern_with_a_group() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Reset"
    msg.set_content("Reset code: AB12-CD34\nagain: AB12-CD34, other: ZZ99-YY88\n")
    assert codes(msg, r"\b([A-Z]{2}\d{2}-[A-Z]{2}\d{2})\b") == ["AB12-CD34", "ZZ99-YY88"]
    assert codes(msg, re.compile(r"code: (\S+)")) == ["AB12-CD34"]


def test_base64_and_charset_decoded() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Bestätigung"
    msg.set_content("Ihr Code lautet 246810 - https://beispiel.example/bestätigen\n",
                    charset="iso-8859-1", cte="base64")
    assert codes(msg) == ["246810"]
    assert links(msg) == ["https://beispiel.example/bestätigen"]


def test_accepts_bytes_and_str_rejects_other_types() -> None:
    raw = b"Subject: x\r\nContent-Type: text/plain\r\n\r\ncode 135790 at https://e.example/\r\n"
    assert codes(raw) == ["135790"]
    assert links(raw.decode()) == ["https://e.example/"]
    with pytest.raises(TypeError):
        links(42)  # type: ignore[arg-type]


def test_no_text_parts_gives_empty_lists() -> None:
    msg = EmailMessage()
    msg.set_content(b"\x00\x01", maintype="application", subtype="octet-stream")
    assert links(msg) == []
    assert codes(msg) == []
