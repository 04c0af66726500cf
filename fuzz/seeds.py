"""Seed inputs, readable here and written to corpus/<target>/seed-NN by `python -m fuzz --seed`.

Stream harnesses read a 6-byte header first (harness/_support.py `Steer`): read size, limits,
then the session's decisions. YES accepts everything in one read; SMALL reads 7 octets at a
time with the tightest limits and mixed decisions.
"""

from __future__ import annotations

from typing import Final

YES: Final = b"\x00\x00\xff\xff\xff\xff"
SMALL: Final = b"\x07\x55\xa5\x5a\x3c\xc3"

_MESSAGE: Final = (
    b"Return-Path: <ann@example.org>\r\nFrom: Ann <ann@example.org>\r\n"
    b"To: bob@example.test, \"B, C\" <c@example.test>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Tue, 05 Mar 2024 23:30:00 -0800\r\nMessage-ID: <1@example.org>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\nHall=C3=B6 Bob\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n"
    b"--b1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''%C3%A4.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Language: de\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
)
_SIGNED: Final = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;\r\n"
    b" i=@football.example.com; q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1D"
    b"w==\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\nTo: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n\r\n"
    b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n"
)

SEEDS: Final[dict[str, list[bytes]]] = {
    "smtp": [
        YES + b"EHLO client.example\r\nMAIL FROM:<a@example.org> SIZE=120 BODY=8BITMIME\r\n"
        b"RCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.test\r\n"
        b"DATA\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
        SMALL + b"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nline\n.\r\n"
        b"RSET\r\nNOOP\r\nVRFY bob\r\nHELP\r\n",
        YES + b"EHLO c\r\nMAIL FROM:<@a.example,@b.example:\"q x\"@[192.0.2.1]> SMTPUTF8\r\n"
        b"RCPT TO:<\xc3\xa9@b\xc3\xbc.example>\r\nBDAT 5\r\nabcdeBDAT 0 LAST\r\nQUIT\r\n",
        YES + b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\nYWxpY2U=\r\n"
        b"STARTTLS\r\nEHLO again\r\nMAIL FROM:<a@b> AUTH=<> ENVID=x+2B RET=HDRS\r\n",
        SMALL + b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + b"x" * 60
        + b"\r\na\rb\r\n.\r\n" + b"A" * 80 + b"\r\nQUIT\r\n",
    ],
    "sasl": [
        b"\x01AGFsaWNlAHNlY3JldA==",
        b"\x03AGFsaWNlAHNlY3JldA==\n",
        b"\x00YWxpY2U=\nc2VjcmV0\n",
        b"\x02=\n*\n",
        b"\x01\nYWxpY2UAYm9iAHB3\n",
    ],
    "pop3": [
        YES + b"CAPA\r\nUSER alice@example.test\r\nPASS sec ret\r\nSTAT\r\nLIST\r\nLIST 1\r\n"
        b"RETR 1\r\nTOP 1 10\r\nUIDL\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
        SMALL + b"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nAUTH\r\nSTLS\r\nLIST 99999999999\r\n",
        YES + b"AUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n*\r\nUSER \x01\r\n" + b"X" * 300 + b"\n",
    ],
    "imap": [
        YES + b"a1 CAPABILITY\r\na2 LOGIN alice \"pass word\"\r\na3 SELECT INBOX\r\n"
        b"a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)] BODYSTRUCTURE)\r\n"
        b"a5 SEARCH CHARSET UTF-8 OR UNSEEN SUBJECT {3+}\r\n\xc3\xa9x SINCE 1-Jan-2024\r\n"
        b"a6 STORE 1:3 +FLAGS.SILENT (\\Seen $Junk)\r\na7 LOGOUT\r\n",
        YES + b"b1 APPEND Sent (\\Seen) \" 5-Mar-2024 23:30:00 -0800\" {12}\r\n"
        b"Subject: x\r\n\r\nb2 IDLE\r\nDONE\r\nb3 ENABLE UTF8=ACCEPT\r\n"
        b"b4 CREATE \"Entw&APw-rfe\"\r\n"
        b"b5 LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UIDNEXT))\r\n",
        SMALL + b"c1 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nc2 APPEND INBOX ~{4+}\r\n"
        b"\x00abc\r\nc3 NOOP {999999999+}\r\nc4 STATUS INBOX (MESSAGES SIZE)\r\n",
        YES + b"d1 ID (\"name\" \"x\") \r\nd2 NAMESPACE\r\nd3 UID MOVE 1,3:5 Trash\r\n"
        b"d4 SEARCH RETURN (MIN MAX COUNT) NOT (FROM bob HEADER X-A {1}\r\nb)\r\n"
        b"d5 FETCH 1 (BINARY.PEEK[1]<0.10> BINARY.SIZE[2] BODY[1.2.MIME])\r\nDONE\r\n",
    ],
    "imap_search": [
        b"\x00ALL",
        b"\x01CHARSET UTF-8 OR SUBJECT gr\xc3\xbc TEXT \"hello\" NOT DELETED",
        b"\x02RETURN (ALL SAVE) 1:* UID 7,14 LARGER 10 SMALLER 99999 KEYWORD $x",
        b"\x00SENTBEFORE 1-Jan-2025 SENTON \"5-Mar-2024\" BEFORE 1-Feb-2024 HEADER Date \"\"",
        b"\x00(OR (FROM ann) (TO bob)) $ NEW OLD RECENT UNANSWERED BODY {5}\r\nworld",
    ],
    "mutf7": [
        b"\x01Entw&APw-rfe",
        b"\x01&-&ZeVnLIqe-/&U,BTFw-",
        b"\x00Entw\xc3\xbcrfe & \xf0\x9f\x98\x80",
        b"\x01&AGEAYgBj-",
        b"\x01~peter/mail/&U,BTFw-/&ZeVnLIqe-",
    ],
    "message": [
        _MESSAGE,
        _SIGNED,
        b"Subject: plain\r\n\r\nbody\r\n",
        b"Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<p>&eacute;</p>\r\n--x--\r\n",
        b"From: \"a (b\" <c@d>, G: e@f, h@i;\r\nTo: =?utf-8?b?w6k=?= <x@y>\r\n"
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: text/plain\r\n\r\ninner\r\n",
    ],
    "inbound": [
        _SIGNED,
        b"Return-Path: <a@b>\r\nAuthentication-Results: mx.example.test; spf=pass\r\n"
        b"Authentication-Results: other.example; dkim=pass\r\n"
        b"From: A <a@mail.example.co.uk>\r\n\r\nx",
        b"From: a@b, c@d\r\nFrom: e@f\r\n\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=\r\nFrom: x@y\r\n\r\n",
    ],
    "spf": [
        b"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.org/24//64 -all",
        b"v=spf1 include:_spf.example.com redirect=_spf.example.net exp=explain.%{d}",
        b"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} ptr:%{d2} ?all",
        b"v=spf1 a:%{o}.%{v}.%{h}.%{I}.%{C} ~all foo=bar%%%_%-",
        b"%{ir}.%{v}._spf.%{d2}",
    ],
    "dmarc": [
        b"\x00v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; rua=mailto:a@b",
        b"\x01p=none; rua=mailto:d@example.org",
        b"\x00v=DMARC1;p=quarantine;pct=x",
        b"\x01 P = Reject ; fo=1",
        b"\x00v=DMARC1; rua=mailto:x@y; p=bogus",
    ],
}
