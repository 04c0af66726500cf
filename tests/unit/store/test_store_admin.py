"""Domains, accounts, aliases and lookups: the admin side of the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.store import (
    Account,
    Alias,
    AlreadyExists,
    InUse,
    InvalidAddress,
    NotFound,
    SqliteStore,
    normalize_address,
    normalize_domain,
)


def test_add_domain_is_canonical_and_listed(store: SqliteStore) -> None:
    store.add_domain("Other.EXAMPLE.")
    assert store.list_domains() == ["example.test", "other.example"]
    assert store.is_local_domain("OTHER.example")
    assert not store.is_local_domain("nowhere.example")


def test_add_domain_twice_raises_already_exists(store: SqliteStore) -> None:
    with pytest.raises(AlreadyExists):
        store.add_domain("EXAMPLE.test")


def test_idn_domain_is_stored_as_a_label(store: SqliteStore) -> None:
    store.add_domain("bücher.example")
    assert "xn--bcher-kva.example" in store.list_domains()
    assert store.is_local_domain("BÜCHER.example")


@pytest.mark.parametrize("bad", ["", "a..b", "bad domain", "x" * 64 + ".test", "a/b.test"])
def test_invalid_domain_raises_invalid_address(store: SqliteStore, bad: str) -> None:
    with pytest.raises(InvalidAddress):
        store.add_domain(bad)
    assert not store.is_local_domain(bad)


def test_remove_domain_in_use_by_account_or_alias(store: SqliteStore) -> None:
    store.add_domain("other.test")
    store.add_account("u@other.test", "h")
    with pytest.raises(InUse):
        store.remove_domain("other.test")
    store.remove_account("u@other.test")
    store.add_alias("@other.test", "u@example.test")
    with pytest.raises(InUse):
        store.remove_domain("other.test")
    store.remove_alias("@other.test")
    store.remove_domain("other.test")
    assert store.list_domains() == ["example.test"]
    with pytest.raises(NotFound):
        store.remove_domain("other.test")


def test_add_account_canonicalises_and_lookups_ignore_case(store: SqliteStore) -> None:
    account = store.add_account(" <Alice@EXAMPLE.test> ", "hash-1")
    assert account.address == "alice@example.test"
    assert account.pop3_policy == "delete"
    assert store.get_account("ALICE@example.TEST") == account
    assert store.get_credentials("alice@Example.Test") == (account, "hash-1")


def test_add_account_requires_a_local_domain(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        store.add_account("a@elsewhere.test", "h")


def test_add_account_twice_raises_already_exists(store: SqliteStore, alice: Account) -> None:
    with pytest.raises(AlreadyExists):
        store.add_account("ALICE@example.test", "h")


@pytest.mark.parametrize("bad", ["@example.test", "no-at-sign", "a b@example.test", "a@"])
def test_add_account_rejects_non_addresses(store: SqliteStore, bad: str) -> None:
    with pytest.raises(InvalidAddress):
        store.add_account(bad, "h")


def test_lookups_with_garbage_find_nothing(store: SqliteStore, alice: Account) -> None:
    for garbage in ["", "alice", "alice@", "<>", "a b@c", "\x00@\x00"]:
        assert store.get_account(garbage) is None
        assert store.get_credentials(garbage) is None
        assert store.alias_targets(garbage) == []


def test_account_gets_inbox_and_special_use_mailboxes(
    store: SqliteStore, alice: Account, bob: Account, data_dir: Path
) -> None:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        rows = conn.execute(
            "SELECT account_id, name, special_use, uidvalidity, uidnext, subscribed "
            "FROM mailboxes ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    mine = [(name, special) for account_id, name, special, *_ in rows if account_id == alice.id]
    assert mine == [
        ("INBOX", None),
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
    ]
    uidvalidities = [row[3] for row in rows]
    assert len(set(uidvalidities)) == len(rows), "UIDVALIDITY unique per mailbox incarnation"
    assert all(0 < v < 2**32 for v in uidvalidities)
    assert all(row[4] == 1 and row[5] == 1 for row in rows)


def _inbox_uidvalidity(data_dir: Path, account_id: int) -> int:
    conn = sqlite3.connect(data_dir / "mailwright.db")
    try:
        row = conn.execute(
            "SELECT uidvalidity FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
            (account_id,),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def test_recreated_account_gets_new_id_and_uidvalidity(store: SqliteStore, data_dir: Path) -> None:
    first = store.add_account("dave@example.test", "h")
    before = _inbox_uidvalidity(data_dir, first.id)
    store.remove_account("dave@example.test")
    assert store.pop3_messages(first.id) == []
    again = store.add_account("dave@example.test", "h")
    assert again.id != first.id, "ids are never reused"
    assert _inbox_uidvalidity(data_dir, again.id) > before


def test_set_password_hash_and_policy(store: SqliteStore, alice: Account) -> None:
    store.set_password_hash("ALICE@example.test", "hash-2")
    store.set_pop3_policy("alice@example.test", "keep")
    found = store.get_credentials("alice@example.test")
    assert found == (Account(alice.id, "alice@example.test", "keep"), "hash-2")
    with pytest.raises(NotFound):
        store.set_password_hash("nobody@example.test", "h")
    with pytest.raises(NotFound):
        store.set_pop3_policy("nobody@example.test", "keep")
    with pytest.raises(ValueError, match="policy"):
        store.set_pop3_policy("alice@example.test", "shred")  # type: ignore[arg-type]


def test_remove_account_unknown_raises_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        store.remove_account("ghost@example.test")


def test_list_accounts_summarises(store: SqliteStore, alice: Account, carol: Account) -> None:
    store.add_alias("postmaster@example.test", "alice@example.test")
    store.add_alias("abuse@example.test", "alice@example.test")
    summaries = {s.address: s for s in store.list_accounts()}
    assert summaries["alice@example.test"].aliases == (
        "abuse@example.test",
        "postmaster@example.test",
    )
    assert summaries["alice@example.test"].messages == 0
    assert summaries["carol@example.test"].pop3_policy == "keep"
    assert summaries["carol@example.test"].aliases == ()


# ----- aliases -----------------------------------------------------------------------------------
def test_alias_exact_then_catch_all(store: SqliteStore, alice: Account, bob: Account) -> None:
    store.add_alias("Sales@Example.test", "ALICE@example.test")
    store.add_alias("sales@example.test", "friend@remote.test")
    store.add_alias("@example.test", "bob@example.test")
    assert store.alias_targets("SALES@example.test") == [
        "alice@example.test",
        "friend@remote.test",
    ]
    assert store.alias_targets("anything@EXAMPLE.test") == ["bob@example.test"]
    assert store.alias_targets("someone@elsewhere.test") == []
    assert store.list_aliases() == [
        Alias("@example.test", "bob@example.test"),
        Alias("sales@example.test", "alice@example.test"),
        Alias("sales@example.test", "friend@remote.test"),
    ]


def test_alias_rules(store: SqliteStore, alice: Account) -> None:
    with pytest.raises(NotFound):
        store.add_alias("x@elsewhere.test", "alice@example.test")
    with pytest.raises(AlreadyExists):
        store.add_alias("alice@example.test", "x@remote.test")
    store.add_alias("info@example.test", "alice@example.test")
    with pytest.raises(AlreadyExists):
        store.add_alias("INFO@example.test", "Alice@example.test")
    with pytest.raises(AlreadyExists):
        store.add_account("info@example.test", "h")
    with pytest.raises(InvalidAddress):
        store.add_alias("x@example.test", "@remote.test")


def test_remove_alias(store: SqliteStore) -> None:
    store.add_alias("list@example.test", "a@remote.test")
    store.add_alias("list@example.test", "b@remote.test")
    store.remove_alias("LIST@example.test", "A@remote.test")
    assert store.alias_targets("list@example.test") == ["b@remote.test"]
    store.remove_alias("list@example.test")
    assert store.alias_targets("list@example.test") == []
    with pytest.raises(NotFound):
        store.remove_alias("list@example.test")


def test_addresses_of_includes_alias_sources(
    store: SqliteStore, alice: Account, bob: Account
) -> None:
    store.add_alias("sales@example.test", "alice@example.test")
    store.add_alias("sales@example.test", "bob@example.test")
    store.add_alias("boss@example.test", "bob@example.test")
    assert store.addresses_of(alice.id) == {"alice@example.test", "sales@example.test"}
    assert store.addresses_of(bob.id) == {
        "bob@example.test",
        "sales@example.test",
        "boss@example.test",
    }
    assert store.addresses_of(999) == frozenset()


def test_remove_account_drops_aliases_pointing_to_it(
    store: SqliteStore, alice: Account, bob: Account
) -> None:
    store.add_alias("sales@example.test", "alice@example.test")
    store.add_alias("sales@example.test", "bob@example.test")
    store.remove_account("alice@example.test")
    assert store.get_account("alice@example.test") is None
    assert store.list_aliases() == [Alias("sales@example.test", "bob@example.test")]


def test_admin_changes_are_visible_to_another_store_on_the_same_dir(
    store: SqliteStore, data_dir: Path
) -> None:
    """The CLI writes from another process while the server runs."""
    other = SqliteStore(data_dir, durable=True)
    try:
        other.add_account("zed@example.test", "h")
        assert store.get_account("zed@example.test") is not None
        store.add_alias("z@example.test", "zed@example.test")
        assert other.alias_targets("z@example.test") == ["zed@example.test"]
    finally:
        other.close()


# ----- canonicalisation properties ---------------------------------------------------------
ADDRESS_LIKE = st.one_of(
    st.text(max_size=80), st.from_regex(r"<?[^@]{0,20}@[^@]{0,70}>?", fullmatch=True)
)


@given(ADDRESS_LIKE)
def test_normalize_address_raises_only_invalid_address(text: str) -> None:
    try:
        canonical = normalize_address(text)
    except InvalidAddress:
        return
    assert normalize_address(canonical) == canonical
    assert "@" in canonical
    assert canonical.rpartition("@")[2].isascii()


@given(st.text(max_size=80))
def test_normalize_domain_raises_only_invalid_address(text: str) -> None:
    try:
        canonical = normalize_domain(text)
    except InvalidAddress:
        return
    assert normalize_domain(canonical) == canonical
    assert canonical.isascii()
    assert canonical == canonical.lower()
