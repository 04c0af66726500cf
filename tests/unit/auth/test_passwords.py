import pytest

from mailwright.auth.passwords import hash_password, verify_password


def test_hash_is_argon2id_and_never_contains_the_password() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong")


def test_unknown_user_never_verifies() -> None:
    assert not verify_password(None, "mailwright-dummy-password")


def test_garbage_hash_is_a_mismatch_not_an_error() -> None:
    assert not verify_password("not-a-hash", "pw")


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
