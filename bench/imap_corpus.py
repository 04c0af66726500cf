"""Realistic ~4 KB messages for the IMAP bench: varied senders, subjects, dates and structure.

Out of every 10 messages, 7 are text/plain (some quoted-printable with non-ASCII text), 2 are
multipart/alternative (text + HTML) and 1 is multipart/mixed with a small base64 PDF, so that
ENVELOPE, BODYSTRUCTURE and the full-text index see what a real mailbox holds. Subjects are
sometimes RFC 2047 encoded words, and replies carry In-Reply-To. The word `NEEDLE` appears in
exactly the messages whose index is 37 modulo 100 (1 % of them), nowhere else, for SEARCH TEXT.
Deterministic: the same index and seed give the same bytes.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formataddr

NEEDLE = "zeppelin"
SIZE = 4096

FIRST = (
    "Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Greta", "Hiro", "Inès", "Jonas",
    "Katarzyna", "Liam", "María", "Noah", "Olga", "Pedro", "Quentin", "Rosa", "Sven", "Tomás",
)
LAST = ("Martin", "Schmidt", "Rossi", "García", "Kowalski", "Nakamura", "Dubois", "Smith",
        "Jensen", "Silva", "O'Brien", "Novak")
DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "lists.example.io")
TOPICS = (
    "quarterly report", "budget review", "project kickoff", "invoice", "team offsite",
    "release notes", "security update", "meeting notes", "travel plans", "contract draft",
    "hiring update", "customer feedback", "weekly digest", "server migration", "design review",
)
WORDS = (
    "the", "a", "we", "should", "review", "attached", "numbers", "before", "friday", "please",
    "let", "me", "know", "if", "you", "have", "questions", "about", "schedule", "project",
    "budget", "customer", "meeting", "agenda", "next", "week", "update", "deadline", "draft",
    "proposal", "thanks", "regards", "team", "release", "server", "migration", "plan", "notes",
    "quarter", "results", "sales", "growth", "issue", "fixed", "deploy", "tomorrow", "morning",
    "call", "office", "travel", "hotel", "booking", "invoice", "payment", "contract", "signed",
    "légal", "réunion", "straße", "größe", "naïve", "café", "überprüfen", "mañana",
)
ENCODED_SUBJECTS = (
    "=?utf-8?q?R=C3=A9union_d=27=C3=A9quipe?=", "=?utf-8?b?w5xiZXJwcsO8ZnVuZw==?=",
    "=?iso-8859-1?q?Gr=FC=DFe_aus_M=FCnchen?=",
)
START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
PDF = base64.encodebytes(random.Random(7).randbytes(900)).replace(b"\n", b"\r\n")


def _sender(index: int) -> tuple[str, str]:
    first = FIRST[index * 7 % len(FIRST)]
    last = LAST[index * 11 % len(LAST)]
    local = f"{first}.{last}".lower().replace("'", "")
    local = local.encode("ascii", "ignore").decode() or "someone"
    return f"{first} {last}", f"{local}@{DOMAINS[index % len(DOMAINS)]}"


def _text(rng: random.Random, size: int, needle: bool) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(WORDS, k=rng.randint(8, 13))
        if needle and not lines:
            words.insert(3, NEEDLE)
        line = " ".join(words).capitalize() + "."
        lines.append(line)
        total += len(line.encode()) + 2
    return "\r\n".join(lines) + "\r\n"


def _qp(text: str) -> str:
    """Quoted-printable for our short lines (no soft breaks needed below 76 octets)."""
    out = []
    for line in text.split("\r\n"):
        encoded = "".join(
            ch if ch.isascii() and ch != "=" else "".join(f"={b:02X}" for b in ch.encode())
            for ch in line
        )
        while len(encoded) > 75:
            cut = 75 if "=" not in encoded[72:75] else encoded.rfind("=", 0, 75)
            out.append(encoded[:cut] + "=")
            encoded = encoded[cut:]
        out.append(encoded)
    return "\r\n".join(out)


def make_message(index: int, account: str, seed: int = 1) -> bytes:
    """Message `index` of the bench mailbox (about SIZE octets), for `account`."""
    rng = random.Random(seed * 1_000_003 + index)
    name, address = _sender(index)
    kind = index % 10
    topic = TOPICS[rng.randrange(len(TOPICS))]
    prefix = rng.choice(("", "", "Re: ", "Fwd: ", "RE: "))
    subject = (
        ENCODED_SUBJECTS[index % len(ENCODED_SUBJECTS)]
        if index % 13 == 0
        else f"{prefix}{topic} {rng.choice(WORDS[10:40])} #{index}"
    )
    date = START + timedelta(minutes=index * 7 + rng.randrange(7))
    headers = [
        f"Return-Path: <{address}>",
        f"Received: from mx{index % 5}.{address.split('@')[1]} by mx.bench.test with ESMTPS; "
        f"{format_datetime(date)}",
        f"From: {formataddr((name, address))}",
        f"To: {account}",
        *([f"Cc: team-{index % 4}@example.com"] if index % 3 == 0 else []),
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <{index}.{seed}@{address.split('@')[1]}>",
        *([f"In-Reply-To: <{index - 1}.{seed}@example.com>"] if prefix.startswith("R") else []),
        "MIME-Version: 1.0",
    ]
    needle = index % 100 == 37
    head_size = sum(len(h) + 2 for h in headers) + 200
    body_size = max(400, SIZE - head_size)
    if kind < 7:
        text = _text(rng, body_size, needle)
        if kind < 2:
            headers += ["Content-Type: text/plain; charset=utf-8",
                        "Content-Transfer-Encoding: quoted-printable"]
            body = _qp(text)
        else:
            headers += ["Content-Type: text/plain; charset=utf-8",
                        "Content-Transfer-Encoding: 8bit"]
            body = text
    elif kind < 9:
        boundary = f"=_alt_{index}"
        text = _text(rng, body_size // 2 - 150, needle)
        html = "<html><body>" + "".join(f"<p>{line}</p>" for line in text.split("\r\n") if line)
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{html}</body></html>\r\n"
            f"--{boundary}--\r\n"
        )
    else:
        boundary = f"=_mixed_{index}"
        text = _text(rng, body_size - len(PDF) - 300, needle)
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        body = (
            f"This is a multi-part message in MIME format.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
            f"--{boundary}\r\nContent-Type: application/pdf; name=\"report-{index}.pdf\"\r\n"
            f"Content-Disposition: attachment; filename=\"report-{index}.pdf\"\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{PDF.decode()}\r\n"
            f"--{boundary}--\r\n"
        )
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
