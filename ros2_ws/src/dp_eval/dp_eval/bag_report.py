"""``bag_to_zarr --report``: check demonstration bags without converting them, one line per episode.

For every bag: its length (s, first to last step stamp), the steps a conversion would give, the
rate (Hz) of every topic read, and its problems -- a missing topic or joint, stamps out of order, a
gap longer than ``--max-gap`` x dt, non-finite joints, a cloud whose transform cannot be resolved
at its stamp, a step without a gripper command -- or OK; steps a conversion would drop are listed
in brackets. Then a summary line. Clouds and images are not decoded (their stamps are read from the
message header), so a report is fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dp_common.msgs import s_to_ns
from dp_eval.bag_streams import read_bag
from dp_eval.core.alignment import BagStreams, streams_to_episode
from dp_eval.core.checks import rate_hz, report_line, report_summary, streams_problems

ACTION_FROM = ("command", "joint_states")


def check_action_args(action_from: str, action_lag: int, max_gap: float, tf_tolerance: float) -> None:
    """Validates the options of the action source and of the recording checks.

    Raises:
        ValueError: naming the option, what it must be, and what was given.
    """
    if action_from not in ACTION_FROM:
        raise ValueError(f"--action-from must be one of {ACTION_FROM}. Got {action_from!r}")
    if action_from == "joint_states" and (not isinstance(action_lag, int) or action_lag < 1):
        raise ValueError(f"--action-lag must be an integer >= 1 (steps). Got {action_lag!r}")
    if not max_gap > 0:
        raise ValueError(f"--max-gap must be > 0 (steps of dt). Got {max_gap}")
    if not tf_tolerance >= 0:
        raise ValueError(f"--tf-tolerance must be >= 0 (s). Got {tf_tolerance}")


def cloud_transform(s: BagStreams, target: str, fixed: np.ndarray | None):
    """The target <- cloud transform of a bag's clouds: ``fixed`` when given, the identity when the
    clouds are already in ``target``, else a lookup in the bag's TF tree at each cloud's stamp (ns)."""
    if fixed is not None:
        return fixed
    frame = s.cloud_frame.lstrip("/")
    if frame == target.lstrip("/"):
        return np.eye(4)
    return lambda stamp_ns: s.transforms.lookup(target, frame, stamp_ns)


def report(
    bags: list[Path],
    dt: float,
    cloud_topic: str,
    state_topic: str,
    action_topic: str,
    joints: list[str],
    image_topic: str = "",
    gripper_joint: str = "",
    gripper_command_topic: str = "",
    target_frame: str = "world",
    camera_transform: np.ndarray | None = None,
    action_from: str = "command",
    action_lag: int = 1,
    max_gap: float = 3.0,
    tf_tolerance: float = 0.02,
    out=print,
) -> int:
    """Prints one line per bag and a summary (see the module docstring); returns 0 if every bag is
    good, 2 if any has a problem."""
    check_action_args(action_from, action_lag, max_gap, tf_tolerance)
    commands = action_from == "command"
    summary = []
    for bag in bags:
        problems, notes, rates, steps, length = [], [], {}, 0, 0.0
        try:
            s = read_bag(bag, cloud_topic, state_topic, action_topic if commands else "", joints, image_topic,
                         None, gripper_joint, gripper_command_topic, "", stamps_only=True,
                         tf_tolerance_ns=s_to_ns(tf_tolerance))  # fmt: skip
            rates = {topic: rate_hz(ts) for topic, ts in s.topic_stamps.items()}
            step_ns = s.stamps.get(cloud_topic if cloud_topic else image_topic, np.zeros(0, np.int64))
            length = (int(step_ns.max()) - int(step_ns.min())) / 1e9 if len(step_ns) > 1 else 0.0
            problems = streams_problems(s, dt, max_gap, str(bag))
            tf = cloud_transform(s, target_frame, camera_transform) if cloud_topic else None
            ep = streams_to_episode(s, None, tf, dt, 0, bool(image_topic), str(bag),
                                    0 if commands else action_lag, notes)  # fmt: skip
            steps = len(ep.state)
        except ValueError as exc:
            msg = str(exc)
            problems.append(msg if msg.startswith(str(bag)) else f"{bag}: {msg}")
        out(report_line(str(bag), length, steps, rates, problems, notes))
        summary.append((str(bag), steps, length, not problems))
    out(report_summary(summary))
    return 0 if all(ok for *_, ok in summary) else 2
