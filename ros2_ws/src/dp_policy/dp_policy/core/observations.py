"""Observation history for deployment: clouds + joint states -> the policy's input (ROS-free).

The same history serves image policies: with ``obs_key`` set to a camera key (e.g. ``img``) the
frames are (H, W, 3) uint8 images of ``image_shape`` instead of clouds, aligned the same way.

The policy was trained on observations spaced by its ``dt`` (not by the camera period). At run
time the history is aligned to sensor stamps, as Diffusion Policy's real-robot loop does: the
newest cloud is "now" (observation index ``n_obs_steps - 1``) and, for each older step k, the
cloud whose stamp is closest to ``newest - k * dt`` (within ``step_tolerance_s``). The joint
state of every step is the joint state at that cloud's stamp (interpolated between samples).
Stamps are integer nanoseconds (``*_ns``); the tolerances are float seconds (durations)::

    clouds at 30 Hz:   c  c  c  c  c  c  c  c  c  c  c  c         (stamps, s)
                       |<------- dt = 0.1 s ----->|     |
    targets:                                    t1-dt      t1 = newest stamp (obs 1 = "now")
    chosen:                                 c0 ~ t1-dt     c1
    joint states:   j j j j j j j j j j j j j j j j j j j j j j   (e.g. 100 Hz)
    agent_pos[k] =  joint state interpolated at stamp(c_k)
    now (node clock):                                          ^ now; now - t1 <= obs_timeout_s
                                                                      t1 - now <= future_tol

Clouds stamped more than ``future_tolerance_s`` after "now" are rejected; a history whose newest
cloud is older than ``obs_timeout_s`` is not used. A history made of the same clouds as the last
one that was run is "unchanged": running the policy again on it would only repeat a chunk.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dp_common.core.joint_states import JointStateBuffer, MissingJointsError
from dp_common.core.time import ns_to_s, s_to_ns

# Reasons an observation cannot be built (stable strings: used as diagnostics keys and in tests).
NO_CLOUD = "no_cloud"
STALE = "stale_observation"
FUTURE = "future_stamp"
INCOMPLETE = "incomplete_history"
MISSING_JOINTS = "missing_joints"
JOINT_STATE_UNAVAILABLE = "joint_state_unavailable"
BAD_CLOUD = "bad_cloud"
UNCHANGED = "unchanged_history"


class ObservationError(ValueError):
    """An observation that cannot be used, with a machine-readable ``reason``."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class ObsHistoryConfig:
    """How deployment observations are gathered. Durations in seconds of the node clock.

    Attributes:
        n_obs_steps: observation steps the policy takes (checkpoint).
        dt: seconds between observation steps (checkpoint).
        num_points: points per cloud (checkpoint); 0 = not checked.
        point_channels: 3 (xyz) or 6 (xyz + rgb) (checkpoint); 0 = not checked.
        obs_timeout_s: the newest cloud may be at most this old (now - stamp).
        future_tolerance_s: a cloud may be stamped at most this far after now.
        step_tolerance_s: an older step's cloud must be within this of newest - k * dt.
        joint_tolerance_s: a cloud stamp may be at most this after the newest joint state
            (the joint state is then held); within the joint history it is interpolated.
        max_clouds: clouds kept at most (memory bound).
        obs_key: policy input key of the frames: ``point_cloud`` (clouds) or a camera key (images).
        image_shape: (H, W) of image frames (checkpoint); [] = not checked.
    """

    n_obs_steps: int = 2
    dt: float = 0.1
    num_points: int = 0
    point_channels: int = 0
    obs_timeout_s: float = 0.5
    future_tolerance_s: float = 0.05
    step_tolerance_s: float = 0.04
    joint_tolerance_s: float = 0.05
    max_clouds: int = 64
    obs_key: str = "point_cloud"
    image_shape: tuple[int, ...] = ()

    @property
    def is_image(self) -> bool:
        """Frames are images (not clouds)."""
        return self.obs_key != "point_cloud"

    def __post_init__(self) -> None:
        if self.n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be >= 1. Got {self.n_obs_steps}")
        for name in ("dt", "obs_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 s. Got {value}")
        for name in ("future_tolerance_s", "step_tolerance_s", "joint_tolerance_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 s. Got {value}")
        if self.step_tolerance_s >= self.dt:
            raise ValueError(
                f"step_tolerance_s must be < dt={self.dt} s (else two steps could share a cloud). "
                f"Got {self.step_tolerance_s}"
            )
        if self.point_channels not in (0, 3, 6):
            raise ValueError(f"point_channels must be 0, 3 or 6. Got {self.point_channels}")
        if self.num_points < 0 or self.max_clouds < self.n_obs_steps:
            raise ValueError(
                f"num_points must be >= 0 and max_clouds >= n_obs_steps={self.n_obs_steps}. "
                f"Got {self.num_points}, {self.max_clouds}"
            )

    @property
    def history_span_s(self) -> float:
        """Seconds from the oldest to the newest observation step."""
        return (self.n_obs_steps - 1) * self.dt


@dataclass
class Observation:
    """One policy input.

    Attributes:
        stamps: (n_obs_steps,) int64 cloud stamps, ns, oldest first; ``stamps[-1]`` is "now".
        point_cloud: (n_obs_steps, N, 3|6) float32 clouds, or (n_obs_steps, H, W, 3) uint8 images
            when ``obs_key`` is a camera key.
        agent_pos: (n_obs_steps, D) float32 joint positions in ``joint_names`` order.
        obs_key: the policy input key of ``point_cloud``.
    """

    stamps: np.ndarray
    point_cloud: np.ndarray
    agent_pos: np.ndarray
    obs_key: str = "point_cloud"

    @property
    def stamp_ns(self) -> int:
        """Stamp of the newest step (the chunk's "now"), integer ns."""
        return int(self.stamps[-1])

    @property
    def key(self) -> tuple[int, ...]:
        """Identity of the history (its cloud stamps, ns)."""
        return tuple(int(s) for s in self.stamps)

    def as_policy_input(self) -> dict[str, np.ndarray]:
        """The dict ``Policy.predict_action_chunk`` takes."""
        return {self.obs_key: self.point_cloud, "agent_pos": self.agent_pos}


def check_cloud(points: np.ndarray, num_points: int = 0, channels: int = 0) -> np.ndarray:
    """Validates one cloud and returns it as float32 (N, C).

    Raises:
        ObservationError(reason=BAD_CLOUD): wrong shape, point count or channels, non-finite.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] not in (3, 6):
        raise ObservationError(f"cloud must be (N, 3) or (N, 6). Got shape {pts.shape}", BAD_CLOUD)
    if num_points and pts.shape[0] != num_points:
        raise ObservationError(
            f"cloud has {pts.shape[0]} points; the checkpoint expects exactly {num_points} "
            "(perception num_points must match training)",
            BAD_CLOUD,
        )
    if channels and pts.shape[1] != channels:
        raise ObservationError(
            f"cloud has {pts.shape[1]} channels; the checkpoint expects {channels} "
            f"({'xyz+rgb' if channels == 6 else 'xyz'}: perception use_rgb must match training)",
            BAD_CLOUD,
        )
    pts = pts.astype(np.float32, copy=False)
    if not np.all(np.isfinite(pts)):
        raise ObservationError("cloud has NaN/Inf values; expected finite points", BAD_CLOUD)
    return pts


def check_image(image: np.ndarray, shape: Sequence[int] = ()) -> np.ndarray:
    """Validates one RGB frame (H, W, 3) uint8 of ``shape`` (when given).

    Raises:
        ObservationError(reason=BAD_CLOUD): wrong dtype or shape.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ObservationError(
            f"image must be (H, W, 3) uint8 RGB. Got shape {img.shape} dtype {img.dtype}", BAD_CLOUD
        )
    if len(shape) == 2 and tuple(img.shape[:2]) != tuple(shape):
        raise ObservationError(
            f"image is {img.shape[0]}x{img.shape[1]}; the checkpoint expects {shape[0]}x{shape[1]}",
            BAD_CLOUD,
        )
    return img


class ObservationHistory:
    """Recent clouds plus the policy's timing; builds stamp-aligned observation histories.

    Args:
        cfg: timing and tolerances.
    """

    def __init__(self, cfg: ObsHistoryConfig):
        self.cfg = cfg
        self._stamps: list[int] = []
        self._clouds: list[np.ndarray] = []
        self.last_key: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def noun(self) -> str:
        """'cloud' or 'image' (for messages)."""
        return "image" if self.cfg.is_image else "cloud"

    @property
    def newest_stamp_ns(self) -> int | None:
        """Stamp of the newest kept cloud, ns (None when empty)."""
        return self._stamps[-1] if self._stamps else None

    def clear(self) -> None:
        """Drops all clouds and forgets the last history (e.g. after the clock jumped back)."""
        self._stamps.clear()
        self._clouds.clear()
        self.last_key = None

    def add_cloud(self, stamp_ns: int, points: np.ndarray, now_ns: int) -> None:
        """Validates and stores one cloud (or image).

        Args:
            stamp_ns: acquisition stamp, integer ns.
            points: (N, 3|6) points, or an (H, W, 3) uint8 image.
            now_ns: current node-clock time, integer ns.

        Raises:
            ObservationError: BAD_CLOUD (shape / count / NaN), FUTURE (stamped more than
                future_tolerance_s after now) or STALE (older than obs_timeout_s). Nothing is
                stored in that case.
        """
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
            raise ObservationError(f"{self.noun} stamp must be integer ns. Got {stamp_ns!r}", BAD_CLOUD)
        stamp_ns = int(stamp_ns)
        if self.cfg.is_image:
            pts = check_image(points, self.cfg.image_shape)
        else:
            pts = check_cloud(points, self.cfg.num_points, self.cfg.point_channels)
        self._check_age(stamp_ns, now_ns)
        k = bisect.bisect_right(self._stamps, stamp_ns)
        if k > 0 and self._stamps[k - 1] == stamp_ns:
            self._clouds[k - 1] = pts  # same stamp again: keep the newer message
        else:
            self._stamps.insert(k, stamp_ns)
            self._clouds.insert(k, pts)
        self._trim()

    def _check_age(self, stamp_ns: int, now_ns: int) -> None:
        if stamp_ns - now_ns > s_to_ns(self.cfg.future_tolerance_s):
            raise ObservationError(
                f"{self.noun} stamped {ns_to_s(stamp_ns - now_ns):.3f} s in the future (tolerance "
                f"{self.cfg.future_tolerance_s:.3f} s): unsynchronized clocks?",
                FUTURE,
            )
        if now_ns - stamp_ns > s_to_ns(self.cfg.obs_timeout_s):
            raise ObservationError(
                f"newest {self.noun} is {ns_to_s(now_ns - stamp_ns):.3f} s old "
                f"(obs_timeout_s {self.cfg.obs_timeout_s:.3f} s)",
                STALE,
            )

    def _trim(self) -> None:
        newest = self._stamps[-1]
        span_s = self.cfg.history_span_s + self.cfg.step_tolerance_s + self.cfg.obs_timeout_s
        keep_from = newest - s_to_ns(span_s)
        k = bisect.bisect_left(self._stamps, keep_from)
        k = max(k, len(self._stamps) - self.cfg.max_clouds)
        if k > 0:
            del self._stamps[:k]
            del self._clouds[:k]

    def select(self, now_ns: int) -> list[int]:
        """Indices of the clouds of the newest complete history, oldest first.

        Raises:
            ObservationError: NO_CLOUD, STALE, FUTURE or INCOMPLETE.
        """
        if not self._stamps:
            raise ObservationError(f"no {self.noun} received yet", NO_CLOUD)
        # Clouds beyond the future tolerance (e.g. after the clock jumped back) are never used.
        last = bisect.bisect_right(self._stamps, now_ns + s_to_ns(self.cfg.future_tolerance_s)) - 1
        if last < 0:
            self._check_age(self._stamps[0], now_ns)  # raises FUTURE
        newest = self._stamps[last]
        self._check_age(newest, now_ns)
        chosen = [last]
        tol_ns = s_to_ns(self.cfg.step_tolerance_s)
        for k in range(1, self.cfg.n_obs_steps):
            target = newest - s_to_ns(k * self.cfg.dt)
            hi = chosen[-1]  # strictly older than the step after it
            j = bisect.bisect_left(self._stamps, target, 0, hi)
            best = None
            for cand in (j - 1, j):
                if 0 <= cand < hi:
                    err = abs(self._stamps[cand] - target)
                    if best is None or err < abs(self._stamps[best] - target):
                        best = cand
            if best is None or abs(self._stamps[best] - target) > tol_ns:
                have = "none" if best is None else f"{ns_to_s(self._stamps[best] - target):+.3f} s"
                raise ObservationError(
                    f"no {self.noun} within {self.cfg.step_tolerance_s:.3f} s of observation step -{k} "
                    f"(newest - {k} x dt {self.cfg.dt:.3f} s; closest {have}): history incomplete "
                    f"(just started, or {self.noun}s arrive slower than 1/dt)",
                    INCOMPLETE,
                )
            chosen.append(best)
        return chosen[::-1]

    def build(
        self,
        now_ns: int,
        joints: JointStateBuffer,
        joint_names: Sequence[str],
        *,
        skip_unchanged: bool = True,
    ) -> Observation:
        """Builds the newest complete observation history.

        Args:
            now_ns: current node-clock time, integer ns.
            joints: merged joint states (stamped in float s: interpolation only).
            joint_names: agent_pos order (the checkpoint's joint names).
            skip_unchanged: raise UNCHANGED when the history equals the last `mark_used` one.

        Returns:
            Observation with point_cloud (n_obs_steps, N, C) and agent_pos (n_obs_steps, D).

        Raises:
            ObservationError: NO_CLOUD, STALE, FUTURE, INCOMPLETE, UNCHANGED, MISSING_JOINTS or
                JOINT_STATE_UNAVAILABLE (no joint state at a cloud's stamp).
        """
        idx = self.select(now_ns)
        stamps = np.array([self._stamps[i] for i in idx], dtype=np.int64)
        if skip_unchanged and self.last_key is not None and tuple(int(v) for v in stamps) == self.last_key:
            raise ObservationError(f"no new {self.noun} since the last chunk", UNCHANGED)
        agent_pos = np.empty((len(idx), len(joint_names)), dtype=np.float32)
        for row, t_ns in enumerate(stamps):
            t = ns_to_s(int(t_ns))
            try:
                agent_pos[row] = joints.at(
                    t, joint_names, interpolate=True, max_extrapolation_s=self.cfg.joint_tolerance_s
                )
            except MissingJointsError as exc:
                raise ObservationError(str(exc), MISSING_JOINTS) from exc
            except ValueError as exc:
                raise ObservationError(
                    f"no joint state at {self.noun} stamp {t:.3f} s: {exc}", JOINT_STATE_UNAVAILABLE
                ) from exc
        point_cloud = np.stack([self._clouds[i] for i in idx])
        return Observation(
            stamps=stamps, point_cloud=point_cloud, agent_pos=agent_pos, obs_key=self.cfg.obs_key
        )

    def mark_used(self, obs: Observation) -> None:
        """Remembers `obs` as the last history run (so an identical one is skipped)."""
        self.last_key = obs.key
