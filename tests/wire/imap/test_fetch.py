"""FETCH over the wire (RFC 9051 6.4.5 / 7.5.2, RFC 3501 6.4.5, RFC 3516 BINARY) with imaplib and
a raw client: every data item, every section form on a nested MIME message, partials, BINARY,
the macros, and when \\Seen is set."""

from __future__ import annotations

import base64
import datetime
import imaplib
import re
from typing import Any

import pytest
from imap_wire import (
    ATTACHMENT,
    INNER_BODY,
    INNER_HEADER,
    NESTED,
    NESTED_BODY,
    NESTED_TOP,
    PART1_BODY,
    PART1_MIME,
    PART2_BODY,
    PART2_MIME,
    PART3_BODY,
    PART3_MIME,
    PART11_BODY,
    PART11_MIME,
    PART12_BODY,
    PART12_MIME,
    ImapEnv,
    cheap_hashing,  # noqa: F401 (autouse fixture)
    message,
    raw_client,
)
from imapclient.response_parser import parse_fetch_response

Fetched = dict[int, dict[bytes, Any]]


def fetch(c: imaplib.IMAP4, seq: str, items: str, uid: bool = False) -> Fetched:
    """imaplib's FETCH, parsed by imapclient's response parser, keyed by sequence number."""
    typ, data = c.uid("FETCH", seq, items) if uid else c.fetch(seq, items)
    assert typ == "OK", data
    return dict(parse_fetch_response(data, normalise_times=False, uid_is_key=False))


# ----- plain items and macros ---------------------------------------------------------------------


def test_macros_expand_to_their_items_in_order(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        fast, all_, full = (c.ok(f"FETCH 1 {m}")[0] for m in ("FAST", "ALL", "FULL"))
    head = rb'\* 1 FETCH \(FLAGS \(\) INTERNALDATE "[^"]+" RFC822\.SIZE \d+'
    assert re.fullmatch(head + rb"\)\r\n", fast)
    assert re.fullmatch(head + rb" ENVELOPE \(.*\)\)\r\n", all_)
    assert re.fullmatch(head + rb' ENVELOPE \(.*\) BODY \("TEXT".*\)\)\r\n', full)
    assert b" BODY (" not in all_


def test_flags_internaldate_size_of_an_appended_message(imap: ImapEnv) -> None:
    raw = message(7, subject="appended")
    c = imap.client()
    when = '"24-Nov-2026 09:30:05 +0100"'
    assert c.append("INBOX", "(\\Flagged $Forwarded)", when, raw)[0] == "OK"
    c.select("INBOX")
    got = fetch(c, "1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")[1]
    assert set(got[b"FLAGS"]) == {b"\\Flagged", b"$Forwarded"}
    # The server may answer in any zone; the instant is what counts.
    expected = datetime.datetime(2026, 11, 24, 8, 30, 5, tzinfo=datetime.UTC)
    assert got[b"INTERNALDATE"] == expected
    assert got[b"RFC822.SIZE"] == len(raw) == len(got[b"BODY[]"])
    assert got[b"BODY[]"] == raw
    c.logout()


def test_rfc822_size_is_the_size_of_body_of_a_delivered_message(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1", "(RFC822.SIZE BODY.PEEK[])")[1]
    assert got[b"RFC822.SIZE"] == len(got[b"BODY[]"])
    assert got[b"BODY[]"].endswith(NESTED)  # trace fields, if any, come first
    c.logout()


def test_envelope_of_the_nested_message(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    with raw_client(imap) as c:
        (resp,) = c.ok("FETCH 1 (ENVELOPE)")
    assert resp == (
        b'* 1 FETCH (ENVELOPE ("Tue, 24 Nov 2026 09:30:00 +0100" "Nested parts" '
        b'(("Alice Sender" NIL "alice.sender" "example.test")) '
        b'(("Alice Sender" NIL "alice.sender" "example.test")) '
        b'(("Alice Sender" NIL "alice.sender" "example.test")) '
        b'(("Bob" NIL "bob" "example.test")(NIL NIL "carol" "example.test")) '
        b'(("Dave" NIL "dave" "example.test")) NIL NIL "<nested@example.test>"))\r\n'
    )


def _lines(body: bytes) -> int:
    return body.count(b"\n")


INNER_ENVELOPE = (
    b'("Wed, 25 Nov 2026 08:00:00 +0000" "Inner message" (("Eve" NIL "eve" "example.test")) '
    b'(("Eve" NIL "eve" "example.test")) (("Eve" NIL "eve" "example.test")) '
    b'(("Frank" NIL "frank" "example.test")) NIL NIL NIL "<inner@example.test>")'
)


def expected_bodystructure(extended: bool) -> bytes:
    """BODYSTRUCTURE (or BODY) of NESTED, written out from RFC 9051 7.5.2 by hand."""
    ext1 = b" NIL NIL NIL NIL" if extended else b""  # md5, disposition, language, location
    p11 = (b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d %d%s)'
           % (len(PART11_BODY), _lines(PART11_BODY), ext1))
    p12 = (b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "8BIT" %d %d%s)'
           % (len(PART12_BODY), _lines(PART12_BODY), ext1))
    p1 = b'(%s%s "ALTERNATIVE"%s)' % (p11, p12, b' ("BOUNDARY" "inner") NIL NIL NIL'
                                      if extended else b"")
    p2 = (b'("APPLICATION" "OCTET-STREAM" ("NAME" "data.bin") NIL NIL "BASE64" %d%s)'
          % (len(PART2_BODY), b' NIL ("ATTACHMENT" ("FILENAME" "data.bin")) "en" NIL'
             if extended else b""))
    inner = (b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d %d%s)'
             % (len(INNER_BODY), _lines(INNER_BODY), ext1))
    p3 = (b'("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" %d %s %s %d%s)'
          % (len(PART3_BODY), INNER_ENVELOPE, inner, _lines(PART3_BODY), ext1))
    return b'(%s%s%s "MIXED"%s)' % (p1, p2, p3, b' ("BOUNDARY" "outer") NIL NIL NIL'
                                    if extended else b"")


def test_bodystructure_and_body_of_the_nested_message(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    with raw_client(imap) as c:
        (bs,) = c.ok("FETCH 1 (BODYSTRUCTURE)")
        (body,) = c.ok("FETCH 1 (BODY)")
    assert bs == b"* 1 FETCH (BODYSTRUCTURE " + expected_bodystructure(True) + b")\r\n"
    assert body == b"* 1 FETCH (BODY " + expected_bodystructure(False) + b")\r\n"


def test_bodystructure_of_a_single_part_message(imap: ImapEnv) -> None:
    imap.deliver(message(1, body=b"line one\r\nline two\r\n"))
    with raw_client(imap) as c:
        (bs,) = c.ok("FETCH 1 (BODYSTRUCTURE)")
    assert bs == (b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL '
                  b'"7BIT" 20 2 NIL NIL NIL NIL))\r\n')


# ----- sections -----------------------------------------------------------------------------------


SECTIONS: list[tuple[str, bytes]] = [
    ("", NESTED),
    ("HEADER", NESTED_TOP),
    ("TEXT", NESTED_BODY),
    ("1", PART1_BODY),
    ("1.MIME", PART1_MIME),
    ("1.1", PART11_BODY),
    ("1.1.MIME", PART11_MIME),
    ("1.2", PART12_BODY),
    ("1.2.MIME", PART12_MIME),
    ("2", PART2_BODY),
    ("2.MIME", PART2_MIME),
    ("3", PART3_BODY),
    ("3.MIME", PART3_MIME),
    ("3.HEADER", INNER_HEADER),
    ("3.TEXT", INNER_BODY),
    ("3.1", INNER_BODY),
    ("3.HEADER.FIELDS (SUBJECT)", b"Subject: Inner message\r\n\r\n"),
    ("4", b""),  # no such part: an empty string (RFC 9051 6.4.5)
    ("1.3", b""),
]


def test_every_section_of_the_nested_message(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    c = imap.client()
    c.select("INBOX")
    items = " ".join(f"BODY.PEEK[{s}]" for s, _ in SECTIONS)
    got = fetch(c, "1", f"({items})")[1]
    for section, want in SECTIONS:
        key = f"BODY[{section}]".encode()
        assert key in got, (key, sorted(got))
        assert (got[key] or b"") == want, section
    assert fetch(c, "1", "(FLAGS)")[1][b"FLAGS"] == ()
    c.logout()


def test_header_fields_and_header_fields_not(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1", "(BODY.PEEK[HEADER.FIELDS (Subject DATE x-missing)] "
                        "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT Date Content-Type)])")[1]
    fields = next(v for k, v in got.items() if k.startswith(b"BODY[HEADER.FIELDS ("))
    assert fields == b"Subject: Nested parts\r\nDate: Tue, 24 Nov 2026 09:30:00 +0100\r\n\r\n"
    rest = next(v for k, v in got.items() if k.startswith(b"BODY[HEADER.FIELDS.NOT"))
    assert rest == (b'From: "Alice Sender" <alice.sender@example.test>\r\n'
                    b"To: Bob <bob@example.test>, carol@example.test\r\n"
                    b"Cc: Dave <dave@example.test>\r\n"
                    b"Message-ID: <nested@example.test>\r\nMIME-Version: 1.0\r\n\r\n")
    c.logout()


def test_header_fields_label_echoes_the_field_names(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        (resp,) = c.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)])")
    assert resp.startswith(b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)] {")
    assert resp.endswith(b"Subject: message 1\r\nMessage-ID: <1@example.test>\r\n\r\n)\r\n")


@pytest.mark.parametrize(("item", "label", "want"), [
    ("BODY.PEEK[]<0.10>", b"BODY[]<0>", NESTED[:10]),
    ("BODY.PEEK[]<10.25>", b"BODY[]<10>", NESTED[10:35]),
    ("BODY.PEEK[1.1]<5.1000>", b"BODY[1.1]<5>", PART11_BODY[5:]),
    ("BODY.PEEK[TEXT]<3.4>", b"BODY[TEXT]<3>", NESTED_BODY[3:7]),
    ("BODY.PEEK[HEADER.FIELDS (SUBJECT)]<9.6>", b"BODY[HEADER.FIELDS (SUBJECT)]<9>",
     b"Nested"),
    ("BODY.PEEK[3.HEADER]<0.4>", b"BODY[3.HEADER]<0>", b"From"),
    ("BODY.PEEK[]<100000.10>", b"BODY[]<100000>", b""),
])
def test_partial_fetches(imap: ImapEnv, item: str, label: bytes, want: bytes) -> None:
    imap.deliver(NESTED)
    with raw_client(imap) as c:
        (resp,) = c.ok(f"FETCH 1 ({item})")
    if want:
        assert resp == b"* 1 FETCH (%s {%d}\r\n%s)\r\n" % (label, len(want), want)
    else:  # RFC 9051 6.4.5: an origin past the end gives an empty string
        assert resp == b'* 1 FETCH (%s "")\r\n' % label


def test_partial_fetch_with_imaplib(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1", "(BODY.PEEK[2]<0.76>)")[1]
    assert got[b"BODY[2]<0>"] == PART2_BODY[:76]
    c.logout()


# ----- BINARY -------------------------------------------------------------------------------------


def test_binary_decodes_parts(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1", "(BINARY.SIZE[2] BINARY.PEEK[1.1] BINARY.SIZE[1.1] "
                        "BINARY.PEEK[1.2] BINARY.PEEK[3.1])")[1]
    assert got[b"BINARY.SIZE[2]"] == len(ATTACHMENT)
    plain = "Café au lait, plain\r\nsecond line".encode()
    assert got[b"BINARY[1.1]"] == plain
    assert got[b"BINARY.SIZE[1.1]"] == len(plain)
    assert got[b"BINARY[1.2]"] == PART12_BODY
    assert got[b"BINARY[3.1]"] == INNER_BODY
    # imapclient's parser does not read literal8; imaplib itself does.
    typ, data = c.fetch("1", "(BINARY.PEEK[2])")
    assert typ == "OK"
    assert data[0] == (b"1 (BINARY[2] ~{%d}" % len(ATTACHMENT), ATTACHMENT)
    assert fetch(c, "1", "(FLAGS)")[1][b"FLAGS"] == ()
    c.logout()


def test_binary_literal8_and_partial(imap: ImapEnv) -> None:
    imap.deliver(NESTED)
    with raw_client(imap) as c:
        (resp,) = c.ok("FETCH 1 (BINARY.PEEK[2]<250.10>)")
        (text,) = c.ok("FETCH 1 (BINARY.PEEK[1.1]<0.4>)")
        (size,) = c.ok("FETCH 1 (BINARY.SIZE[1.2])")
    # Data with NUL goes out as literal8 (RFC 3516 4.3), the rest as a plain literal.
    assert resp == b"* 1 FETCH (BINARY[2]<250> ~{10}\r\n" + ATTACHMENT[250:260] + b")\r\n"
    assert text == b"* 1 FETCH (BINARY[1.1]<0> {4}\r\nCaf\xc3)\r\n"
    assert size == b"* 1 FETCH (BINARY.SIZE[1.2] %d)\r\n" % len(PART12_BODY)


def test_binary_of_an_unknown_encoding_is_unknown_cte(imap: ImapEnv) -> None:
    raw = (b"From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n")
    imap.deliver(raw)
    with raw_client(imap) as c:
        _, tagged = c.command("FETCH 1 (BINARY.PEEK[1])")
        assert tagged.split(b" ", 3)[1:3] == [b"NO", b"[UNKNOWN-CTE]"]
        (body,) = c.ok("FETCH 1 (BODY.PEEK[1])")  # BODY is still fine
    assert body.endswith(b"{7}\r\nbegin\r\n)\r\n")


# ----- RFC822 items and \Seen ----------------------------------------------------------------


def test_rfc822_items(imap: ImapEnv) -> None:
    raw = message(1)
    imap.deliver(raw)
    c = imap.client()
    c.select("INBOX")
    head, _, text = raw.partition(b"\r\n\r\n")
    got = fetch(c, "1", "(RFC822.HEADER)")[1]
    assert got[b"RFC822.HEADER"].endswith(head + b"\r\n\r\n")
    assert b"FLAGS" not in got  # RFC822.HEADER is like BODY.PEEK[HEADER]
    got = fetch(c, "1", "(RFC822.TEXT)")[1]
    assert got[b"RFC822.TEXT"] == text
    assert got[b"FLAGS"] == (b"\\Seen",)  # it sets \Seen and says so
    got = fetch(c, "1", "(RFC822)")[1]
    assert got[b"RFC822"].endswith(raw)
    c.logout()


SEEN_CASES = [
    ("BODY[]", True),
    ("BODY[HEADER]", True),
    ("BODY[1]", True),
    ("BODY[TEXT]<0.5>", True),
    ("BINARY[1]", True),
    ("RFC822", True),
    ("RFC822.TEXT", True),
    ("BODY.PEEK[]", False),
    ("BODY.PEEK[TEXT]", False),
    ("BINARY.PEEK[1]", False),
    ("BINARY.SIZE[1]", False),
    ("RFC822.HEADER", False),
    ("RFC822.SIZE", False),
    ("ENVELOPE", False),
    ("BODYSTRUCTURE", False),
    ("FULL", False),
]


def test_which_items_set_seen(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, len(SEEN_CASES) + 1)))
    with raw_client(imap) as c:
        for n, (item, sets_seen) in enumerate(SEEN_CASES, 1):
            (resp,) = c.ok(f"FETCH {n} ({item})" if " " not in item and item != "FULL"
                           else f"FETCH {n} {item}")
            # RFC 3501 6.4.5: the changed flags are sent with the data.
            assert (b"FLAGS (\\Seen)" in resp) == sets_seen, item
        flags = c.ok(f"FETCH 1:{len(SEEN_CASES)} (FLAGS)")
    for (item, sets_seen), resp in zip(SEEN_CASES, flags, strict=True):
        assert (b"\\Seen" in resp) == sets_seen, item


def test_seen_already_set_is_not_repeated_unasked(imap: ImapEnv) -> None:
    imap.deliver(message(1))
    with raw_client(imap) as c:
        c.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
        (resp,) = c.ok("FETCH 1 (BODY[TEXT])")
        assert b"FLAGS" not in resp
        (resp,) = c.ok("FETCH 1 (FLAGS BODY[TEXT])")
        assert resp.startswith(b"* 1 FETCH (FLAGS (\\Seen) BODY[TEXT] {")


def test_examine_never_sets_seen(imap: ImapEnv) -> None:
    imap.deliver(message(1), NESTED)
    with raw_client(imap, None) as c:
        c.ok("EXAMINE INBOX")
        for item in ("BODY[]", "RFC822", "RFC822.TEXT", "BINARY[1]", "BODY[1.1]"):
            (resp,) = c.ok(f"FETCH 1:2 ({item})")[:1]
            assert b"FLAGS" not in resp
        assert c.ok("FETCH 1:2 (FLAGS)") == [b"* 1 FETCH (FLAGS ())\r\n",
                                              b"* 2 FETCH (FLAGS ())\r\n"]
        c.ok("SELECT INBOX")
        assert c.ok("FETCH 1:2 (FLAGS)") == [b"* 1 FETCH (FLAGS ())\r\n",
                                              b"* 2 FETCH (FLAGS ())\r\n"]


# ----- UID FETCH and sequence sets -------------------------------------------------------------


def test_uid_fetch_always_includes_uid(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2), message(3))
    with raw_client(imap) as c:
        c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
        assert c.ok("UID FETCH 1:* (FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS ())\r\n",
                                                  b"* 2 FETCH (UID 3 FLAGS ())\r\n"]
        assert c.ok("UID FETCH 2 (FLAGS)") == []  # an expunged UID is no error
        assert c.ok("UID FETCH 3 (RFC822.SIZE UID)")[0].startswith(b"* 2 FETCH (RFC822.SIZE ")
        # n:* names the highest UID even when n is above it (RFC 9051 6.4.9).
        assert c.ok("UID FETCH 7:* (FLAGS)") == [b"* 2 FETCH (UID 3 FLAGS ())\r\n"]
        assert c.ok("UID FETCH 4:6 (FLAGS)") == []
        (resp,) = c.ok("UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert resp.startswith(b"* 2 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {")


def test_fetch_sequence_sets(imap: ImapEnv) -> None:
    imap.deliver(*(message(i) for i in range(1, 6)))
    with raw_client(imap) as c:
        def numbers(seq: str) -> list[int]:
            return [int(resp.split(b" ")[1]) for resp in c.ok(f"FETCH {seq} (UID)")]

        assert numbers("1:*") == [1, 2, 3, 4, 5]
        assert numbers("*") == [5]
        assert numbers("4:2") == [2, 3, 4]
        assert numbers("5,1,3:3,1") == [1, 3, 5]
        assert numbers("*:4") == [4, 5]


def test_fetch_beyond_the_last_message_is_bad(imap: ImapEnv) -> None:
    imap.deliver(message(1), message(2))
    with raw_client(imap) as c:
        # RFC 9051 9 (seq-number): "The server should respond with a tagged BAD response to a
        # command that uses a message sequence number greater than the number of messages".
        for cmd in ("FETCH 3 (FLAGS)", "FETCH 1:5 (FLAGS)", "STORE 3 +FLAGS (\\Seen)",
                    "COPY 2:3 INBOX"):
            untagged, tagged = c.command(cmd)
            assert tagged.split(b" ")[1] == b"BAD", cmd
            assert untagged == []
        c.ok("CREATE Empty")
        c.ok("SELECT Empty")
        _, tagged = c.command("FETCH * (FLAGS)")  # "*" in an empty mailbox
        assert tagged.split(b" ")[1] == b"BAD"
        assert c.ok("UID FETCH 1:* (FLAGS)") == []  # UIDs that do not exist are fine


def test_fetch_many_messages_in_batches(imap: ImapEnv) -> None:
    count = 230  # more than one batch of file reads (messages._FETCH_BATCH)
    imap.deliver(*(message(i) for i in range(1, count + 1)))
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert sorted(got) == list(range(1, count + 1))
    for n, items in got.items():
        assert items[b"UID"] == n
        assert items[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: message %d\r\n\r\n" % n
    c.logout()


def test_sections_of_a_big_message_read_by_range(imap: ImapEnv) -> None:
    """Above 256 KiB (messages._WHOLE_READ_LIMIT) sections are read by byte range."""
    payload = bytes(range(256)) * 1300
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw = (b"From: a@example.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nsmall text\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b--\r\n")
    assert len(raw) > 256 * 1024
    imap.deliver(raw)
    c = imap.client()
    c.select("INBOX")
    got = fetch(c, "1", "(RFC822.SIZE BODY.PEEK[1] BODY.PEEK[2]<1000.100> BINARY.SIZE[2] "
                        "BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.MIME])")[1]
    assert got[b"BODY[1]"] == b"small text"
    assert got[b"BODY[2]<1000>"] == b64[1000:1100]
    assert got[b"BINARY.SIZE[2]"] == len(payload)
    assert got[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: big\r\n\r\n"
    assert got[b"BODY[2.MIME]"].startswith(b"Content-Type: application/octet-stream\r\n")
    full = fetch(c, "1", "(BODY.PEEK[])")[1][b"BODY[]"]
    assert got[b"RFC822.SIZE"] == len(full)
    assert full.endswith(raw)
    typ, data = c.fetch("1", "(BINARY.PEEK[2])")
    assert typ == "OK"
    assert data[0][1] == payload
    c.logout()
