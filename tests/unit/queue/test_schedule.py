"""The retry schedule and the parts of a stored message the runner strips or reads."""

from __future__ import annotations

import pytest

from mailwright.config import ConfigError, QueueConfig
from mailwright.queue.prepare import from_domain, return_path_end
from mailwright.queue.schedule import RetrySchedule, parse_duration


def test_default_schedule_backs_off_then_repeats_its_last_step() -> None:
    schedule = RetrySchedule.parse(QueueConfig().retry_schedule)
    assert schedule.steps == (300, 900, 1800, 3600, 7200, 14400)
    assert [schedule.delay(n) for n in (1, 2, 6, 7, 50)] == [300, 900, 14400, 14400, 14400]
    assert schedule.delay(0) == 300


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800), ("45", 45), (" 1.5h ", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "-5m", "5m,,0s", "1h;2h"])
def test_bad_schedules_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"queue\.retry_schedule"):
        RetrySchedule.parse(text)


def test_return_path_is_skipped_with_continuations_and_repeats() -> None:
    head = b"Return-Path: <a@b.test>\r\nReturn-Path:\r\n <c@d>\r\nReceived: x\r\n\r\nbody"
    assert head[return_path_end(head) :].startswith(b"Received: x")
    assert return_path_end(b"Subject: no trace\r\n\r\n") == 0
    assert return_path_end(b"Return-Path: <cut") == 0


def test_from_domain() -> None:
    assert from_domain(b"Subject: s\r\nFrom: Alice <Alice@Example.TEST>\r\n\r\nFrom: x@y\r\n") == (
        "example.test"
    )
    assert from_domain(b"Subject: none\r\n\r\n") is None
