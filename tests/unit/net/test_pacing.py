"""CommandPacer: at most N commands per second, the excess waits for the next second."""

from __future__ import annotations

import pytest

from mailwright.net.pacing import CommandPacer


def test_within_the_rate_nothing_waits() -> None:
    pacer = CommandPacer(3)
    assert [pacer.delay(10.1), pacer.delay(10.2), pacer.delay(10.3)] == [0.0, 0.0, 0.0]
    assert pacer.delay(11.0) == 0.0  # a new second starts a new count


def test_over_the_rate_waits_until_the_next_second_and_counts_there() -> None:
    pacer = CommandPacer(2)
    pacer.delay(5.0)
    pacer.delay(5.1)
    assert pacer.delay(5.25) == pytest.approx(0.75)
    # That command ran at 6.0 and used one of the next second's two slots.
    assert pacer.delay(6.0) == 0.0
    assert pacer.delay(6.1) == pytest.approx(0.9)


def test_sustained_flood_is_bounded() -> None:
    pacer = CommandPacer(100)
    now = 0.0
    for _ in range(1000):
        now += pacer.delay(now) + 0.0001  # each command takes 0.1 ms to run
    assert now >= 9.0  # 1,000 commands at 100 per second take about 10 s


def test_zero_means_no_limit() -> None:
    pacer = CommandPacer(0)
    assert all(pacer.delay(1.0) == 0.0 for _ in range(10_000))
