"""Synthetic demonstration bags and checkpoints for tests and benchmarks (ROS-free).

The bag looks like a simulator recording: ``camera/points`` (a ray-cast tabletop cloud in the
camera optical frame), ``/tf_static`` (world <- camera_optical_frame), ``joint_states`` (7 Panda
joints on smooth sinusoids), ``expert/joint_command`` (the expert's target = the joint state one
dt ahead), ``sim/episode_status`` (JSON with the episode's seed) and ``robot_description``.
Several episodes follow each other in one bag, with a pause between them.

The checkpoint is a real, untrained model of the policy core (``PolicyConfig.preset``) saved with
``save_checkpoint``: shapes, normalization and the whole inference path are real; only the
weights are random.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dp_eval.core.bagio import BagWriter
from dp_eval.core.messages import make_cloud, make_header, make_joint_state

JOINT_NAMES = [f"panda_joint{i}" for i in range(1, 8)]
CAMERA_FRAME = "camera_optical_frame"


def joint_trajectory(t: np.ndarray, episode: int) -> np.ndarray:
    """(T, 7) smooth joint positions (rad) of an episode at times t (s since its start)."""
    q0 = np.array([0.0, -0.6, 0.0, -2.2, 0.0, 1.6, 0.8])
    amp = 0.2 + 0.05 * np.arange(7)
    w = 1.0 + 0.3 * np.arange(7) + 0.2 * episode
    return q0 + amp * np.sin(np.outer(t, w) + 0.5 * episode)


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
) -> dict:
    """Writes a synthetic demonstration bag; returns a description (topics, counts, transform).

    Times: episode e starts at t0_s + e * (episode_s + gap_s) s (an epoch-scale t0_s gives stamps
    that float seconds cannot hold exactly); messages are stamped with their
    sensor time, which is also the bag time. ``images``: also ``camera/image``, the same camera's
    (height, width) colors as bgr8 (as many RGB-D drivers publish them), stamped with the cloud.
    """
    from dp_perception.core.synthetic import tabletop_cloud

    counts: dict[str, int] = {}
    transform = None
    with BagWriter(path, storage=storage, typestore=typestore) as w:
        ts = w.typestore
        w.add_topic("robot_description", "std_msgs/msg/String", latched=True)
        w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        for topic, typ in (
            ("camera/points", "sensor_msgs/msg/PointCloud2"),
            ("joint_states", "sensor_msgs/msg/JointState"),
            ("expert/joint_command", "sensor_msgs/msg/JointState"),
            ("sim/episode_status", "std_msgs/msg/String"),
            *([("camera/image", "sensor_msgs/msg/Image")] if images else []),
        ):
            w.add_topic(topic, typ)
        String = ts.types["std_msgs/msg/String"]
        w.write("robot_description", 0, String(data="<robot name='panda'/>"))
        msgs: list[tuple[int, str, object]] = []
        for e in range(episodes):
            t_start = t0_s + e * (episode_s + gap_s)
            n_j = int(round(episode_s * joint_hz)) + 1
            tj = np.arange(n_j) / joint_hz
            for t, q in zip(tj, joint_trajectory(tj, e), strict=True):
                msgs.append((t_start + t, "joint_states", make_joint_state(ts, t_start + t, JOINT_NAMES, q)))
            n_c = int(round(episode_s * cloud_hz)) + 1
            tc = np.arange(n_c) / cloud_hz
            # The expert commands where the arm will be one dt later (like a position controller).
            for t, q in zip(tc, joint_trajectory(tc + dt, e), strict=True):
                msgs.append(
                    (t_start + t, "expert/joint_command", make_joint_state(ts, t_start + t, JOINT_NAMES, q))
                )
            for k, t in enumerate(tc):
                syn = tabletop_cloud(width=width, height=height, seed=1000 * e + k)
                transform = syn.transform
                xyz = syn.xyz.reshape(-1, 3)
                rgb = syn.rgb.reshape(-1, 3).astype(np.float32) / 255.0
                msgs.append(
                    (t_start + t, "camera/points", make_cloud(ts, t_start + t, CAMERA_FRAME, xyz, rgb))
                )
                if images:
                    msgs.append((t_start + t, "camera/image", _bgr8_image(ts, t_start + t, syn.rgb)))
            for t in np.arange(0, episode_s, 0.5):
                status = json.dumps({"seed": 100 + e, "time": round(float(t), 3), "success": False})
                msgs.append((t_start + t, "sim/episode_status", String(data=status)))
        msgs.sort(key=lambda m: m[0])
        tf_msg = _tf_static(ts, transform)
        w.write("/tf_static", int((t0_s - 0.5) * 1e9), tf_msg)
        for t, topic, msg in msgs:
            w.write(topic, int(round(t * 1e9)), msg)
            counts[topic] = counts.get(topic, 0) + 1
    return {"counts": counts, "transform": transform, "joint_names": JOINT_NAMES, "dt": dt}


def _bgr8_image(ts, t_s: float, rgb: np.ndarray):
    """sensor_msgs/Image bgr8 of an (H, W, 3) uint8 RGB array."""
    h, w = rgb.shape[:2]
    return ts.types["sensor_msgs/msg/Image"](
        header=make_header(ts, t_s, CAMERA_FRAME),
        height=h,
        width=w,
        encoding="bgr8",
        is_bigendian=0,
        step=w * 3,
        data=np.ascontiguousarray(rgb[:, :, ::-1], dtype=np.uint8).reshape(-1),
    )


def _tf_static(ts, m: np.ndarray):
    from scipy.spatial.transform import Rotation

    TFMessage = ts.types["tf2_msgs/msg/TFMessage"]
    TransformStamped = ts.types["geometry_msgs/msg/TransformStamped"]
    Transform = ts.types["geometry_msgs/msg/Transform"]
    Vector3 = ts.types["geometry_msgs/msg/Vector3"]
    Quaternion = ts.types["geometry_msgs/msg/Quaternion"]
    qx, qy, qz, qw = Rotation.from_matrix(m[:3, :3]).as_quat()
    tr = m[:3, 3]
    tf = TransformStamped(
        header=make_header(ts, 0.5, "world"),
        child_frame_id=CAMERA_FRAME,
        transform=Transform(
            translation=Vector3(x=float(tr[0]), y=float(tr[1]), z=float(tr[2])),
            rotation=Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw)),
        ),
    )
    return TFMessage(transforms=[tf])


def make_checkpoint(
    path,
    preset: str = "simple_dp3",
    num_points: int = 64,
    tiny: bool = True,
    num_inference_steps: int | None = None,
    dt: float = 0.1,
    seed: int = 0,
    action_space: str = "joint_position",
) -> Path:
    """Saves an untrained checkpoint of the policy core for the synthetic scene; returns its path.

    Args:
        preset: PolicyConfig preset (simple_dp3 | dp3 | image_dp: a 36x48 RGB camera ``img``).
        num_points: points per cloud (also the perception num_points it records).
        tiny: shrink the network (tests); False keeps the preset's sizes (benchmarks).
        action_space: ``joint_position`` or ``joint_position_delta`` (targets minus the state).
    """
    import torch

    from dp_perception.core import PerceptionConfig
    from dp_policy.core import DiffusionPolicyModel, Normalizer, PolicyConfig, save_checkpoint

    pcfg = PerceptionConfig(
        target_frame="world", num_points=num_points, min_points=min(32, num_points), voxel_size=0.0
    )
    overrides: dict = {
        "state_dim": 7,
        "action_dim": 7,
        "joint_names": JOINT_NAMES,
        "dt": dt,
        "action_space": action_space,
        "perception": pcfg.to_dict(),
        "encoder": {"num_points": num_points},
    }
    if tiny:
        overrides.update(
            down_dims=[16, 32],
            diffusion_step_embed_dim=16,
            encoder={"num_points": num_points, "out_dim": 16, "state_mlp_dims": [16, 16]},
            num_inference_steps=num_inference_steps or 2,
        )
    elif num_inference_steps:
        overrides["num_inference_steps"] = num_inference_steps
    if preset == "image_dp":  # the camera instead of clouds (ResNet-18 stays full size)
        overrides["perception"] = {}
        overrides["encoder"] = {"type": "image", "image_shape": [36, 48], "crop_shape": [32, 44]}
        if tiny:
            overrides["encoder"].update(num_keypoints=8, image_feature_dim=16)
    cfg = PolicyConfig.preset(preset, **overrides)
    torch.manual_seed(seed)
    model = DiffusionPolicyModel(cfg)
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2.0, 50)
    q = np.concatenate([joint_trajectory(t, e) for e in range(3)])
    pts = rng.uniform(pcfg.crop_min, pcfg.crop_max, size=(256, 3)).astype(np.float32)
    stats = {"action": q, "agent_pos": q}
    if preset != "image_dp":
        stats["point_cloud"] = pts
    norm = Normalizer.fit(stats)
    return save_checkpoint(path, cfg, model, norm, extra={"note": "untrained synthetic checkpoint"})
