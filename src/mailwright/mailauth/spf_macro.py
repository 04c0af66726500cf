"""SPF macro expansion (RFC 7208 7): pure, given the values of the macro letters.

`%{ir}.%{v}._spf.%{d2}` -> "4.3.2.1.in-addr._spf.example.org". A malformed macro string is a
`MacroError`, which the evaluator turns into permerror (RFC 7208 7.1).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

# RFC 7208 7.1: macro-letter, transformers (*DIGIT ["r"]) and delimiters.
# DIGIT is ASCII (RFC 5234 B.1): [0-9], not \d, which also takes other scripts' digits.
_MACRO: Final = re.compile(r"%\{([a-zA-Z])([0-9]*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)
# Letters allowed in domain-spec; c, r and t only in an explanation (exp=) string (7.3).
DOMAIN_LETTERS: Final = frozenset("slodiphv")
EXP_LETTERS: Final = DOMAIN_LETTERS | frozenset("crt")
# RFC 7208 7.3: an expanded domain name longer than 253 octets loses labels on the left.
MAX_DOMAIN: Final = 253


class MacroError(ValueError):
    """A macro-string that does not follow RFC 7208 7.1 (a permerror)."""


def expand(text: str, values: Mapping[str, str], *, explanation: bool = False) -> str:
    """Expand `text`; `values` maps lower-case macro letters to their values (RFC 7208 7.2)."""
    allowed = EXP_LETTERS if explanation else DOMAIN_LETTERS
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "%":
            if not 0x21 <= ord(ch) <= 0x7E and not (explanation and ch == " "):
                raise MacroError(f"invalid character {ch!r} in macro-string")
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "%":
            out.append("%")
            i += 2
        elif nxt == "_":
            out.append(" ")
            i += 2
        elif nxt == "-":
            out.append("%20")
            i += 2
        elif nxt == "{":
            m = _MACRO.match(text, i)
            if m is None:
                raise MacroError(f"malformed macro at {text[i:]!r}")
            letter, digits, reverse, delimiters = m.groups()
            if letter.lower() not in allowed:
                raise MacroError(f"macro letter {letter!r} not allowed here")
            value = _transform(values.get(letter.lower(), ""), digits, bool(reverse), delimiters)
            if letter.isupper():  # RFC 7208 7.3: upper-case letters are URL-escaped
                value = urllib.parse.quote(value, safe="-._~")
            out.append(value)
            i = m.end()
        else:
            raise MacroError(f"'%' followed by {nxt!r}")
    return "".join(out)


def _transform(value: str, digits: str, reverse: bool, delimiters: str) -> str:
    """RFC 7208 7.3: split on the delimiters ("." by default), reverse, keep the right N."""
    parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
    if reverse:
        parts.reverse()
    if digits:
        significant = digits.lstrip("0")
        if not significant:
            raise MacroError("a macro transformer of 0 labels")
        # A name has at most 127 labels, so any longer count keeps them all; int() of a
        # record's 5,000 digits would raise ValueError (CPython's digit limit), not MacroError.
        count = int(significant) if len(significant) <= 3 else len(parts)
        parts = parts[-count:]
    return ".".join(parts)


def truncate_domain(domain: str) -> str:
    """RFC 7208 7.3: drop left-hand labels until the name fits in 253 octets."""
    while len(domain) > MAX_DOMAIN and "." in domain:
        domain = domain.split(".", 1)[1]
    return domain
