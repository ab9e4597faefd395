"""Camera sync of the policy tick (``sync_wait_s``) and the perception-parameter check (ROS-free).

With ``sync_wait_s`` > 0 a timer tick that expects the next frame within that time leaves its
inference to that frame's arrival (one chunk per tick, on a fresher frame)::

    frames      f         f         f         f          (arrival times on the node clock)
    ticks            T                   T
    waits            |--> runs at the next f, if it comes within sync_wait_s (and with headroom)
"""

from __future__ import annotations

from collections import deque

import numpy as np


class CameraSync:
    """Arrival bookkeeping of accepted frames; decides whether a tick waits for the next one.

    Args:
        sync_wait_s: the longest wait for the next frame, s (0 = never wait).
        period_s: the timer period, s.
    """

    def __init__(self, sync_wait_s: float, period_s: float):
        self.sync_wait_s = sync_wait_s
        self.period_s = period_s
        self.arrivals: deque[float] = deque(maxlen=9)  # node-clock arrival times, s
        self.waiting_since: float | None = None  # a tick is waiting for the next frame

    def clear(self) -> None:
        """Forgets arrivals and any waiting tick (clock jumped back)."""
        self.arrivals.clear()
        self.waiting_since = None

    def expected_next(self) -> tuple[float, float] | None:
        """(node-clock time the next frame should arrive, camera period) from recent arrivals."""
        if len(self.arrivals) < 3:
            return None
        period = float(np.median(np.diff(np.asarray(self.arrivals))))
        return (self.arrivals[-1] + period, period) if period > 0 else None

    def should_wait(self, now_s: float, last_inference_s: float) -> bool:
        """Is the next frame due within sync_wait_s (or just overdue), with headroom?"""
        if self.sync_wait_s <= 0:
            return False
        expected = self.expected_next()
        if expected is None:
            return False
        wait = expected[0] - now_s
        # A frame due at the tick itself may arrive a moment after it (same-time events on a
        # simulated clock): up to half a camera period overdue still counts as "coming".
        if not -0.5 * expected[1] <= wait <= self.sync_wait_s:
            return False
        # Wait only with headroom: when inference plus the wait exceeds the period, the node is
        # behind (frames queue up) and waiting would only add latency.
        return last_inference_s + max(wait, 0.0) < self.period_s


def compare_perception(checkpoint: dict, got: dict) -> tuple[list[str], list[str]]:
    """Perception node parameters vs the checkpoint's: (hard mismatches, soft mismatches).

    Frame, point count and rgb are hard (the clouds differ in kind); crop box and voxel size soft.
    Keys missing on either side are not compared.
    """
    hard, soft = [], []
    for key in ("target_frame", "num_points", "use_rgb"):
        if key in checkpoint and got.get(key) is not None and got[key] != checkpoint[key]:
            hard.append(f"{key}: perception {got[key]!r} vs checkpoint {checkpoint[key]!r}")
    for key in ("crop_min", "crop_max", "voxel_size"):
        if key not in checkpoint or got.get(key) is None:
            continue
        a = np.atleast_1d(np.asarray(got[key], float))
        b = np.atleast_1d(np.asarray(checkpoint[key], float))
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            soft.append(f"{key}: perception {a.tolist()} vs checkpoint {b.tolist()}")
    return hard, soft
