"""Aligning one demonstration's streams into an episode (ROS-free part of ``dp_eval.bag_to_zarr``).

:class:`BagStreams` holds the time series read from one bag (``dp_eval.bag_streams.read_bag``);
:func:`streams_to_episode` puts them on the steps of one DP3 episode (timeline in the module
docstring of :mod:`dp_eval.bag_to_zarr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dp_eval.core.tf_tree import TfTree
from dp_policy.core.dataset import Episode


@dataclass
class Series:
    """A time series of one value per stamp (sorted by time; seconds from message stamps)."""

    t: np.ndarray  # (S,)
    v: np.ndarray  # (S,) or (S, J)

    @staticmethod
    def of(times: list[float], values: list) -> Series:
        """Sort (stable) the collected samples by time."""
        order = np.argsort(np.asarray(times, dtype=float), kind="stable")
        return Series(np.asarray(times, dtype=float)[order], np.asarray(values, dtype=float)[order])

    def newest_at(self, t: float) -> int:
        """Index of the newest sample stamped <= t (-1 if none)."""
        return int(np.searchsorted(self.t, t, side="right")) - 1


@dataclass
class BagStreams:
    """Time series read from one bag (times in seconds from message header stamps / bag time)."""

    cloud_t: list[float]
    clouds: list[tuple[np.ndarray, np.ndarray | None]]  # xyz (N,3) f32, rgb (N,3) f32 | None
    cloud_frame: str
    state: dict[str, Series]  # joint name -> measured positions (merged across publishers)
    action: Series  # (A, J) arm commands, columns = joints
    transforms: TfTree  # /tf and /tf_static of the bag
    image_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (I,) sorted
    images: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 RGB, same order
    gripper: Series | None = None  # (G,) gripper commands (m), when a gripper column is asked for
    gripper_source: str = ""  # where the gripper commands came from (for error messages)
    seed: int | None = None  # the episode's seed from the status topic (simulator bags)
    target: int = -1  # the expert's goal index from the status topic (bimodal tasks), else -1
    cloud_ns: list[int] = field(default_factory=list)  # cloud header stamps (ns), as cloud_t
    stamps: dict[str, np.ndarray] = field(default_factory=dict)  # stream label -> ns, bag order
    topic_stamps: dict[str, np.ndarray] = field(default_factory=dict)  # topic -> ns (for rates)
    no_gap_check: set[str] = field(default_factory=set)  # labels that only carry changes
    problems: list[str] = field(default_factory=list)  # found while reading (non-finite values)
    start_ns: int | None = None  # bag time of the first message


def _nearest(times: np.ndarray, t: float) -> int:
    """Index of the stamp in sorted ``times`` nearest to ``t``."""
    i = int(np.searchsorted(times, t))
    if i == len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
        return i - 1
    return i


class MissingColumnError(ValueError):
    """A requested column (the gripper) has no value at a step: a conversion error, not a bag to skip."""


def streams_to_episode(
    s: BagStreams,
    preprocess,
    transform,
    dt: float,
    seed: int = 0,
    use_images: bool = False,
    bag: str = "",
    action_lag: int = 0,
    notes: list[str] | None = None,
) -> Episode:
    """Align the streams into one episode (see the module docstring).

    Steps are the clouds, or the images when the bag was read without a cloud topic. With
    ``use_images`` every step gets the nearest image (within dt/2; steps without one are dropped).
    Image-only episodes have ``point_cloud = None``; so are episodes with ``preprocess=None``
    (counting steps for a report). ``transform`` is a fixed (4, 4) target <- cloud matrix, None, or
    a function of the cloud's stamp (ns) returning it (a TF tree lookup).

    ``action_lag = 0``: actions are the commands (``s.action``, + ``s.gripper``). ``action_lag = K >
    0`` (kinesthetic teaching, no command topic): action[k] = state[k + K] (every state column; the
    gripper column is the gripper command instead when ``s.gripper`` holds commands) and the last K
    steps are dropped. Every dropped step is counted in ``notes`` (when given).

    Raises:
        MissingColumnError: a gripper column is asked for and no gripper command precedes a step.
        ValueError: nothing usable in the bag.
    """
    use_clouds = bool(s.clouds)
    use_images = use_images or not use_clouds
    commands = action_lag == 0
    if (commands and len(s.action.t) == 0) or (not use_clouds and not s.images):
        raise ValueError(
            "bag has no clouds / images" + (" or commands for the requested joints" if commands else "")
        )
    if use_images and not s.images:
        raise ValueError("bag has no images on the image topic")
    steps_t = s.cloud_t if use_clouds else list(s.image_t)
    pcs, imgs, states, actions, gripper_cmd = [], [], [], [], []
    first, last, no_img = (
        "frame(s) before the first command",
        "step(s) after the last command",
        "frame(s) without an image within dt/2",
    )
    dropped = {first: 0, last: 0, no_img: 0}
    last_t = -np.inf
    for k, t in enumerate(steps_t):
        if t < last_t + dt - 1e-3:
            continue
        if commands:
            ia = s.action.newest_at(t + dt / 2)
            if ia < 0:
                dropped[first] += 1
                continue
            if t > s.action.t[-1] + dt / 2:
                lt = last_t
                for u in steps_t[k:]:  # the steps that thinning would have kept
                    if u >= lt + dt - 1e-3:
                        dropped[last] += 1
                        lt = u
                break
        ii = -1
        if use_images:
            ii = _nearest(s.image_t, t)
            if abs(s.image_t[ii] - t) > dt / 2:
                dropped[no_img] += 1
                continue
        action = s.action.v[ia] if commands else None
        if s.gripper is not None:
            ig = s.gripper.newest_at(t + dt / 2)
            if ig < 0:
                raise MissingColumnError(
                    f"{bag}: step {len(states)} at t = {t:.3f} s: no gripper command on {s.gripper_source} "
                    f"at or before {t + dt / 2:.3f} s (first one at {s.gripper.t[0]:.3f} s); record the "
                    "gripper's command from the start of the demonstration"
                )
            gripper_cmd.append(s.gripper.v[ig])
            if commands:
                action = np.append(action, s.gripper.v[ig])
        last_t = t
        q = np.array([np.interp(t, series.t, series.v) for series in s.state.values()])
        if use_clouds:  # the transform is looked up even when only counting (a report checks TF)
            tf = transform(s.cloud_ns[k]) if callable(transform) else transform
        if use_clouds and preprocess is not None:
            xyz, rgb = s.clouds[k]
            pcs.append(np.asarray(preprocess(xyz, rgb, tf, seed * 1000 + k), dtype=np.float32))
        if use_images and s.images[ii] is not None:  # None: stamps only (a report)
            imgs.append(s.images[ii])
        states.append(q)
        actions.append(action)
    if not states:
        raise ValueError("no cloud / image overlaps the commands" if commands else "no cloud / image")
    if not commands:
        n = len(states) - action_lag
        if n <= 0:
            raise ValueError(f"only {len(states)} steps: --action-lag {action_lag} needs more")
        actions = [np.array(q) for q in states[action_lag:]]
        if s.gripper is not None:  # the gripper column is the command given at the step
            for a, g in zip(actions, gripper_cmd, strict=False):
                a[-1] = g
        states, pcs, imgs = states[:n], pcs[:n], imgs[:n]
        dropped[f"step(s) at the end (action = state {action_lag} step(s) later)"] = action_lag
    if notes is not None:
        notes += [f"{c} {what} dropped" for what, c in dropped.items() if c]
    if imgs and len({im.shape for im in imgs}) > 1:
        raise ValueError("images change size within the bag; pass --image-shape H W")
    return Episode(
        seed=seed,
        success=True,
        target_index=s.target,
        point_cloud=np.stack(pcs) if pcs else None,
        state=np.asarray(states, dtype=np.float32),
        action=np.asarray(actions, dtype=np.float32),
        tcp_pos=np.full((len(states), 3), np.nan, dtype=np.float32),
        images=np.stack(imgs) if imgs else None,
    )
