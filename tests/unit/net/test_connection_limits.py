"""ConnectionLimiter: per-address and total concurrent connection counters."""

from __future__ import annotations

import pytest

from mailwright.net.limits import ConnectionLimiter


def test_per_ip_limit_refuses_only_that_address() -> None:
    limiter = ConnectionLimiter(max_per_ip=2, max_total=10)
    assert limiter.try_acquire("192.0.2.1")
    assert limiter.try_acquire("192.0.2.1")
    assert not limiter.try_acquire("192.0.2.1")
    assert limiter.try_acquire("192.0.2.2")
    assert limiter.count("192.0.2.1") == 2
    assert limiter.total == 3


def test_total_limit_refuses_everyone() -> None:
    limiter = ConnectionLimiter(max_per_ip=5, max_total=2)
    assert limiter.try_acquire("a")
    assert limiter.try_acquire("b")
    assert not limiter.try_acquire("c")
    assert limiter.total == 2
    assert limiter.count("c") == 0


def test_release_frees_the_slot_and_forgets_idle_addresses() -> None:
    limiter = ConnectionLimiter(max_per_ip=1, max_total=1)
    assert limiter.try_acquire("a")
    limiter.release("a")
    assert limiter.total == 0
    assert limiter._per_ip == {}
    assert limiter.try_acquire("a")


def test_zero_means_unlimited() -> None:
    limiter = ConnectionLimiter(max_per_ip=0, max_total=0)
    assert all(limiter.try_acquire("a") for _ in range(10_000))


def test_release_without_acquire_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        ConnectionLimiter(1, 1).release("a")
