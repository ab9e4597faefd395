"""A small /diagnostics reporter shared by the dp nodes.

Each node owns one ``DiagnosticsReporter``: it records values, latencies (reported as p50/p99 in ms),
event rates and counters, and problems (a message with a level that stays reported for a few
periods after it last occurred), and publishes one ``diagnostic_msgs/DiagnosticStatus`` per period
on ``/diagnostics``.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from dp_common.core.stats import RateMeter, RollingStats
from dp_common.qos import reliable_qos


def _as_int(level) -> int:
    return level[0] if isinstance(level, bytes) else int(level)


# Levels as ints (the message's constants are bytes in rclpy).
OK = _as_int(DiagnosticStatus.OK)
WARN = _as_int(DiagnosticStatus.WARN)
ERROR = _as_int(DiagnosticStatus.ERROR)
STALE = _as_int(DiagnosticStatus.STALE)


class DiagnosticsReporter:
    """Collects a node's figures and publishes them on /diagnostics.

    Args:
        node: the rclpy Node (its clock stamps the array; its name prefixes the status name).
        name: status name (default: the node's name).
        period_s: publishing period in seconds (wall clock, so it works while /clock is paused).
        problem_hold_s: how long a problem stays reported after it last occurred.
    """

    def __init__(self, node, name: str | None = None, period_s: float = 1.0, problem_hold_s: float = 3.0):
        self._node = node
        self.name = name or node.get_fully_qualified_name().lstrip("/")
        self.hardware_id = node.get_name()
        self._values: dict[str, str] = {}
        self._latencies: dict[str, RollingStats] = {}
        self._rates: dict[str, RateMeter] = {}
        self._counts: dict[str, int] = {}
        self._problems: dict[str, tuple[int, float, int]] = {}  # msg -> (level, last wall time, n)
        self.problem_hold_s = problem_hold_s
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", reliable_qos(10))
        self._timer = None
        if period_s > 0:
            from rclpy.clock import Clock, ClockType

            self._timer = node.create_timer(
                period_s, self.publish, clock=Clock(clock_type=ClockType.STEADY_TIME)
            )

    def set(self, key: str, value) -> None:
        """Sets a reported value (formatted with str, floats with 4 significant digits)."""
        self._values[key] = f"{value:.4g}" if isinstance(value, float) else str(value)

    def latency(self, key: str, seconds: float) -> None:
        """Adds a latency sample in seconds (reported as `<key> p50/p99 ms`)."""
        self._latencies.setdefault(key, RollingStats(500)).add(seconds)

    def tick(self, key: str) -> None:
        """Records one event of `key` now (reported as `<key> rate Hz`)."""
        self._rates.setdefault(key, RateMeter(5.0)).tick(time.monotonic())

    def count(self, key: str, n: int = 1) -> None:
        """Increments counter `key`."""
        self._counts[key] = self._counts.get(key, 0) + n

    def counter(self, key: str) -> int:
        """Returns the value of counter `key`."""
        return self._counts.get(key, 0)

    def problem(self, message: str, level: int = ERROR) -> None:
        """Reports a problem; it stays in the status for problem_hold_s after its last call."""
        prev = self._problems.get(message)
        n = prev[2] + 1 if prev else 1
        self._problems[message] = (_as_int(level), time.monotonic(), n)

    def clear_problems(self) -> None:
        """Forgets all reported problems."""
        self._problems.clear()

    def latency_summary(self, key: str) -> dict[str, float]:
        """Returns count/mean/p50/p99/max in seconds of latency `key`."""
        stats = self._latencies.get(key)
        return stats.summary() if stats else RollingStats(1).summary()

    def build_status(self) -> DiagnosticStatus:
        """Returns the current DiagnosticStatus (also used by tests)."""
        now = time.monotonic()
        self._problems = {m: p for m, p in self._problems.items() if now - p[1] <= self.problem_hold_s}
        level = OK
        messages = []
        for msg, (lvl, _, n) in sorted(self._problems.items(), key=lambda kv: -kv[1][0]):
            level = max(level, lvl)
            messages.append(f"{msg} (x{n})" if n > 1 else msg)
        values = [KeyValue(key=k, value=v) for k, v in self._values.items()]
        for key, stats in self._latencies.items():
            s = stats.summary()
            values.append(KeyValue(key=f"{key} p50 ms", value=f"{s['p50'] * 1e3:.2f}"))
            values.append(KeyValue(key=f"{key} p99 ms", value=f"{s['p99'] * 1e3:.2f}"))
        for key, meter in self._rates.items():
            values.append(KeyValue(key=f"{key} rate Hz", value=f"{meter.rate_hz(now):.2f}"))
        for key, n in self._counts.items():
            values.append(KeyValue(key=key, value=str(n)))
        return DiagnosticStatus(
            level=bytes([level]),
            name=self.name,
            hardware_id=self.hardware_id,
            message="; ".join(messages) if messages else "ok",
            values=values,
        )

    def publish(self) -> None:
        """Publishes the status now."""
        arr = DiagnosticArray()
        arr.header.stamp = self._node.get_clock().now().to_msg()
        arr.status = [self.build_status()]
        self._pub.publish(arr)


class SyncDiagnosticsReporter(DiagnosticsReporter):
    """DiagnosticsReporter whose methods take a lock, for nodes that report from several threads.

    ``publish`` builds the status under the lock and publishes outside it, so a thread that reports
    (e.g. a control loop) never waits on DDS.
    """

    def __init__(self, node, **kwargs) -> None:
        self._sync = threading.RLock()
        super().__init__(node, **kwargs)

    def set(self, key, value) -> None:  # noqa: D102
        with self._sync:
            super().set(key, value)

    def latency(self, key, seconds) -> None:  # noqa: D102
        with self._sync:
            super().latency(key, seconds)

    def tick(self, key) -> None:  # noqa: D102
        with self._sync:
            super().tick(key)

    def count(self, key, n=1) -> None:  # noqa: D102
        with self._sync:
            super().count(key, n)

    def counter(self, key) -> int:  # noqa: D102
        with self._sync:
            return super().counter(key)

    def problem(self, message, level=ERROR) -> None:  # noqa: D102
        with self._sync:
            super().problem(message, level)

    def clear_problems(self) -> None:  # noqa: D102
        with self._sync:
            super().clear_problems()

    def latency_summary(self, key):  # noqa: D102
        with self._sync:
            return super().latency_summary(key)

    def build_status(self):  # noqa: D102
        with self._sync:
            return super().build_status()
