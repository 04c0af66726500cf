"""Recipient resolution and relay policy over a real (non-durable) SQLite store."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.delivery import Deliverer, LocalRecipient, Refusal, RemoteRecipient
from mailwright.store import open_store
from mailwright.store.api import Account, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path, durable=False)
    store.add_domain("example.test")
    store.add_domain("other.test")
    yield store
    store.close()


@pytest.fixture
def alice(store: Store) -> Account:
    return store.add_account("alice@example.test", "$argon2id$fake")


def test_account_resolves_case_insensitively(store: Store, alice: Account) -> None:
    result = Deliverer(store).resolve("Alice@EXAMPLE.test", may_relay=False)
    assert result == LocalRecipient("alice@example.test", (alice.id,))


def test_unknown_local_user_is_no_such_user(store: Store, alice: Account) -> None:
    assert Deliverer(store).resolve("bob@example.test", may_relay=False) is Refusal.NO_SUCH_USER


@pytest.mark.parametrize(
    "address",
    [
        "victim@remote.test",
        "victim@REMOTE.TEST.",
        "alice@example.test@remote.test",
        "victim@b\u00fccher.test",
    ],
)
def test_remote_domains_are_refused_without_authentication(store: Store, address: str) -> None:
    assert Deliverer(store).resolve(address, may_relay=False) is Refusal.RELAY_DENIED


@pytest.mark.parametrize(
    "address",
    ["victim%remote.test@example.test", "remote.test!victim@example.test",
     '"victim@remote.test"@example.test'],
)
def test_relay_hacks_on_a_local_domain_are_unknown_local_users(
    store: Store, alice: Account, address: str
) -> None:
    assert Deliverer(store).resolve(address, may_relay=False) is Refusal.NO_SUCH_USER


@pytest.mark.parametrize("address", ["victim@[192.0.2.1]", "no-at-sign", "@example.test", ""])
def test_malformed_or_literal_addresses_are_bad(store: Store, address: str) -> None:
    assert Deliverer(store).resolve(address, may_relay=False) is Refusal.BAD_ADDRESS


def test_authenticated_sessions_may_relay(store: Store) -> None:
    result = Deliverer(store).resolve("friend@remote.test", may_relay=True)
    assert result == RemoteRecipient("friend@remote.test")


def test_alias_expands_to_accounts_and_remote_forwards(store: Store, alice: Account) -> None:
    bob = store.add_account("bob@other.test", "$argon2id$fake")
    store.add_alias("team@example.test", "alice@example.test")
    store.add_alias("team@example.test", "bob@other.test")
    store.add_alias("team@example.test", "outside@remote.test")
    result = Deliverer(store).resolve("team@example.test", may_relay=False)
    assert isinstance(result, LocalRecipient)
    assert sorted(result.account_ids) == sorted([alice.id, bob.id])
    assert result.forwards == ("outside@remote.test",)


def test_alias_loops_terminate(store: Store, alice: Account) -> None:
    store.add_alias("a@example.test", "b@example.test")
    store.add_alias("b@example.test", "a@example.test")
    store.add_alias("b@example.test", "alice@example.test")
    result = Deliverer(store).resolve("a@example.test", may_relay=False)
    assert result == LocalRecipient("a@example.test", (alice.id,))


def test_catch_all_receives_unknown_local_parts(store: Store, alice: Account) -> None:
    store.add_alias("@example.test", "alice@example.test")
    result = Deliverer(store).resolve("anything@example.test", may_relay=False)
    assert result == LocalRecipient("anything@example.test", (alice.id,))


def test_sender_may_use_own_address_aliases_and_null(store: Store, alice: Account) -> None:
    store.add_alias("sales@example.test", "alice@example.test")
    deliverer = Deliverer(store)
    assert deliverer.sender_allowed(alice, "alice@example.test")
    assert deliverer.sender_allowed(alice, "ALICE@example.test")
    assert deliverer.sender_allowed(alice, "sales@example.test")
    assert deliverer.sender_allowed(alice, "")
    assert not deliverer.sender_allowed(alice, "bob@example.test")
    assert not deliverer.sender_allowed(alice, "ceo@remote.test")
    assert not deliverer.sender_allowed(alice, "garbage")


def test_postmaster_of_a_local_domain_always_exists(store: Store, alice: Account) -> None:
    store.add_account("zed@other.test", "$argon2id$fake")
    result = Deliverer(store).resolve("PostMaster@example.test", may_relay=False)
    assert result == LocalRecipient("postmaster@example.test", (alice.id,))


def test_bare_postmaster_at_the_hostname_reaches_the_first_account(
    store: Store, alice: Account
) -> None:
    result = Deliverer(store, "mx.example.net").resolve("postmaster@mx.example.net",
                                                         may_relay=False)
    assert result == LocalRecipient("postmaster@mx.example.net", (alice.id,))


def test_postmaster_alias_wins_over_the_fallback(store: Store, alice: Account) -> None:
    bob = store.add_account("bob@example.test", "$argon2id$fake")
    store.add_alias("postmaster@example.test", "bob@example.test")
    result = Deliverer(store).resolve("postmaster@example.test", may_relay=False)
    assert result == LocalRecipient("postmaster@example.test", (bob.id,))


def test_postmaster_of_a_remote_domain_is_still_relay_denied(store: Store, alice: Account) -> None:
    assert (Deliverer(store, "mx.example.net").resolve("postmaster@remote.test", may_relay=False)
            is Refusal.RELAY_DENIED)


@pytest.mark.asyncio
async def test_account_removed_before_delivery_is_a_temporary_failure(
    store: Store, alice: Account
) -> None:
    from mailwright.store.api import Envelope, EnvelopeRecipient, StorageUnavailable

    deliverer = Deliverer(store)
    resolution = deliverer.resolve("alice@example.test", may_relay=False)
    assert isinstance(resolution, LocalRecipient)
    store.remove_account("alice@example.test")
    staged = deliverer.stage()
    staged.write(b"Subject: late\r\n\r\nx\r\n")
    with pytest.raises(StorageUnavailable, match="removed during the transaction"):
        await deliverer.deliver(
            staged, Envelope(mail_from="x@remote.test"),
            [(EnvelopeRecipient("alice@example.test"), resolution)],
        )
    staged.abort()
