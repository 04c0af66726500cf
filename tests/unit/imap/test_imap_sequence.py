"""Sequence sets (RFC 9051 9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.imap.sequence import (
    MAX_SEQUENCE_RANGES,
    STAR,
    SequenceSet,
    parse_sequence_set,
)


@pytest.mark.parametrize(("text", "ranges"), [
    ("1", ((1, 1),)),
    ("*", ((STAR, STAR),)),
    ("1:*", ((1, STAR),)),
    ("*:4", ((STAR, 4),)),
    ("4:2", ((4, 2),)),  # RFC 9051 9: "4:2" is the same as "2:4"
    ("1,3:5,7", ((1, 1), (3, 5), (7, 7))),
    ("4294967295", ((4294967295, 4294967295),)),
])
def test_valid_sets(text: str, ranges: tuple[tuple[int | None, int | None], ...]) -> None:
    assert parse_sequence_set(text) == SequenceSet(ranges)
    assert str(parse_sequence_set(text)) == text


def test_saved_result() -> None:
    assert parse_sequence_set("$") == SequenceSet((), saved=True)
    assert str(SequenceSet((), saved=True)) == "$"


@pytest.mark.parametrize("text", [
    "", "0", "01", "1:0", "4294967296", "1,", ",1", "1::2", "1:2:3", "a", "$,1", "1:$", "**",
    "99999999999999999999",
])
def test_invalid_sets_are_error_text(text: str) -> None:
    assert isinstance(parse_sequence_set(text), str)


def test_range_count_limit() -> None:
    ok = ",".join(["1"] * MAX_SEQUENCE_RANGES)
    assert isinstance(parse_sequence_set(ok), SequenceSet)
    assert "too many ranges" in str(parse_sequence_set(ok + ",1"))


@given(st.text(alphabet="0123456789:*,$", max_size=40))
def test_parse_never_raises(text: str) -> None:
    result = parse_sequence_set(text)
    assert isinstance(result, SequenceSet | str)
    if isinstance(result, SequenceSet):
        assert parse_sequence_set(str(result)) == result
