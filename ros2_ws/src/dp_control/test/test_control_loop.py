"""dp_control.loop: the deadline-scheduled loop thread (ROS-free). Behaviour only, never timings."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from dp_control.loop import PeriodicThread, set_switch_interval, sleep_until, try_realtime


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


@pytest.mark.parametrize("use_cns", [True, False])
def test_periodic_thread_ticks_and_stops(use_cns):
    calls = []
    loop = PeriodicThread(0.01, lambda: calls.append(time.monotonic()), use_clock_nanosleep=use_cns)
    assert "not requested" in loop.start()
    assert loop.alive
    assert wait_for(lambda: len(calls) >= 10)
    loop.stop()
    assert not loop.alive
    n = len(calls)
    time.sleep(0.05)
    assert len(calls) == n and loop.ticks == n
    assert all(b >= a for a, b in zip(calls, calls[1:], strict=False))


def test_overrunning_ticks_skip_deadlines_instead_of_bunching():
    loop = PeriodicThread(0.01, lambda: time.sleep(0.025))  # every tick outlasts 2 periods
    loop.start()
    assert wait_for(lambda: loop.ticks >= 3)
    loop.stop()
    assert loop.overruns >= 2 * loop.ticks - 2


def test_tick_exception_ends_the_thread_and_is_reported():
    errors = []
    done = threading.Event()

    def tick():
        raise RuntimeError("boom")

    def on_error(exc):
        errors.append(exc)
        done.set()

    loop = PeriodicThread(0.01, tick, on_error=on_error)
    loop.start()
    assert done.wait(5.0)
    assert wait_for(lambda: not loop.alive)
    assert isinstance(errors[0], RuntimeError) and loop.ticks == 0


def test_sleep_until_reaches_the_deadline():
    for use_cns in (True, False):
        deadline = time.monotonic_ns() + 5_000_000
        sleep_until(deadline, use_cns)
        assert time.monotonic_ns() >= deadline


def test_switch_interval_is_only_lowered_and_restorable():
    before = sys.getswitchinterval()
    try:
        assert set_switch_interval(before * 2) is None
        assert set_switch_interval(0) is None
        old = set_switch_interval(before / 2)
        assert old == pytest.approx(before) and sys.getswitchinterval() == pytest.approx(before / 2)
    finally:
        sys.setswitchinterval(before)


def test_try_realtime_reports_in_words():
    assert "not requested" in try_realtime(0)


def test_invalid_period():
    with pytest.raises(ValueError, match="period_s must be > 0"):
        PeriodicThread(0.0, lambda: None)
