"""Sequence sets (RFC 9051 9 `sequence-set`): "1", "2:4", "5:*", "*" and "$", joined by ",".

Pure; `parse_sequence_set` returns an error string instead of raising. Numbers are nz-number
(1 .. 2**32-1, RFC 9051 9). `*` is kept as `STAR` (None) because its value ("the largest number
in use") is only known to the session; "$" is the saved search result (RFC 5182 SEARCHRES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# A sequence set is bounded by the line limit already, but every range costs the store a query
# clause; mbsync and offlineimap send a few hundred ranges at most. 4096 lets every real client
# through and stops a 60 KiB line of "1,3,5,..." from becoming 15,000 ranges.
MAX_SEQUENCE_RANGES: Final = 4096
# RFC 9051 9: nz-number is a 32-bit unsigned integer.
MAX_NZ_NUMBER: Final = 2**32 - 1

STAR: Final = None
"""The "*" of a sequence set: the largest number in use."""

SeqNumber = int | None


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """Ranges as (first, last) as written (`last` may be smaller: "4:2" means 2..4, RFC 9051 9).

    A single number n is (n, n). `saved` is True for "$" (RFC 5182), which has no ranges.
    """

    ranges: tuple[tuple[SeqNumber, SeqNumber], ...]
    saved: bool = False

    def __str__(self) -> str:
        if self.saved:
            return "$"

        def num(n: SeqNumber) -> str:
            return "*" if n is None else str(n)

        return ",".join(num(a) if a == b else f"{num(a)}:{num(b)}" for a, b in self.ranges)


def _number(text: str) -> SeqNumber | str:
    if text == "*":
        return STAR
    if not text or not text.isascii() or not text.isdigit() or len(text) > 10:
        return f"bad sequence number {text[:20]!r}"
    if text[0] == "0":
        return "sequence numbers start at 1"  # nz-number: no 0, no leading zeros
    n = int(text)
    if n > MAX_NZ_NUMBER:
        return "sequence number too large"
    return n


def parse_sequence_set(text: str) -> SequenceSet | str:
    """Parse a whole sequence set; the result is a `SequenceSet` or an error text for BAD."""
    if text == "$":
        return SequenceSet((), saved=True)
    if not text:
        return "empty sequence set"
    parts = text.split(",", MAX_SEQUENCE_RANGES)
    if len(parts) > MAX_SEQUENCE_RANGES:
        return f"too many ranges in sequence set (limit {MAX_SEQUENCE_RANGES})"
    ranges: list[tuple[SeqNumber, SeqNumber]] = []
    for part in parts:
        first, colon, last = part.partition(":")
        a = _number(first)
        if isinstance(a, str):
            return a
        b = _number(last) if colon else a
        if isinstance(b, str):
            return b
        ranges.append((a, b))
    return SequenceSet(tuple(ranges))
