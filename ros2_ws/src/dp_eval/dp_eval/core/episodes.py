"""What an evaluation needs from a recorded bag, and its split into episodes (ROS-free).

``dp_eval.episodes.load_bag`` reads a bag into :class:`BagData`; this module holds the numpy-only
part. Episodes: a bag may hold several. A new episode starts where the episode topic (the
simulator's ``sim/episode_status``, JSON with a ``seed``) changes its key, where sensor time jumps
back, or where clouds pause longer than ``episode_gap_s``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class JointTrack:
    """Joint positions merged by name: per joint, sorted times (s) and positions."""

    t: dict[str, list[float]] = field(default_factory=dict)
    q: dict[str, list[float]] = field(default_factory=dict)

    def add(self, t_s: float, names, positions) -> None:
        """Adds one (possibly partial) sample."""
        for name, p in zip(names, positions, strict=False):
            self.t.setdefault(name, []).append(t_s)
            self.q.setdefault(name, []).append(float(p))

    def arrays(self, names) -> tuple[np.ndarray, np.ndarray]:
        """(T,) times and (T, len(names)) positions on the union of the joints' sample times.

        Each joint is linearly interpolated (held at the ends) onto the union of sample times.

        Raises:
            KeyError: naming the joints that never appear.
        """
        missing = [n for n in names if n not in self.t]
        if missing:
            raise KeyError(f"joints {missing} never appear; recorded joints: {sorted(self.t)}")
        ts = np.unique(np.concatenate([np.asarray(self.t[n]) for n in names]))
        out = np.empty((ts.size, len(names)))
        for j, n in enumerate(names):
            tj = np.asarray(self.t[n])
            qj = np.asarray(self.q[n])
            order = np.argsort(tj, kind="stable")
            out[:, j] = np.interp(ts, tj[order], qj[order])
        return ts, out

    def samples(self) -> list[tuple[float, list[str], list[float]]]:
        """All samples as (t_s, [name], [position]) sorted by time (for a JointStateBuffer)."""
        items = []
        for n, ts in self.t.items():
            for t, q in zip(ts, self.q[n], strict=True):
                items.append((t, n, q))
        items.sort(key=lambda x: x[0])
        return [(t, [n], [q]) for t, n, q in items]


@dataclass
class EpisodeSpan:
    """One episode: index, name, sensor-time bounds [t0, t1] (s), cloud indices [i0, i1]."""

    index: int
    name: str
    t0: float
    t1: float
    i0: int
    i1: int


@dataclass
class BagData:
    """Streams of one bag used by the evaluation.

    ``cloud_stamps_ns`` are the clouds' header stamps (integer ns, the bag time where unset);
    joint and action times and episode bounds are float seconds (for interpolation).
    """

    cloud_topic: str
    cloud_stamps_ns: np.ndarray
    cloud_frame: str
    joints: JointTrack
    actions: JointTrack
    action_topic: str
    transforms: dict[tuple[str, str], np.ndarray]
    episodes: list[EpisodeSpan]
    duration_s: float

    @property
    def cloud_stamps(self) -> np.ndarray:
        """(N,) cloud stamps as float seconds (for arithmetic on durations)."""
        return self.cloud_stamps_ns * 1e-9

    def episode_of_cloud(self, i: int) -> int:
        """Index of the episode containing cloud number i (in bag order)."""
        for ep in self.episodes:
            if ep.i0 <= i <= ep.i1:
                return ep.index
        raise IndexError(f"cloud {i} outside every episode")


def split_episodes(
    cloud_stamps: np.ndarray, bag_times: np.ndarray, status: list, gap_s: float
) -> list[EpisodeSpan]:
    """Episode spans from cloud stamps (s), the episode topic's (bag time, key) and a gap (s)."""
    n = cloud_stamps.size
    starts = {0}
    for i in range(1, n):
        dt = cloud_stamps[i] - cloud_stamps[i - 1]
        if dt < 0 or dt > gap_s:
            starts.add(i)
    prev = None
    for k, (t_bag, key) in enumerate(status):
        if k > 0 and key != prev:
            i = int(np.searchsorted(bag_times, t_bag, side="left"))
            if 0 < i < n:
                starts.add(i)
        prev = key
    bounds = sorted(starts) + [n]
    spans = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1] - 1
        spans.append(
            EpisodeSpan(
                index=k,
                name=f"episode_{k:03d}",
                t0=float(cloud_stamps[a]),
                t1=float(cloud_stamps[b]),
                i0=a,
                i1=b,
            )
        )
    return spans
