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
