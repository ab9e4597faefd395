"""Deterministic stepped replay: decoded frames + joint states -> the robot's PolicyRunner (ROS-free).

The replay is a driver of :class:`dp_policy.core.runner.PolicyRunner`, the code policy_node runs;
nothing of the tick (history, timing rules, seeding, delta, inpainting) is repeated here. What
differs is only where time comes from: a simulated node clock that reads each message's bag time,
as ``ros2 bag play --clock`` or ``dp_eval.player`` would drive the node::

    bag time     j  j  f  j  j  f  j  j  f  j  j  f  j        (f = frame, j = joint state)
    node clock   set to each message's time first, then the message is delivered
    timer ticks     T              T              T           (every 1/rate_hz on the grid k * period,
                    ^ runner.tick(T): chunk stamped with the newest frame <= T, or a reason)

A tick due at a message's time runs before that message (the clock reaches it first). Ticks go
on one period past the last message so the last frame is used. With ``sync_wait_s`` > 0 a tick
that expects the next frame soon runs on that frame's arrival instead, as policy_node's does. No
wall clock enters, so the same bag, checkpoint and seed give identical chunks, and the same as
policy_node stepped on /clock.
Reading the bag and preprocessing frames (perception, image conversion) is ``dp_eval.stepped``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dp_common.core.time import ns_to_s
from dp_policy.core.camera_sync import CameraSync
from dp_policy.core.observations import UNCHANGED, ObservationError
from dp_policy.core.runner import Chunk, NoChunk, PolicyRunner

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class FrameEvent:
    """A cloud / image as delivered to the runner (``frame`` None: dropped before, ``drop`` says why).

    Attributes:
        t_ns: bag (receive) time = the node clock at delivery, ns.
        stamp_ns: header stamp, ns.
        episode: index of the episode the frame belongs to.
    """

    t_ns: int
    stamp_ns: int
    frame: np.ndarray | None
    episode: int
    drop: str = ""


@dataclass(frozen=True)
class JointEvent:
    """A (possibly partial) joint state at bag time ``t_ns``, stamped ``stamp_ns`` (0 = unstamped)."""

    t_ns: int
    stamp_ns: int
    names: Sequence[str]
    positions: Sequence[float]


def timer_period_ns(rate_hz: float) -> int:
    """The period of a ROS timer of `rate_hz`, in ns, as rclpy computes it."""
    return int(float(1.0 / rate_hz) * NS_PER_S)


def drive(
    runner: PolicyRunner,
    events: Iterable[FrameEvent | JointEvent],
    period_ns: int,
    on_chunk: Callable[[Chunk, int, int], None] | None = None,
) -> Counter:
    """Delivers time-ordered events to `runner` and ticks it on the timer grid (module docstring).

    A frame of a new episode resets the runner first (as ~/activate after a scene reset would).

    Args:
        runner: the policy runtime.
        events: frames and joint states in bag-time order.
        period_ns: timer period (:func:`timer_period_ns`).
        on_chunk: called with each chunk, the episode of its newest frame and the tick time (ns).

    Returns:
        Counter of why frames were dropped / ticks made no chunk (``obs_<reason>``; unchanged
        histories between frames are normal and not counted).
    """
    dropped: Counter = Counter()
    next_tick: int | None = None
    episode = -1
    last_t = None
    # policy_node's camera sync (sync_wait_s), with inference taken to fit in the period (the
    # node uses its measured inference time; the replay stays deterministic).
    sync = CameraSync(runner.cfg.sync_wait_s, 1.0 / runner.cfg.rate_hz)

    def run_tick(now_ns: int) -> None:
        result = runner.tick(now_ns)
        if isinstance(result, NoChunk):
            if result.reason != UNCHANGED:
                dropped[f"obs_{result.reason}"] += 1
        elif on_chunk is not None:
            on_chunk(result, episode, now_ns)

    def tick_until(t_ns: int) -> None:
        nonlocal next_tick
        while next_tick <= t_ns:
            now, next_tick = next_tick, next_tick + period_ns
            if runner.check_clock(now):
                sync.clear()
            if sync.waiting_since is not None:
                sync.waiting_since = None  # expired: no frame by the next tick
            elif sync.should_wait(ns_to_s(now), 0.0):
                sync.waiting_since = ns_to_s(now)
                continue
            run_tick(now)

    for ev in events:
        if next_tick is None:
            next_tick = -(-ev.t_ns // period_ns) * period_ns  # first grid time at or after it
        tick_until(ev.t_ns)
        last_t = ev.t_ns
        if isinstance(ev, JointEvent):
            try:
                runner.add_joint_state(ev.stamp_ns, ev.names, ev.positions, ev.t_ns)
            except ValueError:
                dropped["joint_states_rejected"] += 1
            continue
        if runner.check_clock(ev.t_ns):  # as policy_node does on every frame (not on joint states)
            sync.clear()
        if ev.episode != episode:
            episode = ev.episode
            runner.reset()
        if ev.frame is None:
            dropped[ev.drop or "frame_dropped"] += 1
            continue
        try:
            runner.add_frame(ev.stamp_ns, ev.frame, ev.t_ns)
        except ObservationError as exc:
            dropped[f"obs_{exc.reason}"] += 1
            continue
        sync.arrivals.append(ns_to_s(ev.t_ns))
        if sync.waiting_since is not None:  # a tick waited for this frame: it runs now
            sync.waiting_since = None
            run_tick(ev.t_ns)
    if last_t is not None:
        tick_until(last_t + period_ns)
    return dropped


def is_image_checkpoint(path: str | Path) -> bool:
    """True when the checkpoint directory holds an image policy (encoder type ``image``)."""
    try:
        meta = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False  # loading the policy reports the real problem
    return (meta.get("policy", {}).get("encoder", {}) or {}).get("type") == "image"


def frame_topic_of(checkpoint: str | Path, cfg) -> str:
    """The bag topic whose messages drive the replay: image_topic for image policies, else cloud_topic."""
    return cfg.image_topic if is_image_checkpoint(checkpoint) else cfg.cloud_topic


@dataclass
class EpisodeChunks:
    """Chunks predicted in one episode: stamps (M,) ns, rows (M, H, A)."""

    index: int
    name: str
    stamps_ns: list[int] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    @property
    def stamps(self) -> list[float]:
        """Chunk stamps in float s (for metrics and plots; compare stamps with ``stamps_ns``)."""
        return [s / NS_PER_S for s in self.stamps_ns]

    def arrays(self, horizon: int, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(M,) stamps (s) and (M, H, A) rows."""
        if not self.rows:
            return np.zeros(0), np.zeros((0, horizon, action_dim), dtype=np.float32)
        return np.asarray(self.stamps), np.stack(self.rows)


@dataclass
class RunResult:
    """Everything one checkpoint produced over the bag."""

    name: str
    path: str
    policy_id: str
    joint_names: list[str]
    dt: float
    episodes: list[EpisodeChunks]
    timings: dict[str, list[float]]
    dropped: dict[str, int]
    n_clouds: int
    wall_s: float
    sensor_span_s: float
    config: dict

    @property
    def speed_factor(self) -> float:
        """Sensor seconds replayed per wall second (> 1: faster than real time)."""
        return self.sensor_span_s / self.wall_s if self.wall_s > 0 else float("nan")

    def to_run(self) -> dict:
        """The dict :func:`dp_eval.core.report.write_report` takes."""
        from dp_eval.core.report import Chunks

        rows = [r for ep in self.episodes for r in ep.rows]
        h, a = rows[0].shape if rows else (1, len(self.joint_names))
        return {
            "name": self.name,
            "path": self.path,
            "policy_id": self.policy_id,
            "joint_names": self.joint_names,
            "dt": self.dt,
            "chunks": [Chunks(*ep.arrays(h, a)) for ep in self.episodes],
            "timings": self.timings,
            "dropped": self.dropped,
            "wall_s": self.wall_s,
            "sensor_span_s": self.sensor_span_s,
            "config": self.config,
        }

    def save_npz(self, path: str | Path) -> None:
        """Writes all chunks: stamps (M,) s, stamps_ns (M,), episode (M,), rows (M, H, A)."""
        stamps, eps, rows = [], [], []
        for ep in self.episodes:
            stamps += ep.stamps_ns
            eps += [ep.index] * len(ep.stamps_ns)
            rows += ep.rows
        np.savez(
            path,
            stamps=np.asarray(stamps, dtype=np.int64) / NS_PER_S,
            stamps_ns=np.asarray(stamps, dtype=np.int64),
            episode=np.asarray(eps, dtype=np.int64),
            rows=np.stack(rows) if rows else np.zeros((0, 0, 0), dtype=np.float32),
            joint_names=np.asarray(self.joint_names),
            dt=np.float64(self.dt),
        )
