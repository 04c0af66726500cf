"""SaslExchange: the one PLAIN/LOGIN state machine behind SMTP, POP3 and IMAP AUTH."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.auth.sasl import (
    LOGIN_PASSWORD_CHALLENGE,
    LOGIN_USERNAME_CHALLENGE,
    MECHANISMS,
    PROXY_REFUSED,
    Challenge,
    Credentials,
    Failure,
    SaslExchange,
    Success,
)

ALICE = "alice@example.test"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def plain(authzid: str, authcid: str, passwd: str) -> bytes:
    return f"{authzid}\0{authcid}\0{passwd}".encode()


def started(mechanism: str) -> SaslExchange:
    ex = SaslExchange(mechanism)
    ex.start(None)
    return ex


@pytest.mark.parametrize("mechanism", ["CRAM-MD5", "plain", "Login", "", "XOAUTH2"])
def test_unknown_or_lower_case_mechanism_is_a_value_error(mechanism: str) -> None:
    with pytest.raises(ValueError, match="unsupported SASL mechanism"):
        SaslExchange(mechanism)


def test_every_offered_mechanism_is_accepted() -> None:
    for mechanism in MECHANISMS:
        assert SaslExchange(mechanism).mechanism == mechanism


# ----- PLAIN (RFC 4616) -----------------------------------------------------------------------
def test_plain_without_initial_response_asks_with_an_empty_challenge() -> None:
    ex = SaslExchange("PLAIN")
    assert ex.start(None) == Challenge("")
    assert ex.step(b64(plain("", ALICE, "pw"))) == Success(Credentials(ALICE, "pw"))


def test_plain_empty_initial_response_asks_again() -> None:
    ex = SaslExchange("PLAIN")
    assert ex.start(b"") == Challenge("")
    assert ex.step(b64(plain("", ALICE, "pw"))) == Success(Credentials(ALICE, "pw"))


def test_plain_initial_response_succeeds_at_once() -> None:
    step = SaslExchange("PLAIN").start(plain("", ALICE, "s3cret"))
    assert step == Success(Credentials(ALICE, "s3cret"))


@pytest.mark.parametrize("authzid", [ALICE, "ALICE@Example.Test"])
def test_plain_authzid_naming_the_authcid_is_allowed(authzid: str) -> None:
    step = SaslExchange("PLAIN").start(plain(authzid, ALICE, "pw"))
    assert step == Success(Credentials(ALICE, "pw", authzid))


@pytest.mark.parametrize("initial", [True, False])
def test_plain_authzid_for_someone_else_is_refused(initial: bool) -> None:
    response = plain("bob@example.test", ALICE, "pw")
    ex = SaslExchange("PLAIN")
    if initial:
        step = ex.start(response)
    else:
        assert ex.start(None) == Challenge("")
        step = ex.step(b64(response))
    assert step == Failure(PROXY_REFUSED)
    assert step == Failure("proxy authorization is not offered")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "PLAIN response must have three NUL-separated fields"),
        (b"alice\0pw", "PLAIN response must have three NUL-separated fields"),
        (plain("", "", "pw"), "empty username or password"),
        (plain("", ALICE, ""), "empty username or password"),
        (b"\0\xff\0pw", "authcid is not UTF-8"),
        (b"\0" + b"a" * 256 + b"\0pw", "authcid too long"),
    ],
)
def test_plain_malformed_response_fails_with_its_reason(raw: bytes, reason: str) -> None:
    assert started("PLAIN").step(b64(raw)) == Failure(reason)


def test_plain_malformed_initial_response_fails() -> None:
    step = SaslExchange("PLAIN").start(b"no-nuls-here")
    assert step == Failure("PLAIN response must have three NUL-separated fields")


def test_equals_sign_step_is_an_empty_response() -> None:
    # RFC 4954 4: "=" is a present, zero-length response; PLAIN cannot be empty.
    assert started("PLAIN").step(b"=") == Failure(
        "PLAIN response must have three NUL-separated fields"
    )


# ----- LOGIN ----------------------------------------------------------------------------------
def test_login_asks_username_then_password() -> None:
    ex = SaslExchange("LOGIN")
    assert ex.start(None) == Challenge(LOGIN_USERNAME_CHALLENGE)
    assert ex.step(b64(ALICE.encode())) == Challenge(LOGIN_PASSWORD_CHALLENGE)
    assert ex.step(b64(b"pw")) == Success(Credentials(ALICE, "pw"))


def test_login_challenges_are_the_usual_prompts() -> None:
    assert base64.b64decode(LOGIN_USERNAME_CHALLENGE) == b"Username:"
    assert base64.b64decode(LOGIN_PASSWORD_CHALLENGE) == b"Password:"


def test_login_initial_response_is_the_username() -> None:
    ex = SaslExchange("LOGIN")
    assert ex.start(ALICE.encode()) == Challenge(LOGIN_PASSWORD_CHALLENGE)
    assert ex.step(b64(b"pw")) == Success(Credentials(ALICE, "pw"))


@pytest.mark.parametrize("initial", [b"", b"a\0b", b"\xff"])
def test_login_bad_initial_username_fails(initial: bytes) -> None:
    assert isinstance(SaslExchange("LOGIN").start(initial), Failure)


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        (b"", "empty or invalid username"),
        (b"a\0b", "empty or invalid username"),
        (b"\xfe", "username is not UTF-8"),
        (b"u" * 256, "username too long"),
    ],
)
def test_login_bad_username_fails(username: bytes, reason: str) -> None:
    assert started("LOGIN").step(b64(username)) == Failure(reason)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        (b"", "empty or invalid password"),
        (b"\0", "empty or invalid password"),
        (b"\xfe", "password is not UTF-8"),
        (b"p" * 256, "password too long"),
    ],
)
def test_login_bad_password_fails(password: bytes, reason: str) -> None:
    ex = started("LOGIN")
    ex.step(b64(ALICE.encode()))
    assert ex.step(b64(password)) == Failure(reason)


# ----- shared steps ---------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_star_cancels(mechanism: str) -> None:
    assert started(mechanism).step(b"*") == Failure("cancelled", cancelled=True)


def test_star_cancels_login_at_the_password_step() -> None:
    ex = started("LOGIN")
    ex.step(b64(ALICE.encode()))
    assert ex.step(b"*") == Failure("cancelled", cancelled=True)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("line", [b"not-base64!", b"YWxp=Y2U", b"\xff\xfe", b"**", b"=AAA"])
def test_invalid_base64_fails(mechanism: str, line: bytes) -> None:
    step = started(mechanism).step(line)
    assert step == Failure("invalid base64")
    assert not step.cancelled


def test_failure_is_not_cancelled_by_default() -> None:
    assert Failure("x").cancelled is False


# ----- misuse is a session bug ----------------------------------------------------------------
def test_step_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        SaslExchange("PLAIN").step(b"=")


def test_start_twice_raises() -> None:
    ex = started("LOGIN")
    with pytest.raises(RuntimeError):
        ex.start(None)


@pytest.mark.parametrize(
    ("mechanism", "lines"),
    [
        ("PLAIN", [b64(plain("", ALICE, "pw"))]),  # Success
        ("PLAIN", [b"*"]),  # cancelled
        ("PLAIN", [b"!"]),  # invalid base64
        ("PLAIN", [b64(plain("bob", ALICE, "pw"))]),  # proxy refused
        ("LOGIN", [b64(ALICE.encode()), b64(b"pw")]),  # Success
        ("LOGIN", [b64(b"")]),  # empty username
    ],
)
def test_step_after_the_end_raises(mechanism: str, lines: list[bytes]) -> None:
    ex = started(mechanism)
    for line in lines:
        last = ex.step(line)
    assert isinstance(last, Success | Failure)
    with pytest.raises(RuntimeError):
        ex.step(b"*")


def test_step_after_success_from_the_initial_response_raises() -> None:
    ex = SaslExchange("PLAIN")
    assert isinstance(ex.start(plain("", ALICE, "pw")), Success)
    with pytest.raises(RuntimeError):
        ex.step(b64(plain("", ALICE, "pw")))


def test_password_is_not_in_the_repr() -> None:
    step = SaslExchange("PLAIN").start(plain("", ALICE, "hunter2-secret"))
    assert "hunter2-secret" not in repr(step)


# ----- property: any client bytes give a step, never an exception -----------------------------
@given(
    st.sampled_from(MECHANISMS),
    st.one_of(st.none(), st.binary(max_size=300)),
    st.lists(st.binary(max_size=300) | st.builds(b64, st.binary(max_size=300)), max_size=4),
)
def test_any_bytes_give_a_step_never_an_exception(
    mechanism: str, initial: bytes | None, lines: list[bytes]
) -> None:
    ex = SaslExchange(mechanism)
    step = ex.start(initial)
    for line in lines:
        if not isinstance(step, Challenge):
            break
        step = ex.step(line)
        assert isinstance(step, Challenge | Success | Failure)
    if isinstance(step, Success):
        assert step.credentials.username
        assert step.credentials.password


@given(st.sampled_from(MECHANISMS), st.binary(max_size=600))
def test_any_first_response_gives_a_step(mechanism: str, line: bytes) -> None:
    assert isinstance(started(mechanism).step(line), Challenge | Success | Failure)
