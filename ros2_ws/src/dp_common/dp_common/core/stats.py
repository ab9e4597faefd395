"""Rolling latency statistics and rate meters (ROS-free)."""

from __future__ import annotations

import collections
import math

import numpy as np


class RollingStats:
    """Keeps the last `window` samples and reports percentiles.

    Args:
        window: number of most recent samples kept.
    """

    def __init__(self, window: int = 500):
        if window < 1:
            raise ValueError(f"window must be >= 1. Got {window}")
        self._values: collections.deque[float] = collections.deque(maxlen=window)
        self.total_count = 0

    def add(self, value: float) -> None:
        """Adds one sample (ignored when not finite)."""
        if math.isfinite(value):
            self._values.append(float(value))
            self.total_count += 1

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float:
        """Returns the q-th percentile (0..100) of the window, NaN when empty."""
        if not self._values:
            return float("nan")
        return float(np.percentile(np.fromiter(self._values, float), q))

    def summary(self) -> dict[str, float]:
        """Returns count, mean, p50, p99 and max of the window."""
        if not self._values:
            return {
                "count": 0,
                "mean": float("nan"),
                "p50": float("nan"),
                "p99": float("nan"),
                "max": float("nan"),
            }
        arr = np.fromiter(self._values, float)
        p50, p99 = np.percentile(arr, [50, 99])
        return {
            "count": len(arr),
            "mean": float(arr.mean()),
            "p50": float(p50),
            "p99": float(p99),
            "max": float(arr.max()),
        }


class RateMeter:
    """Measures the event rate (Hz) over a sliding time window.

    Args:
        window_s: length of the window in seconds.
    """

    def __init__(self, window_s: float = 2.0):
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0. Got {window_s}")
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self.total_count = 0

    def tick(self, t_s: float) -> None:
        """Records one event at time t_s (seconds, any monotonic clock)."""
        self._times.append(t_s)
        self.total_count += 1
        self._trim(t_s)

    def _trim(self, now_s: float) -> None:
        while self._times and self._times[0] < now_s - self.window_s:
            self._times.popleft()

    def rate_hz(self, now_s: float) -> float:
        """Returns events per second over the window ending at now_s."""
        self._trim(now_s)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        if span <= 0:
            return 0.0
        return (len(self._times) - 1) / span
