import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.store.api import InvalidAddress, normalize_address


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Alice@Example.TEST", "alice@example.test"),
        ("<bob@example.test>", "bob@example.test"),
        ("bob@example.test.", "bob@example.test"),
        ("j\u00fcrgen@b\u00fccher.test", "j\u00fcrgen@xn--bcher-kva.test"),
        ("@example.test", "@example.test"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert normalize_address(raw) == canonical


@pytest.mark.parametrize(
    "raw", ["", "alice", "alice@", "a b@example.test", "a@exa mple.test", "a@[127.0.0.1]",
            "a@-..test", "a@" + "x" * 64 + ".test"]
)
def test_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_address(raw)


@given(st.text(max_size=300))
def test_canonical_form_is_a_fixed_point(text: str) -> None:
    """Whatever normalises, normalises to itself: lookups by canonical key are stable."""
    try:
        result = normalize_address(text)
    except InvalidAddress:
        return
    assert normalize_address(result) == result
