"""Synthetic demonstrations and checkpoints for tests and benchmarks (ROS-free).

The joint motion of the synthetic episodes is here; ``dp_eval.synthetic_bag`` writes it as a bag.

The checkpoint is a real, untrained model of the policy core (``PolicyConfig.preset``) saved with
``save_checkpoint``: shapes, normalization and the whole inference path are real; only the
weights are random.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

JOINT_NAMES = [f"panda_joint{i}" for i in range(1, 8)]
CAMERA_FRAME = "camera_optical_frame"


def joint_trajectory(t: np.ndarray, episode: int) -> np.ndarray:
    """(T, 7) smooth joint positions (rad) of an episode at times t (s since its start)."""
    q0 = np.array([0.0, -0.6, 0.0, -2.2, 0.0, 1.6, 0.8])
    amp = 0.2 + 0.05 * np.arange(7)
    w = 1.0 + 0.3 * np.arange(7) + 0.2 * episode
    return q0 + amp * np.sin(np.outer(t, w) + 0.5 * episode)


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


# A camera on the wrist, as a lab's TF tree has it: world -> base (static) -> wrist_link (dynamic,
# /tf) -> camera_link -> camera_depth_frame -> camera_optical_frame (static, /tf_static).
WRIST_FRAMES = ("world", "base", "wrist_link", "camera_link", "camera_depth_frame", CAMERA_FRAME)


def _pose(xyz, rotvec) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    m = np.eye(4)
    m[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    m[:3, 3] = xyz
    return m


def wrist_static_transforms() -> dict[tuple[str, str], np.ndarray]:
    """{(parent, child): (4, 4) parent <- child} of the wrist chain's static edges."""
    w, b, link, cam, depth, opt = WRIST_FRAMES
    return {
        (w, b): _pose([0.1, -0.2, 0.05], [0.0, 0.0, 0.3]),
        (link, cam): _pose([0.05, 0.0, 0.08], [0.0, -0.4, 0.0]),
        (cam, depth): _pose([0.0, 0.015, 0.0], [0.0, 0.0, 0.0]),
        (depth, opt): _pose([0, 0, 0], [0, 0, -np.pi / 2]) @ _pose([0, 0, 0], [-np.pi / 2, 0, 0]),
    }


def wrist_link_pose(t) -> np.ndarray:
    """(4, 4) base <- wrist_link at time t (s): constant linear velocity, and a constant rate about a
    fixed axis (so TF's linear + slerp interpolation between samples is exact)."""
    t = float(t)
    tilt = _pose([0.0, 0.0, 0.0], [0.3, 0.2, 0.0])
    spin = _pose([0.4 + 0.1 * t, -0.05 * t, 0.5 - 0.08 * t], [0.0, 0.0, 0.7 * t])
    return spin @ tilt


def wrist_camera_pose(t) -> np.ndarray:
    """(4, 4) world <- camera_optical_frame at time t (s) of the wrist chain."""
    st = wrist_static_transforms()
    w, b, link, cam, depth, opt = WRIST_FRAMES
    return st[(w, b)] @ wrist_link_pose(t) @ st[(link, cam)] @ st[(cam, depth)] @ st[(depth, opt)]
