"""Expert rollouts -> DP3 zarr (ROS-free).

Layout written (zarr v2, as DP3 / diffusion_policy's ReplayBuffer read it)::

    data/point_cloud  (T, N, 3|6) float32   preprocessed cloud (world frame), see PerceptionConfig
    data/state        (T, 7|8)    float32   measured joint positions (rad) at the cloud's time
                                            (+ panda_finger_joint1 position (m) for gripper tasks)
    data/action       (T, 7|8)    float32   absolute joint targets commanded right after it (rad)
                                            (+ the per-finger gripper opening command (m))
    data/tcp_pos      (T, 3)      float32   TCP position (m, world), for analysis only
    meta/episode_ends (E,)        int64     exclusive end index of every episode
    meta/episode_seeds (E,)       int64     the scene seed of every episode
    meta/episode_target (E,)      int64     which cube the expert touched (bimodal)
    attrs: sim_config, expert_config, perception_config, dt, joint_names (the action/state
           columns: 7 arm joints [+ panda_finger_joint1]), task, seeds, source

Timeline of one step k (dt = 0.1 s)::

    t_k: render cloud, read q  ->  obs k (point_cloud[k], state[k])
         expert computes q_target -> action[k]; sim follows it until t_k + dt
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dp_policy.core.dataset import Episode, ZarrEpisodeWriter
from dp_sim.core.config import SimConfig
from dp_sim.core.expert import ExpertConfig, ReachExpert
from dp_sim.core.pick_expert import expert_step, make_expert
from dp_sim.core.robot import GRIPPER_JOINT, JOINT_NAMES
from dp_sim.core.scene import SimScene

logger = logging.getLogger(__name__)

# Preprocess callable: (xyz (N,3) f32 camera frame, rgb (N,3) f32 | None, transform (4,4)
# world<-camera, seed) -> (num_points, 3|6) f32. Normally dp_perception.core.preprocess_cloud.
PreprocessFn = Callable[[np.ndarray, np.ndarray | None, np.ndarray, int], np.ndarray]

# Perception settings that suit the default scene (world frame; z > 5 mm drops the table top).
SIM_PERCEPTION_DEFAULTS: dict = {
    "target_frame": "world",
    "crop_min": [0.15, -0.5, 0.005],
    "crop_max": [0.9, 0.5, 0.7],
    "voxel_size": 0.0,
    "num_points": 512,
    "min_points": 64,
    "use_rgb": False,
    "remove_plane": False,
}


def perception_node_params(sim_cfg: SimConfig | None = None) -> dict:
    """perception_node parameters matching the scene: SIM_PERCEPTION_DEFAULTS + camera pose.

    `camera_to_target` is [x, y, z, qx, qy, qz, qw] of world <- camera_optical_frame.
    """
    from dp_common.core.transforms import matrix_to_pose7
    from dp_sim.core.model import camera_transform_from_config

    t = camera_transform_from_config(sim_cfg or SimConfig())
    params = dict(SIM_PERCEPTION_DEFAULTS)
    params["camera_frame"] = "camera_optical_frame"
    params["camera_to_target"] = matrix_to_pose7(t)
    params["use_tf"] = False
    return params


@dataclass
class EpisodeConfig:
    """How an expert episode is recorded (validated in __post_init__)."""

    dt: float = field(default=0.1, metadata={"help": "control/observation period (s)"})
    max_steps: int = field(default=100, metadata={"help": "steps before giving up"})
    hold_steps: int = field(
        default=3, metadata={"help": "steps recorded after the first touch (policy learns to stop)"}
    )
    keep_failures: bool = field(
        default=False, metadata={"help": "also write episodes where the expert failed"}
    )

    def __post_init__(self) -> None:
        if not 0.001 <= self.dt <= 1.0:
            raise ValueError(f"dt: expected 0.001..1 s. Got {self.dt}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps: expected >= 1. Got {self.max_steps}")
        if self.hold_steps < 0:
            raise ValueError(f"hold_steps: expected >= 0. Got {self.hold_steps}")


def perception_preprocessor(perception_cfg: dict | None = None) -> tuple[PreprocessFn, dict]:
    """The deployment preprocessing with the scene's defaults (SIM_PERCEPTION_DEFAULTS + `perception_cfg`).

    Returns:
        (fn, cfg_dict): fn(xyz, rgb, transform, seed) and the full PerceptionConfig as a dict.
    Raises:
        ImportError: dp_perception is not available.
    """
    from dp_perception.core.preprocess import cloud_preprocessor

    return cloud_preprocessor({**SIM_PERCEPTION_DEFAULTS, **(perception_cfg or {})})


def run_expert_episode(
    scene: SimScene,
    expert: ReachExpert,
    seed: int,
    preprocess: PreprocessFn,
    ep_cfg: EpisodeConfig | None = None,
    keep_images: bool = False,
) -> Episode:
    """Reset to `seed`, roll the expert out at ep_cfg.dt, preprocess every cloud."""
    ep_cfg = ep_cfg or EpisodeConfig()
    scene.reset(seed)
    expert.start(scene)
    gripper = expert.action_dim == 8
    clouds, states, actions, tcps, images = [], [], [], [], []
    hold_left = None
    for k in range(ep_cfg.max_steps):
        obs = scene.render(rgb=keep_images or _needs_rgb(preprocess))
        clouds.append(
            np.asarray(
                preprocess(obs["xyz"], obs["rgb"], obs["transform"], seed * 1000 + k),
                dtype=np.float32,
            )
        )
        states.append(np.append(scene.q, scene.gripper_opening) if gripper else scene.q.copy())
        tcps.append(scene.tcp_position())
        if keep_images:
            images.append(obs["rgb_image"])
        actions.append(expert_step(scene, expert, ep_cfg.dt))
        scene.step(ep_cfg.dt)
        if hold_left is None and scene.success_time is not None:
            hold_left = ep_cfg.hold_steps
        elif hold_left is not None:
            hold_left -= 1
        if hold_left is not None and hold_left <= 0:
            break
    return Episode(
        seed=int(seed),
        success=scene.success_time is not None,
        target_index=expert.target_index,
        point_cloud=np.stack(clouds).astype(np.float32),
        state=np.asarray(states, dtype=np.float32),
        action=np.asarray(actions, dtype=np.float32),
        tcp_pos=np.asarray(tcps, dtype=np.float32),
        images=np.stack(images) if keep_images else None,
    )


def _needs_rgb(preprocess) -> bool:
    return bool(getattr(preprocess, "needs_rgb", True))


def generate_dataset(
    out: str | Path,
    seeds: Iterable[int],
    preprocess: PreprocessFn,
    sim_cfg: SimConfig | None = None,
    expert_cfg: ExpertConfig | None = None,
    ep_cfg: EpisodeConfig | None = None,
    extra_attrs: dict | None = None,
    keep_images: bool = False,
    progress: bool = True,
) -> dict:
    """Roll the expert out for every seed and write a DP3 zarr at `out`.

    Returns:
        summary dict: episodes, steps, successes, failures (seeds), success_rate.
    """
    sim_cfg = sim_cfg or SimConfig()
    expert_cfg = expert_cfg or ExpertConfig()
    ep_cfg = ep_cfg or EpisodeConfig()
    seeds = [int(s) for s in seeds]
    scene = SimScene(sim_cfg)
    expert = make_expert(sim_cfg.task, expert_cfg, scene.kin)
    columns = list(JOINT_NAMES) + ([GRIPPER_JOINT] if expert.action_dim == 8 else [])
    attrs = {
        "source": "dp_sim.make_dataset (scripted expert)",
        "task": sim_cfg.task,
        "dt": ep_cfg.dt,
        "joint_names": columns,
        "action_space": "joint_position",
        "sim_config": sim_cfg.to_dict(),
        "expert_config": vars(expert_cfg).copy(),
        "episode_config": vars(ep_cfg).copy(),
        "seeds_requested": seeds,
    }
    attrs.update(extra_attrs or {})
    writer = ZarrEpisodeWriter(out, attrs)
    failures: list[int] = []
    iterator = seeds
    if progress:
        from tqdm import tqdm

        iterator = tqdm(seeds, desc="episodes", unit="ep")
    try:
        for seed in iterator:
            ep = run_expert_episode(scene, expert, seed, preprocess, ep_cfg, keep_images)
            if not ep.success:
                failures.append(seed)
                logger.warning("expert failed on seed %d", seed)
                if not ep_cfg.keep_failures:
                    continue
            writer.add(ep)
    finally:
        writer.attrs["failed_seeds"] = failures
        writer.close()
        scene.close()
    n = len(seeds)
    return {
        "episodes": len(writer.episode_ends),
        "steps": writer.total,
        "successes": n - len(failures),
        "failures": failures,
        "success_rate": (n - len(failures)) / n if n else math.nan,
    }
