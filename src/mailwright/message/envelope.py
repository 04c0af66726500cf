"""IMAP strings and the ENVELOPE structure (RFC 3501 7.4.2, RFC 9051 7.5.2), as wire bytes.

Values are sent as they are on the wire: RFC 2047 encoded-words stay encoded (the client decodes
them), 8-bit bytes are kept. A string goes out quoted when it is short 7-bit text without CR, LF
or NUL (RFC 3501 9, `quoted`), and as a literal otherwise; NUL is never allowed in a string, so it
is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailwright.message.limits import MAX_ADDRESS_HEADER, MAX_QUOTED

NIL = b"NIL"

_QUOTED_SAFE = bytes(sorted(set(range(0x01, 0x80)) - {0x0A, 0x0D}))


def istring(value: bytes) -> bytes:
    """An IMAP `string`: quoted when it can be, a literal when it must be."""
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    if len(value) <= MAX_QUOTED and not value.translate(None, _QUOTED_SAFE):
        return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """An IMAP `nstring`: NIL for an absent value."""
    return NIL if value is None else istring(value)


# --- addresses ----------------------------------------------------------------------------------
# RFC 5322 3.4 with the obsolete forms of 4.4 (routes, missing commas) tolerated. Tokens are
# (kind, text): "q" quoted-string content, "c" comment content, "s" one of the specials <>,:;@,
# "a" an atom (dots, domain literals and any junk included). Parsing is by hand because the
# stdlib's getaddresses() flattens groups, which ENVELOPE must keep.

_Token = tuple[str, str]
_STOP = frozenset(' \t\r\n"(<>,:;@[')


def _tokenize(s: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and s[j] != '"':
                if s[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(s[j])
                j += 1
            out.append(("q", "".join(buf)))
            i = j + 1
        elif c == "(":
            depth, j, buf = 1, i + 1, []
            while j < n:
                ch = s[j]
                if ch == "\\" and j + 1 < n:
                    buf.append(s[j + 1])
                    j += 2
                    continue
                if ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if depth == 0:
                        break
                buf.append(ch)
                j += 1
            out.append(("c", "".join(buf)))
            i = j + 1
        elif c in "<>,:;@":
            out.append(("s", c))
            i += 1
        elif c == "[":
            j = s.find("]", i)
            j = n if j < 0 else j + 1
            out.append(("a", s[i:j]))
            i = j
        else:
            j = i
            while j < n and s[j] not in _STOP:
                j += 1
            out.append(("a", s[i:j]))
            i = j
    return out


def _enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _address(tokens: list[_Token]) -> bytes | None:
    """One mailbox as (name adl mailbox host), or None when the tokens hold nothing."""
    words = [t for t in tokens if t[0] != "c"]
    if not words:
        return None
    name: str | None = None
    adl: str | None = None
    if ("s", "<") in words:
        lt = words.index(("s", "<"))
        phrase = [v for k, v in words[:lt] if k in "aq"]
        name = " ".join(phrase) if phrase else None
        spec = words[lt + 1 :]
        if ("s", ">") in spec:
            spec = spec[: spec.index(("s", ">"))]
        if spec and spec[0] == ("s", "@") and ("s", ":") in spec:
            colon = spec.index(("s", ":"))
            adl = "".join(v for _, v in spec[:colon])
            spec = spec[colon + 1 :]
    else:
        spec = words
        comments = [v for k, v in tokens if k == "c" and v.strip()]
        name = comments[0].strip() if comments else None
    ats = [i for i, t in enumerate(spec) if t == ("s", "@")]
    if ats:
        local = "".join(v for k, v in spec[: ats[-1]] if k in "aq")
        host = "".join(v for k, v in spec[ats[-1] + 1 :] if k == "a")
    else:
        local = "".join(v for k, v in spec if k in "aq")
        host = ""
    if not local and not host and name is None:
        return None
    # An empty host must not be NIL: NIL host marks group syntax (RFC 3501 7.4.2).
    return b"(%s %s %s %s)" % (
        nstring(None if name is None else _enc(name)),
        nstring(None if adl is None else _enc(adl)),
        istring(_enc(local)),
        istring(_enc(host)),
    )


def address_list(value: bytes | None) -> bytes:
    """An envelope address list: "(" 1*address ")" or NIL, groups kept (RFC 3501 7.4.2)."""
    if value is None:
        return NIL
    tokens = _tokenize(value[:MAX_ADDRESS_HEADER].decode("utf-8", "surrogateescape"))
    out: list[bytes] = []
    cur: list[_Token] = []
    in_angle = in_group = False
    # Whether `cur` holds a special; kept as a flag so that a run of ":" stays linear.
    cur_special = False

    def flush() -> None:
        nonlocal cur_special
        addr = _address(cur)
        if addr is not None:
            out.append(addr)
        cur.clear()
        cur_special = False

    for tok in tokens:
        if tok == ("s", "<"):
            in_angle = True
        elif tok == ("s", ">"):
            in_angle = False
        elif not in_angle and tok == ("s", ","):
            flush()
            continue
        elif not in_angle and tok == ("s", ":") and not in_group and not cur_special:
            # group start: display-name ":" (RFC 5322 3.4); sent as (NIL NIL "name" NIL).
            phrase = " ".join(v for k, v in cur if k in "aq")
            out.append(b"(NIL NIL %s NIL)" % istring(_enc(phrase)))
            cur.clear()
            in_group = True
            continue
        elif not in_angle and tok == ("s", ";") and in_group:
            flush()
            out.append(b"(NIL NIL NIL NIL)")
            in_group = False
            continue
        cur.append(tok)
        cur_special = cur_special or tok[0] == "s"
    flush()
    if in_group:
        out.append(b"(NIL NIL NIL NIL)")
    return b"(" + b"".join(out) + b")" if out else NIL


ENVELOPE_FIELDS = frozenset(
    {
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    }
)


def envelope(fields: Mapping[bytes, bytes]) -> bytes:
    """ENVELOPE from the first occurrence of each field (lower-case names, unfolded values).

    RFC 3501 7.4.2: absent fields are NIL; "If the Sender or Reply-To lines are absent in the
    header, or are present but empty, the server sets the corresponding member of the envelope
    to be the same value as the from member."
    """
    from_ = address_list(fields.get(b"from"))
    sender = address_list(fields.get(b"sender"))
    reply_to = address_list(fields.get(b"reply-to"))
    return b"(%s)" % b" ".join(
        [
            nstring(fields.get(b"date")),
            nstring(fields.get(b"subject")),
            from_,
            from_ if sender == NIL else sender,
            from_ if reply_to == NIL else reply_to,
            address_list(fields.get(b"to")),
            address_list(fields.get(b"cc")),
            address_list(fields.get(b"bcc")),
            nstring(fields.get(b"in-reply-to")),
            nstring(fields.get(b"message-id")),
        ]
    )
