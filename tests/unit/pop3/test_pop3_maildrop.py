"""The per-session maildrop view (RFC 1939 5-7)."""

from __future__ import annotations

from mailwright.pop3.maildrop import Maildrop
from mailwright.store.api import StoredMessage


def _drop() -> Maildrop:
    return Maildrop(
        [
            StoredMessage(uid=10, size=100, blob="a" * 64, uidl="u10"),
            StoredMessage(uid=11, size=200, blob="b" * 64, uidl="u11"),
            StoredMessage(uid=15, size=300, blob="a" * 64, uidl="u15"),
        ]
    )


def test_numbers_start_at_one() -> None:
    drop = _drop()
    assert drop.get(0) is None
    first, third = drop.get(1), drop.get(3)
    assert first is not None
    assert first.uid == 10
    assert third is not None
    assert third.uid == 15
    assert drop.get(4) is None


def test_stat_and_list() -> None:
    drop = _drop()
    assert drop.stat() == (3, 600)
    assert drop.listing() == [(1, 100), (2, 200), (3, 300)]
    assert drop.uid_listing() == [(1, "u10"), (2, "u11"), (3, "u15")]


def test_dele_marks_and_keeps_numbers_stable() -> None:
    drop = _drop()
    assert drop.delete(2)
    assert drop.get(2) is None
    assert drop.get(3) is not None  # message 3 keeps its number
    assert drop.stat() == (2, 400)
    assert drop.listing() == [(1, 100), (3, 300)]
    assert drop.uid_listing() == [(1, "u10"), (3, "u15")]
    assert len(drop) == 2


def test_dele_twice_or_out_of_range_fails() -> None:
    drop = _drop()
    assert drop.delete(1)
    assert not drop.delete(1)
    assert not drop.delete(0)
    assert not drop.delete(99)


def test_deleted_uids_in_message_order() -> None:
    drop = _drop()
    drop.delete(3)
    drop.delete(1)
    assert drop.deleted_uids() == [10, 15]


def test_rset_unmarks_everything() -> None:
    drop = _drop()
    drop.delete(1)
    drop.delete(2)
    assert drop.reset() == 3
    assert drop.deleted_uids() == []
    assert drop.stat() == (3, 600)


def test_empty_maildrop() -> None:
    drop = Maildrop([])
    assert drop.stat() == (0, 0)
    assert drop.listing() == []
    assert drop.get(1) is None
