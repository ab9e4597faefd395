"""A periodic thread on absolute monotonic deadlines, for the control loop (ROS-free).

``PeriodicThread`` calls ``tick()`` at ``k * period`` after its start on CLOCK_MONOTONIC. It sleeps
with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` through ctypes where libc has it (Linux):
the kernel wakes the thread at the deadline itself (no drift, no relative-sleep rounding, and no
timer slack under SCHED_FIFO); elsewhere ``time.sleep`` for the bulk plus a short final spin. It
asks for SCHED_FIFO for itself (not for the process) when ``priority`` > 0 and falls back to normal
scheduling when that is not permitted. A tick that overruns past the next deadline(s) skips them
(counted in ``overruns``) and keeps the phase: ticks are never bunched up to catch up.

``set_switch_interval`` lowers the interpreter's GIL switch interval, so that another Python thread
(the executor) gives the GIL to the woken loop thread within that interval instead of 5 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)

_CLOCK_MONOTONIC = 1  # Linux
_TIMER_ABSTIME = 1
#: Fallback sleep (no clock_nanosleep): time.sleep until this long before the deadline, then spin.
SPIN_NS = 300_000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _load_clock_nanosleep():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.clock_nanosleep
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Timespec), ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_clock_nanosleep = _load_clock_nanosleep()


def sleep_until(deadline_ns: int, use_clock_nanosleep: bool = True) -> None:
    """Sleeps until ``time.monotonic_ns() >= deadline_ns`` (releases the GIL while sleeping)."""
    if use_clock_nanosleep and _clock_nanosleep is not None:
        ts = _Timespec(deadline_ns // 1_000_000_000, deadline_ns % 1_000_000_000)
        # Absolute deadline: a signal (EINTR) just sleeps again to the same instant.
        while _clock_nanosleep(_CLOCK_MONOTONIC, _TIMER_ABSTIME, ctypes.byref(ts), None) == errno.EINTR:
            pass
        return
    remaining = deadline_ns - time.monotonic_ns()
    if remaining > SPIN_NS:
        time.sleep((remaining - SPIN_NS) * 1e-9)
    while time.monotonic_ns() < deadline_ns:
        pass


def try_realtime(priority: int) -> str:
    """Asks for SCHED_FIFO at ``priority`` for the calling thread; returns what happened, in words.

    On Linux this applies to the calling thread only; threads it creates afterwards inherit it.
    """
    if priority <= 0:
        return "real-time scheduling not requested (priority 0)"
    if not hasattr(os, "sched_setscheduler"):
        return "real-time scheduling not available on this OS"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as exc:
        return f"SCHED_FIFO not permitted ({exc}); running with normal priority"
    return f"SCHED_FIFO priority {priority}"


def set_switch_interval(interval_s: float) -> float | None:
    """Lowers ``sys.setswitchinterval`` to ``interval_s`` (never raises it); returns the old value
    when it was changed (to restore it later), else None."""
    old = sys.getswitchinterval()
    if interval_s <= 0 or interval_s >= old:
        return None
    sys.setswitchinterval(interval_s)
    return old


class PeriodicThread:
    """Calls ``tick()`` every ``period_s`` on absolute monotonic deadlines in a daemon thread.

    Args:
        period_s: period [s].
        tick: the work of one period; an exception stops the thread and goes to ``on_error``.
        priority: SCHED_FIFO priority asked for the thread (0 = normal scheduling).
        name: thread name.
        on_error: called with the exception when ``tick`` raises (default: logged).
        use_clock_nanosleep: False forces the time.sleep + spin fallback.
    """

    def __init__(
        self,
        period_s: float,
        tick: Callable[[], None],
        *,
        priority: int = 0,
        name: str = "dp_control_loop",
        on_error: Callable[[BaseException], None] | None = None,
        use_clock_nanosleep: bool = True,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0. Got {period_s}")
        self.period_ns = int(round(period_s * 1e9))
        self._tick = tick
        self.priority = priority
        self._on_error = on_error
        self._use_cns = use_clock_nanosleep
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ticks = 0
        self.overruns = 0
        self.sched_message = ""
        self.sleep_method = (
            "clock_nanosleep(TIMER_ABSTIME)"
            if use_clock_nanosleep and _clock_nanosleep is not None
            else "time.sleep + spin"
        )

    def start(self, timeout_s: float = 2.0) -> str:
        """Starts the thread; returns its scheduling, in words, once it has set it."""
        self._thread.start()
        self._started.wait(timeout_s)
        return self.sched_message

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def stop(self, join: bool = True, timeout_s: float = 2.0) -> None:
        """Stops after the current period (joins unless called from the thread or ``join`` is False)."""
        self._stop.set()
        if join and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        self.sched_message = try_realtime(self.priority)
        self._started.set()
        period = self.period_ns
        deadline = time.monotonic_ns() + period
        while not self._stop.is_set():
            sleep_until(deadline, self._use_cns)
            if self._stop.is_set():
                break
            try:
                self._tick()
            except BaseException as exc:  # noqa: BLE001 - reported; the thread ends
                if self._on_error is not None:
                    self._on_error(exc)
                else:
                    _log.exception("periodic thread %s: tick failed", self._thread.name)
                return
            self.ticks += 1
            deadline += period
            now = time.monotonic_ns()
            if now >= deadline:  # overran (or was descheduled) past the next deadline: skip, keep phase
                skipped = (now - deadline) // period + 1
                self.overruns += skipped
                deadline += skipped * period
