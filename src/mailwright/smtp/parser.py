"""One SMTP command line (without its CRLF) -> a Command or a SyntaxErr. Pure; never raises.

Grammar: RFC 5321 4.1.1 (commands), 4.1.2 (paths), 4.1.3 (address literals); ESMTP parameters
of RFC 1870 (SIZE), 6152 (BODY=8BITMIME), 3030 (BODY=BINARYMIME, BDAT), 6531 (SMTPUTF8),
3461 (RET, ENVID, NOTIFY, ORCPT) and 4954 5 (AUTH=).

Leniency, on purpose: verbs are case-insensitive (RFC 5321 2.4), "MAIL FROM: <a@b>" with a
space after the colon is accepted (as Postfix and Exim do), and a source route "@a,@b:" is
accepted and dropped (RFC 5321 4.1.2, C.). Anything else malformed is a 501/555 SyntaxErr.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mailwright.smtp.commands import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Expn,
    Helo,
    Help,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    StartTls,
    Vrfy,
)
from mailwright.smtp.limits import MAX_NUMBER_DIGITS, MAX_PARAM_VALUE, MAX_PARAMS, MAX_PATH
from mailwright.smtp.responses import UNKNOWN_COMMAND, Reply


@dataclass(frozen=True, slots=True)
class SyntaxErr:
    """A line the grammar refuses; `reply` is what the client gets (STYLE.md 5)."""

    reply: Reply


# RFC 5322 3.2.3 atext: the characters of a Dot-string atom (RFC 5321 4.1.2).
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ATEXT = frozenset(_ALNUM + "!#$%&'*+-/=?^_`{|}~")
_LDH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_KEYWORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


# RFC 5321 4.1.1: command lines are printable text; TAB is tolerated as a separator.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _err(code: int, enhanced: str, text: str) -> SyntaxErr:
    return SyntaxErr(Reply(code, enhanced, text))


def _is_utf8_char(c: str) -> bool:
    """RFC 6531 3.3: UTF8-non-ascii is allowed in atoms and domain labels."""
    return ord(c) > 127 and c.isprintable()


def _valid_domain(domain: str) -> bool:
    """RFC 5321 4.1.2 Domain (sub-domains of Let-dig / Ldh-str) or 4.1.3 address literal."""
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        return bool(inner) and all(
            c.isascii() and c.isprintable() and c not in "[]\\ " for c in inner
        )
    # One trailing dot: a fully qualified name written absolutely ("example.test.", RFC 1035
    # 3.1). RFC 5321 does not allow it, but clients send it and Postfix accepts it; the store's
    # normalize_domain drops the dot, so the name is judged local or remote like any other.
    domain = domain.removesuffix(".")
    if not domain or len(domain) > 255:
        return False
    for label in domain.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c in _LDH or _is_utf8_char(c) for c in label):
            return False
    return True


def _valid_local_part(local: str) -> bool:
    if not local:
        return False
    if local.startswith('"'):
        # Quoted-string: qtextSMTP or quoted-pairSMTP (backslash + printable ASCII).
        if len(local) < 2 or not local.endswith('"'):
            return False
        body, i = local[1:-1], 0
        while i < len(body):
            c = body[i]
            if c == "\\":
                if i + 1 >= len(body) or not (32 <= ord(body[i + 1]) <= 126):
                    return False
                i += 2
                continue
            if c == '"' or (ord(c) < 32) or ord(c) == 127:
                return False
            i += 1
        return True
    return all(
        atom and all(c in _ATEXT or _is_utf8_char(c) for c in atom) for atom in local.split(".")
    )


def _split_path(text: str) -> tuple[str, str] | SyntaxErr:
    """'<path> rest' -> (path-inside-brackets, rest). Honors '>' inside a quoted local part."""
    if not text.startswith("<"):
        return _err(501, "5.5.4", "Syntax error: address must be in angle brackets")
    i, quoted = 1, False
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            return text[1:i], text[i + 1 :]
        i += 1
    return _err(501, "5.5.4", "Syntax error: missing '>'")


def parse_mailbox(path: str) -> str | SyntaxErr:
    """The inside of a Path (RFC 5321 4.1.2) -> the mailbox, with any source route dropped."""
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return _err(501, "5.1.3", "Address too long")
    if path.startswith("@"):
        # A-d-l ":" Mailbox: the source route is obsolete and MUST be ignored (RFC 5321 C.).
        colon = path.find(":")
        if colon < 0:
            return _err(501, "5.1.3", "Bad address syntax")
        route = path[:colon].split(",")
        if not all(r.startswith("@") and _valid_domain(r[1:]) for r in route):
            return _err(501, "5.1.3", "Bad source route syntax")
        path = path[colon + 1 :]
    local, at, domain = path.rpartition("@")
    if not at or not _valid_local_part(local) or not _valid_domain(domain):
        return _err(501, "5.1.3", "Bad address syntax")
    return path


def _xtext_ok(value: str) -> bool:
    """RFC 3461 4: xtext is printable ASCII except '+' and '=', or '+' HEXCHAR HEXCHAR."""
    i = 0
    while i < len(value):
        c = value[i]
        if c == "+":
            hx = value[i + 1 : i + 3]
            if len(hx) != 2 or not all(h in "0123456789ABCDEF" for h in hx):
                return False
            i += 3
            continue
        if not (33 <= ord(c) <= 126) or c == "=":
            return False
        i += 1
    return True


def _check_size(v: str | None) -> bool:
    return v is not None and v.isascii() and v.isdigit() and len(v) <= MAX_NUMBER_DIGITS


def _check_body(v: str | None) -> bool:
    return v is not None and v.upper() in {"7BIT", "8BITMIME", "BINARYMIME"}


def _check_flag(v: str | None) -> bool:
    return v is None


def _check_ret(v: str | None) -> bool:
    return v is not None and v.upper() in {"FULL", "HDRS"}


def _check_xtext(v: str | None) -> bool:
    return v is not None and _xtext_ok(v)


def _check_auth(v: str | None) -> bool:
    return v is not None and (v == "<>" or _xtext_ok(v))


def _check_notify(v: str | None) -> bool:
    """RFC 3461 4.1: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY."""
    if v is None:
        return False
    items = v.upper().split(",")
    if items == ["NEVER"]:
        return True
    known = {"SUCCESS", "FAILURE", "DELAY"}
    return len(set(items)) == len(items) and all(i in known for i in items)


def _check_orcpt(v: str | None) -> bool:
    """RFC 3461 4.2: addr-type ";" xtext (RFC 6533 allows utf-8-addr-xtext too)."""
    if v is None:
        return False
    kind, semi, addr = v.partition(";")
    return bool(semi) and bool(kind) and all(c in _KEYWORD for c in kind) and bool(addr) and (
        _xtext_ok(addr) or kind.lower() == "utf-8"
    )


ParamCheck = Callable[[str | None], bool]
MAIL_PARAMS: Mapping[str, ParamCheck] = {
    "SIZE": _check_size,  # RFC 1870 6
    "BODY": _check_body,  # RFC 6152 2, RFC 3030 3
    "SMTPUTF8": _check_flag,  # RFC 6531 3.4
    "RET": _check_ret,  # RFC 3461 4.3
    "ENVID": _check_xtext,  # RFC 3461 4.4
    "AUTH": _check_auth,  # RFC 4954 5
}
RCPT_PARAMS: Mapping[str, ParamCheck] = {
    "NOTIFY": _check_notify,  # RFC 3461 4.1
    "ORCPT": _check_orcpt,  # RFC 3461 4.2
}


def _parse_params(text: str, known: Mapping[str, ParamCheck]) -> dict[str, str | None] | SyntaxErr:
    params: dict[str, str | None] = {}
    words = text.split()
    if len(words) > MAX_PARAMS:
        return _err(501, "5.5.4", "Too many parameters")
    for word in words:
        key, eq, value = word.partition("=")
        if not key or not all(c in _KEYWORD for c in key):
            return _err(501, "5.5.4", "Syntax error in parameters")
        key = key.upper()
        val: str | None = value if eq else None
        if key not in known:
            return _err(555, "5.5.4", f"Parameter {key} not recognized")
        if key in params:
            return _err(501, "5.5.4", f"Duplicate parameter {key}")
        if val is not None and (len(val) > MAX_PARAM_VALUE or not val):
            return _err(501, "5.5.4", f"Bad value for parameter {key}")
        if not known[key](val):
            return _err(501, "5.5.4", f"Bad value for parameter {key}")
        if key == "BODY" and val is not None:
            val = val.upper()
        params[key] = val
    return params


def _parse_path_command(
    rest: str, prefix: str, known: Mapping[str, ParamCheck], allow_null: bool
) -> tuple[str, dict[str, str | None]] | SyntaxErr:
    if rest[: len(prefix)].upper() != prefix:
        return _err(501, "5.5.4", f"Syntax error: expected {prefix}<address>")
    rest = rest[len(prefix) :].lstrip(" ")
    split = _split_path(rest)
    if isinstance(split, SyntaxErr):
        return split
    path, tail = split
    if tail and not tail.startswith(" "):
        return _err(501, "5.5.4", "Syntax error after address")
    params = _parse_params(tail, known)
    if isinstance(params, SyntaxErr):
        return params
    if path == "":
        if not allow_null:
            return _err(501, "5.1.3", "Null recipient not allowed")
        return "", params
    if prefix == "TO:" and path.lower() == "postmaster":
        return path, params  # RFC 5321 4.5.1: <Postmaster> without a domain must be accepted
    mailbox = parse_mailbox(path)
    if isinstance(mailbox, SyntaxErr):
        return mailbox
    return mailbox, params


def _domain_arg(arg: str, verb: str) -> str | SyntaxErr:
    # RFC 5321 4.1.1.1: EHLO domain / address-literal. Real clients send all kinds of names
    # (underscores, bare hostnames); we accept any single printable token, as Postfix does.
    if not arg or " " in arg or not arg.isprintable():
        return _err(501, "5.5.4", f"Syntax: {verb} hostname")
    return arg


def parse_command(line: bytes) -> Command | SyntaxErr:
    """Parse one command line (CRLF already removed). Never raises."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return _err(500, "5.5.2", "Command line is not valid UTF-8")
    if _CONTROL.search(text):
        return _err(500, "5.5.2", "Control characters in command line")
    verb, _, rest = text.partition(" ")
    verb = verb.upper()
    arg = rest.strip(" \t")
    match verb:
        case "EHLO" | "HELO":
            d = _domain_arg(arg, verb)
            if isinstance(d, SyntaxErr):
                return d
            return Ehlo(d) if verb == "EHLO" else Helo(d)
        case "MAIL":
            r = _parse_path_command(rest, "FROM:", MAIL_PARAMS, allow_null=True)
            return r if isinstance(r, SyntaxErr) else Mail(r[0], r[1])
        case "RCPT":
            r = _parse_path_command(rest, "TO:", RCPT_PARAMS, allow_null=False)
            return r if isinstance(r, SyntaxErr) else Rcpt(r[0], r[1])
        case "DATA" | "RSET" | "QUIT" | "STARTTLS":
            if arg:
                return _err(501, "5.5.4", f"Syntax: {verb} takes no arguments")
            simple: dict[str, Command] = {
                "DATA": Data(), "RSET": Rset(), "QUIT": Quit(), "STARTTLS": StartTls()
            }
            return simple[verb]
        case "NOOP":
            return Noop()  # RFC 5321 4.1.1.9: the parameter string is ignored
        case "VRFY" | "EXPN":
            if not arg:
                return _err(501, "5.5.4", f"Syntax: {verb} string")
            return Vrfy(arg) if verb == "VRFY" else Expn(arg)
        case "HELP":
            return Help(arg)
        case "BDAT":
            words = arg.split(" ")
            if not 1 <= len(words) <= 2 or not _check_size(words[0]):
                return _err(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]")
            if len(words) == 2 and words[1].upper() != "LAST":
                return _err(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]")
            return Bdat(int(words[0]), len(words) == 2)
        case "AUTH":
            words = arg.split(" ")
            mech_ok = all(c in _KEYWORD or c == "_" for c in words[0])
            if not words[0] or len(words) > 2 or not mech_ok:
                return _err(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
            return Auth(words[0].upper(), words[1] if len(words) == 2 else None)
        case _:
            return SyntaxErr(UNKNOWN_COMMAND)
