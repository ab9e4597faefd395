"""A synthetic demonstration bag for tests and benchmarks, written with the one bag stack.

The bag looks like a simulator recording: ``camera/points`` (a ray-cast tabletop cloud in the
camera optical frame), ``/tf_static`` (world <- camera_optical_frame), ``joint_states`` (7 Panda
joints on smooth sinusoids), ``expert/joint_command`` (the expert's target = the joint state one
dt ahead), ``sim/episode_status`` (JSON with the episode's seed) and ``robot_description``.
Several episodes follow each other in one bag, with a pause between them.

With ``gripper=True`` a second publisher on ``joint_states`` carries the hand
(``panda_finger_joint1/2`` at 20 Hz, :func:`finger_opening`), and ``gripper_controller/commands``
(std_msgs/Float64MultiArray, one value) carries the gripper command only when it changes
(:func:`gripper_command`), as a gripper driver's command topic does.
"""

from __future__ import annotations

import json

import numpy as np

from dp_common.bags import BagWriter
from dp_common.msgs import s_to_ns
from dp_common.msgs.array import build_float64_array
from dp_common.msgs.cloud import build_cloud
from dp_common.msgs.image import build_image
from dp_common.msgs.joint_state import build_joint_state
from dp_common.msgs.transform import build_tf, build_transform
from dp_eval.core.synthetic import (
    CAMERA_FRAME,
    JOINT_NAMES,
    joint_trajectory,
    wrist_link_pose,
    wrist_static_transforms,
)

FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
GRIPPER_TOPIC = "gripper_controller/commands"
FINGER_HZ = 20.0


def gripper_command(t, episode_s: float) -> np.ndarray:
    """Per-finger opening command (m) at episode time t (s): open (0.04) for the first half, then 0."""
    return np.where(np.asarray(t, dtype=float) < episode_s / 2, 0.04, 0.0)


def finger_opening(t, episode_s: float) -> np.ndarray:
    """Measured finger position (m): follows the command at 0.05 m/s from episode_s / 2 on."""
    closing = np.clip(np.asarray(t, dtype=float) - episode_s / 2, 0.0, None)
    return np.clip(0.04 - 0.05 * closing, 0.0, 0.04)


def write_synthetic_bag(
    path,
    storage: str = "mcap",
    episodes: int = 2,
    episode_s: float = 2.0,
    cloud_hz: float = 10.0,
    joint_hz: float = 50.0,
    dt: float = 0.1,
    width: int = 64,
    height: int = 48,
    gap_s: float = 2.0,
    typestore=None,
    images: bool = False,
    t0_s: float = 1.0,
    gripper: bool = False,
    gripper_command_times: tuple[float, ...] | None = None,
    wrist_camera: bool = False,
    tf_hz: float = 50.0,
    edit=None,
) -> dict:
    """Writes a synthetic demonstration bag; returns a description (topics, counts, transform).

    Times: episode e starts at t0_s + e * (episode_s + gap_s) s (an epoch-scale t0_s gives stamps
    that float seconds cannot hold exactly); messages are stamped with their
    sensor time, which is also the bag time. ``images``: also ``camera/image``, the same camera's
    (height, width) colors as bgr8 (as many RGB-D drivers publish them), stamped with the cloud.
    ``gripper``: the hand's joint_states and gripper commands (see the module docstring).
    ``wrist_camera``: the camera rides on the wrist (:data:`dp_eval.core.synthetic.WRIST_FRAMES`):
    /tf_static carries the chain's static edges and /tf base -> wrist_link at ``tf_hz``, sampled
    between the cloud stamps (from t0_s - 0.09 s to 0.09 s after the last message), with
    :func:`~dp_eval.core.synthetic.wrist_link_pose` at (stamp - t0_s); the camera's true pose at a
    cloud is ``wrist_camera_pose(stamp_s - t0_s)``. ``edit(msgs, types) -> msgs`` may change the
    (bag time s, topic, message) list before it is written (bad recordings for tests).
    """
    from dp_perception.core.synthetic import tabletop_cloud

    counts: dict[str, int] = {}
    transform = None
    with BagWriter(path, storage=storage, typestore=typestore) as w:
        types = w.types
        w.add_topic("robot_description", "std_msgs/msg/String", latched=True)
        w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        for topic, typ in (
            ("camera/points", "sensor_msgs/msg/PointCloud2"),
            ("joint_states", "sensor_msgs/msg/JointState"),
            ("expert/joint_command", "sensor_msgs/msg/JointState"),
            ("sim/episode_status", "std_msgs/msg/String"),
            *([("camera/image", "sensor_msgs/msg/Image")] if images else []),
            *([(GRIPPER_TOPIC, "std_msgs/msg/Float64MultiArray")] if gripper else []),
        ):
            w.add_topic(topic, typ)
        String = types["std_msgs/msg/String"]
        w.write("robot_description", 0, String(data="<robot name='panda'/>"))
        msgs: list[tuple[int, str, object]] = []
        for e in range(episodes):
            t_start = t0_s + e * (episode_s + gap_s)
            n_j = int(round(episode_s * joint_hz)) + 1
            tj = np.arange(n_j) / joint_hz
            for t, q in zip(tj, joint_trajectory(tj, e), strict=True):
                js = build_joint_state(s_to_ns(t_start + t), JOINT_NAMES, q, types=types)
                msgs.append((t_start + t, "joint_states", js))
            n_c = int(round(episode_s * cloud_hz)) + 1
            tc = np.arange(n_c) / cloud_hz
            # The expert commands where the arm will be one dt later (like a position controller).
            for t, q in zip(tc, joint_trajectory(tc + dt, e), strict=True):
                cmd = build_joint_state(s_to_ns(t_start + t), JOINT_NAMES, q, types=types)
                msgs.append((t_start + t, "expert/joint_command", cmd))
            for k, t in enumerate(tc):
                syn = tabletop_cloud(width=width, height=height, seed=1000 * e + k)
                transform = syn.transform
                xyz = syn.xyz.reshape(-1, 3)
                rgb = syn.rgb.reshape(-1, 3).astype(np.float32) / 255.0
                stamp_ns = s_to_ns(t_start + t)
                cloud = build_cloud(stamp_ns, CAMERA_FRAME, xyz, rgb, types)
                msgs.append((t_start + t, "camera/points", cloud))
                if images:  # bgr8, as many RGB-D drivers publish them
                    image = build_image(stamp_ns, CAMERA_FRAME, syn.rgb, "bgr8", types)
                    msgs.append((t_start + t, "camera/image", image))
            if gripper:
                tf_ = np.arange(int(round(episode_s * FINGER_HZ)) + 1) / FINGER_HZ
                for t, g in zip(tf_, finger_opening(tf_, episode_s), strict=True):
                    js = build_joint_state(s_to_ns(t_start + t), FINGER_JOINTS, [g, g], types=types)
                    msgs.append((t_start + t, "joint_states", js))
                # only when the command changes (default), or at gripper_command_times (episode s)
                for t in gripper_command_times or (0.0, episode_s / 2):
                    cmd = build_float64_array(gripper_command(t, episode_s), types)
                    msgs.append((t_start + t, GRIPPER_TOPIC, cmd))
            for t in np.arange(0, episode_s, 0.5):
                status = json.dumps({"seed": 100 + e, "time": round(float(t), 3), "success": False})
                msgs.append((t_start + t, "sim/episode_status", String(data=status)))
        tf_ns = s_to_ns(t0_s - 0.5)
        statics = {("world", CAMERA_FRAME): transform}
        if wrist_camera:
            statics = wrist_static_transforms()
            w.add_topic("/tf", "tf2_msgs/msg/TFMessage")
            t_end = t0_s + episodes * (episode_s + gap_s) - gap_s + 0.09
            for i in range(int((t_end - t0_s + 0.09) * tf_hz) + 1):
                t = t0_s - 0.09 + i / tf_hz
                edge = build_transform(s_to_ns(t), "base", "wrist_link", wrist_link_pose(t - t0_s), types)
                msgs.append((t, "/tf", build_tf([edge], types)))
        msgs.sort(key=lambda m: m[0])
        if edit is not None:
            msgs = edit(msgs, types)
        tf_msg = build_tf([build_transform(tf_ns, p, c, m, types) for (p, c), m in statics.items()], types)
        w.write("/tf_static", tf_ns, tf_msg)
        for t, topic, msg in msgs:
            w.write(topic, s_to_ns(t), msg)
            counts[topic] = counts.get(topic, 0) + 1
    return {"counts": counts, "transform": transform, "joint_names": JOINT_NAMES, "dt": dt}
