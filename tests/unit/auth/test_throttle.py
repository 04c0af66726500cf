import pytest

import mailwright.auth.throttle as throttle_module
from mailwright.auth.authenticator import account_key, address_key
from mailwright.auth.throttle import FORGET_AFTER, FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delay_doubles_per_failure_up_to_the_maximum() -> None:
    throttle = FailureThrottle(base_delay=0.5, max_delay=4.0, clock=Clock())
    delays = [throttle.record_failure("192.0.2.1") for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_addresses_are_throttled_independently() -> None:
    throttle = FailureThrottle(clock=Clock())
    throttle.record_failure("192.0.2.1")
    throttle.record_failure("192.0.2.1")
    assert throttle.delay_for("192.0.2.2") == 0.0


def test_success_clears_the_penalty() -> None:
    throttle = FailureThrottle(clock=Clock())
    throttle.record_failure("192.0.2.1")
    throttle.record_success("192.0.2.1")
    assert throttle.delay_for("192.0.2.1") == 0.0


def test_failures_are_forgotten_after_an_hour_of_quiet() -> None:
    clock = Clock()
    throttle = FailureThrottle(clock=clock)
    for _ in range(5):
        throttle.record_failure("192.0.2.1")
    clock.now += FORGET_AFTER + 1
    assert throttle.record_failure("192.0.2.1") == throttle.base_delay


def test_account_penalty_follows_the_account_across_addresses() -> None:
    """A distributed guesser: one failure from each of many addresses still slows the account."""
    throttle = FailureThrottle(base_delay=0.5, max_delay=4.0, clock=Clock())
    delays = [throttle.record_failure(f"192.0.2.{n}", "alice@example.test") for n in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert throttle.account_failures("alice@example.test") == 5
    assert throttle.delay_for("192.0.2.200") == 0.0  # a fresh address, no account named
    assert throttle.delay_for("192.0.2.200", "bob@example.test") == 0.0


def test_the_larger_of_the_two_penalties_applies() -> None:
    throttle = FailureThrottle(base_delay=1.0, max_delay=100.0, clock=Clock())
    for n in range(4):
        throttle.record_failure("192.0.2.1", f"user{n}@example.test")
    assert throttle.delay_for("192.0.2.1", "fresh@example.test") == 8.0  # the address's
    assert throttle.record_failure("192.0.2.9", "user0@example.test") == 2.0  # the account's


def test_success_clears_both_penalties() -> None:
    throttle = FailureThrottle(clock=Clock())
    throttle.record_failure("192.0.2.1", "alice@example.test")
    throttle.record_success("192.0.2.1", "alice@example.test")
    assert throttle.delay_for("192.0.2.1", "alice@example.test") == 0.0


def test_ban_after_n_failures_then_it_expires() -> None:
    clock = Clock()
    throttle = FailureThrottle(ban_after=3, ban_time=600.0, clock=clock)
    throttle.record_failure("192.0.2.1", "a@example.test")
    throttle.record_failure("192.0.2.1", "b@example.test")
    assert throttle.banned_for("192.0.2.1") == 0.0
    throttle.record_failure("192.0.2.1", "c@example.test")
    assert throttle.banned_for("192.0.2.1") == 600.0
    assert throttle.banned_for("192.0.2.2") == 0.0  # only that address
    clock.now += 599
    assert throttle.banned_for("192.0.2.1") == 1.0
    clock.now += 2
    assert throttle.banned_for("192.0.2.1") == 0.0
    # Its count is remembered for an hour: the next failure bans it again at once.
    throttle.record_failure("192.0.2.1", "d@example.test")
    assert throttle.banned_for("192.0.2.1") == 600.0


def test_no_ban_per_account() -> None:
    """Failing on purpose must not lock the owner out: accounts only ever get a delay."""
    throttle = FailureThrottle(ban_after=3, clock=Clock())
    for n in range(10):
        throttle.record_failure(f"198.51.100.{n}", "alice@example.test")
    assert all(throttle.banned_for(f"198.51.100.{n}") == 0.0 for n in range(10))


def test_ban_zero_never_bans() -> None:
    throttle = FailureThrottle(ban_after=0, clock=Clock())
    for _ in range(50):
        throttle.record_failure("192.0.2.1")
    assert throttle.banned_for("192.0.2.1") == 0.0


def test_account_names_cannot_evict_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables are bounded separately: a flood of made-up names keeps the address's count."""
    monkeypatch.setattr(throttle_module, "MAX_TRACKED", 10)
    throttle = FailureThrottle(clock=Clock())
    for n in range(100):
        throttle.record_failure("192.0.2.1", f"user{n}@example.test")
    assert throttle.failures("192.0.2.1") == 100
    assert len(throttle._accounts.entries) == 10


def test_address_and_account_keys() -> None:
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    # One /64 is one client: walking through its addresses does not reset the penalty.
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("unknown") == "unknown"
    assert account_key(" Alice@Example.TEST ") == "alice@example.test"
    assert account_key("Not An Address") == "not an address"
