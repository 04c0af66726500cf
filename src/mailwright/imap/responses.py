"""Server responses to the wire (RFC 3501 7, RFC 9051 7): the server-side twin of `render`.

Every function returns complete response octets, CRLF included, ready to write. Invariants:
- Pure: values in, bytes out; no I/O, no clock, no store.
- Text after a status (resp-text) never carries CR, LF or NUL (RFC 9051 9 `TEXT-CHAR`), so a
  message taken from an exception cannot split a response; it is 7-bit unless `utf8`.
- Strings are atoms where the grammar allows, quoted when short 7-bit text, and literals
  otherwise (8-bit without UTF8=ACCEPT, CR/LF, longer than MAX_QUOTED). Server literals are
  always synchronizing "{n}" (RFC 9051 4.3: LITERAL+ is a client-to-server form); "~{n}" is the
  literal8 of BINARY (RFC 3516 4.3).
- Mailbox names go out in modified UTF-7 (RFC 3501 5.1.3) unless UTF8=ACCEPT is enabled
  (RFC 6855 3), in which case they are UTF-8 quoted strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from mailwright.imap import mutf7
from mailwright.imap.lexer import ASTRING_CHARS

# RFC 9051 does not bound quoted strings, but long ones are hard for clients that read line by
# line (imaplib keeps the whole line); Dovecot switches to a literal well before this.
MAX_QUOTED: Final = 1024

Status = Literal["OK", "NO", "BAD", "PREAUTH", "BYE"]
CRLF: Final = b"\r\n"
NIL: Final = b"NIL"
# RFC 3501 2.3.2 system flags in their usual order; keywords follow, sorted.
_SYSTEM_FLAGS: Final = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent")


# --- strings ------------------------------------------------------------------------------------


def _raw(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def can_quote(data: bytes, utf8: bool = False) -> bool:
    """RFC 9051 9 `quoted`: no NUL, CR or LF, 7-bit unless UTF-8 is allowed, not too long."""
    if len(data) > MAX_QUOTED or b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    return utf8 or data.isascii()


def quoted(data: str | bytes) -> bytes:
    """A quoted string; the caller has checked `can_quote`."""
    raw = _raw(data)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes, binary: bool = False) -> bytes:
    """A synchronizing literal "{n}" CRLF data, or the literal8 "~{n}" of BINARY (RFC 3516)."""
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def string(value: str | bytes, utf8: bool = False) -> bytes:
    """An IMAP `string`: quoted when it can be, a literal otherwise."""
    raw = _raw(value)
    return quoted(raw) if can_quote(raw, utf8) else literal(raw)


def nstring(value: str | bytes | None, utf8: bool = False) -> bytes:
    return NIL if value is None else string(value, utf8)


def astring(value: str | bytes, utf8: bool = False) -> bytes:
    """An `astring`: an atom (ASTRING-CHAR, "]" allowed) when possible, else a string."""
    raw = _raw(value)
    if raw and all(b in ASTRING_CHARS for b in raw):
        return raw
    return string(raw, utf8)


def mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name: modified UTF-7 unless UTF8=ACCEPT (RFC 6855 3) is enabled."""
    return astring(name if utf8 else mutf7.encode(name), utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """A parenthesised flag list: system flags in a fixed order, then keywords sorted."""
    given = set(flags)
    system = [f for f in _SYSTEM_FLAGS if f in given]
    rest = sorted(given - set(system))
    return b"(" + b" ".join(f.encode("utf-8") for f in system + rest) + b")"


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Compress numbers into a sequence set in the order given: [1, 2, 3, 5, 7, 8] -> 1:3,5,7:8.

    Only ascending runs are joined and the order is kept, so that the two sets of a COPYUID
    code still correspond number by number (RFC 4315 3); sort first for ESEARCH ALL.
    """
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in runs)


def _text(text: str, utf8: bool) -> bytes:
    """resp-text's text: CR, LF and NUL become spaces; never empty (RFC 3501 `1*TEXT-CHAR`)."""
    cleaned = text.replace("\r", " ").replace("\n", " ").replace("\x00", " ").strip()
    if not cleaned:
        cleaned = "done"
    return cleaned.encode("utf-8") if utf8 else cleaned.encode("ascii", "replace")


# --- response codes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A resp-text-code (RFC 9051 7.1): an atom and its already-encoded data, if any."""

    atom: str
    data: bytes = b""

    def __bytes__(self) -> bytes:
        head = self.atom.encode("ascii")
        return b"[" + head + (b" " + self.data if self.data else b"") + b"]"


ALERT: Final = Code("ALERT")
TRYCREATE: Final = Code("TRYCREATE")
TOOBIG: Final = Code("TOOBIG")
NONEXISTENT: Final = Code("NONEXISTENT")
ALREADYEXISTS: Final = Code("ALREADYEXISTS")
CANNOT: Final = Code("CANNOT")
AUTHENTICATIONFAILED: Final = Code("AUTHENTICATIONFAILED")
AUTHORIZATIONFAILED: Final = Code("AUTHORIZATIONFAILED")
SERVERBUG: Final = Code("SERVERBUG")
UNAVAILABLE: Final = Code("UNAVAILABLE")
READ_ONLY: Final = Code("READ-ONLY")
READ_WRITE: Final = Code("READ-WRITE")
CLOSED: Final = Code("CLOSED")
LIMIT: Final = Code("LIMIT")
PRIVACYREQUIRED: Final = Code("PRIVACYREQUIRED")
INUSE: Final = Code("INUSE")
# RFC 9051 7.1: DELETE refused because the mailbox has children (we keep no \Noselect names).
HASCHILDREN: Final = Code("HASCHILDREN")
NOPERM: Final = Code("NOPERM")
OVERQUOTA: Final = Code("OVERQUOTA")
EXPUNGEISSUED: Final = Code("EXPUNGEISSUED")
CLIENTBUG: Final = Code("CLIENTBUG")
UNKNOWN_CTE: Final = Code("UNKNOWN-CTE")


def code_capability(capabilities: Sequence[str]) -> Code:
    return Code("CAPABILITY", " ".join(capabilities).encode("ascii"))


def code_uidvalidity(n: int) -> Code:
    return Code("UIDVALIDITY", b"%d" % n)


def code_uidnext(n: int) -> Code:
    return Code("UIDNEXT", b"%d" % n)


def code_unseen(n: int) -> Code:
    """RFC 3501 7.1 UNSEEN: the first unseen message's sequence number (IMAP4rev1 only)."""
    return Code("UNSEEN", b"%d" % n)


def code_highestmodseq(n: int) -> Code:
    return Code("HIGHESTMODSEQ", b"%d" % n)


def code_permanentflags(flags: Iterable[str], new_keywords: bool = True) -> Code:
    """PERMANENTFLAGS; `new_keywords` adds "\\*" (clients may create keywords, RFC 9051 7.1)."""
    body = flag_list(flags)
    if new_keywords:
        body = body[:-1] + (b" \\*)" if len(body) > 2 else b"\\*)")
    return Code("PERMANENTFLAGS", body)


def code_appenduid(uidvalidity: int, uid: int) -> Code:
    return Code("APPENDUID", b"%d %d" % (uidvalidity, uid))


def code_copyuid(uidvalidity: int, source: Sequence[int], dest: Sequence[int]) -> Code:
    """COPYUID (RFC 4315 3): source and destination UIDs in corresponding order."""
    if len(source) != len(dest):
        raise ValueError("COPYUID needs as many destination UIDs as source UIDs")
    return Code("COPYUID", b"%d %s %s" % (uidvalidity, sequence_set(source), sequence_set(dest)))


# --- status responses ---------------------------------------------------------------------------


def _resp_text(code: Code | None, text: str, utf8: bool) -> bytes:
    return (bytes(code) + b" " if code is not None else b"") + _text(text, utf8)


def tagged(tag: str, status: Literal["OK", "NO", "BAD"], text: str, code: Code | None = None,
           utf8: bool = False) -> bytes:
    """`tag OK [CODE] text` (RFC 9051 7.1)."""
    return b"%s %s %s\r\n" % (tag.encode("ascii", "replace"), status.encode(),
                              _resp_text(code, text, utf8))


def untagged_status(status: Status, text: str, code: Code | None = None,
                    utf8: bool = False) -> bytes:
    """`* OK [UIDVALIDITY 3] text`, `* BYE ...`, `* PREAUTH ...`."""
    return b"* %s %s\r\n" % (status.encode(), _resp_text(code, text, utf8))


def continuation(text: str = "", data: bytes | None = None) -> bytes:
    """`+ text` (RFC 9051 7.6), or `+ base64` for an AUTHENTICATE challenge when `data`."""
    if data is not None:
        return b"+ " + data + CRLF
    cleaned = text.replace("\r", " ").replace("\n", " ").strip()
    return b"+ " + cleaned.encode("ascii", "replace") + CRLF if cleaned else b"+ \r\n"


# --- untagged data ------------------------------------------------------------------------------


def exists(n: int) -> bytes:
    return b"* %d EXISTS\r\n" % n


def recent(n: int) -> bytes:
    """RFC 3501 only; IMAP4rev2 dropped RECENT."""
    return b"* %d RECENT\r\n" % n


def expunge(msn: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % msn


def flags(names: Iterable[str]) -> bytes:
    return b"* FLAGS " + flag_list(names) + CRLF


def capability(capabilities: Sequence[str]) -> bytes:
    return b"* CAPABILITY " + " ".join(capabilities).encode("ascii") + CRLF


def enabled(capabilities: Sequence[str]) -> bytes:
    """RFC 5161 3.2: `* ENABLED` lists only what this command newly enabled (may be none)."""
    return b"* ENABLED" + b"".join(b" " + c.encode("ascii") for c in capabilities) + CRLF


def list_(attributes: Iterable[str], name: str, delimiter: str | None = "/", utf8: bool = False,
          extended: bytes = b"", verb: Literal["LIST", "LSUB"] = "LIST") -> bytes:
    """`* LIST (attrs) "/" name [extended]` (RFC 9051 7.3.1); `extended` is ready-made
    mbox-list-extended data such as `("CHILDINFO" ("SUBSCRIBED"))` (RFC 5258)."""
    attrs = b"(" + b" ".join(a.encode("ascii") for a in attributes) + b")"
    delim = NIL if delimiter is None else quoted(delimiter)
    out = b"* %s %s %s %s" % (verb.encode(), attrs, delim, mailbox(name, utf8))
    return out + (b" " + extended if extended else b"") + CRLF


def list_oldname(old: str, utf8: bool = False) -> bytes:
    """The RFC 9051 7.3.1 OLDNAME extended item for a LIST after RENAME."""
    return b'("OLDNAME" (' + mailbox(old, utf8) + b"))"


def status(name: str, items: Sequence[tuple[str, int]], utf8: bool = False) -> bytes:
    """`* STATUS name (MESSAGES 2 UIDNEXT 7)` (RFC 9051 7.3.4), items in the order given."""
    body = b" ".join(b"%s %d" % (k.encode("ascii"), v) for k, v in items)
    return b"* STATUS " + mailbox(name, utf8) + b" (" + body + b")" + CRLF


def search(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """`* SEARCH 2 3 6` (RFC 3501 7.2.5), with `(MODSEQ n)` for CONDSTORE (RFC 7162 3.1.5)."""
    out = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return out + CRLF


def esearch(tag: str | None, *, uid: bool, min_: int | None = None, max_: int | None = None,
            count: int | None = None, all_: Sequence[int] | None = None,
            modseq: int | None = None) -> bytes:
    """`* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 3 ALL 2,5:6` (RFC 4731 3.1, RFC 9051 7.3.4).

    Each return item is given or None; ALL with no numbers is left out (RFC 9051: "ALL" must
    not carry an empty set), so a search without matches answers just the correlator.
    """
    out = b"* ESEARCH"
    if tag is not None:
        out += b" (TAG " + quoted(tag) + b")"
    if uid:
        out += b" UID"
    if min_ is not None:
        out += b" MIN %d" % min_
    if max_ is not None:
        out += b" MAX %d" % max_
    if count is not None:
        out += b" COUNT %d" % count
    if all_:
        out += b" ALL " + sequence_set(all_)
    if modseq is not None:
        out += b" MODSEQ %d" % modseq
    return out + CRLF


def namespace(personal: Sequence[tuple[str, str | None]] = (("", "/"),),
              other: Sequence[tuple[str, str | None]] = (),
              shared: Sequence[tuple[str, str | None]] = (), utf8: bool = False) -> bytes:
    """`* NAMESPACE (("" "/")) NIL NIL` (RFC 2342 5, RFC 9051 7.3.5): (prefix, delimiter)."""

    def group(items: Sequence[tuple[str, str | None]]) -> bytes:
        if not items:
            return NIL
        return b"(" + b"".join(
            b"(" + string(prefix if utf8 else mutf7.encode(prefix), utf8) + b" "
            + (NIL if delim is None else quoted(delim)) + b")"
            for prefix, delim in items
        ) + b")"

    return b"* NAMESPACE %s %s %s\r\n" % (group(personal), group(other), group(shared))


def id_(params: Sequence[tuple[str, str | None]] | None) -> bytes:
    """`* ID ("name" "mailwright")` or `* ID NIL` (RFC 2971 3.2)."""
    if not params:
        return b"* ID NIL\r\n"
    words = b" ".join(string(k) + b" " + nstring(v) for k, v in params)
    return b"* ID (" + words + b")" + CRLF


def fetch(msn: int, items: bytes) -> bytes:
    """`* msn FETCH (items)`; `items` is ready-made msg-att data (see `fetch.fetch_items`)."""
    return b"* %d FETCH (" % msn + items + b")" + CRLF


def vanished(uids: Sequence[int], earlier: bool = False) -> bytes:
    """`* VANISHED (EARLIER) 3:5` (RFC 7162 3.2.10), for QRESYNC later."""
    return b"* VANISHED " + (b"(EARLIER) " if earlier else b"") + sequence_set(uids) + CRLF


__all__ = [
    "ALERT", "ALREADYEXISTS", "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "CANNOT",
    "CLIENTBUG", "CLOSED", "EXPUNGEISSUED", "HASCHILDREN", "INUSE", "LIMIT", "MAX_QUOTED", "NIL",
    "NONEXISTENT", "NOPERM", "OVERQUOTA", "PRIVACYREQUIRED", "READ_ONLY", "READ_WRITE",
    "SERVERBUG", "TOOBIG", "TRYCREATE", "UNAVAILABLE", "UNKNOWN_CTE", "Code", "astring",
    "can_quote", "capability", "code_appenduid", "code_capability", "code_copyuid",
    "code_highestmodseq", "code_permanentflags", "code_uidnext", "code_uidvalidity",
    "code_unseen", "continuation", "enabled", "esearch", "exists", "expunge", "fetch",
    "flag_list", "flags", "id_", "list_", "list_oldname", "literal", "mailbox", "namespace",
    "nstring", "quoted", "recent", "search", "sequence_set", "status", "string", "tagged",
    "untagged_status", "vanished",
]
