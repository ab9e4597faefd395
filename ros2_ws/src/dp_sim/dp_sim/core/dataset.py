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
from collections.abc import Callable, Iterable, Iterator
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
    tick_s: float = field(
        default=0.02,
        metadata={"help": "physics tick (s; sim_node's 1/clock_hz): success is judged after every tick"},
    )

    def __post_init__(self) -> None:
        if not 0.001 <= self.dt <= 1.0:
            raise ValueError(f"dt: expected 0.001..1 s. Got {self.dt}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps: expected >= 1. Got {self.max_steps}")
        if not 0 < self.tick_s <= self.dt:
            raise ValueError(f"tick_s: expected 0 < tick_s <= dt = {self.dt} s. Got {self.tick_s}")
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


@dataclass
class RolloutStep:
    """One expert step of a rollout: the observation at `time_s` and the action commanded right after it."""

    k: int  # step index in the episode
    time_s: float  # sim time of the observation (s since the reset)
    obs: dict  # SimScene.render() output (xyz, rgb, rgb_image, transform, ...)
    state: np.ndarray  # (7,) measured joints (rad) [+ finger opening (m)], float64
    action: np.ndarray  # (7,) joint targets (rad) [+ per-finger opening command (m)], float64
    tcp: np.ndarray  # (3,) TCP position (m, world)


def expert_rollout(
    scene: SimScene,
    expert,
    seed: int,
    ep_cfg: EpisodeConfig | None = None,
    rgb: bool = True,
    on_tick: Callable[[SimScene], None] | None = None,
) -> Iterator[RolloutStep]:
    """Reset to `seed` and roll the expert out: the one episode loop of make_dataset and record_demos.

    Every step renders the camera, reads the state, computes and applies the expert's action
    (yielded), then advances the physics by ``dt`` in ticks of ``ep_cfg.tick_s`` (sim_node's clock
    period), so the task's success is judged after every tick, as in the closed loop.
    ``on_tick(scene)`` runs after every tick that does not end the step (the next yield covers that
    instant): a bag writer publishes joint_states and /clock there. The episode ends ``hold_steps``
    steps after the first success, or after ``max_steps``::

        t_k:  render, q  ->  yield step k (obs, state, action applied)
              tick, on_tick, tick, on_tick, ..., tick       (dt / tick_s ticks)
        t_k+1 ...
    """
    ep_cfg = ep_cfg or EpisodeConfig()
    n_ticks = max(1, int(round(ep_cfg.dt / ep_cfg.tick_s)))
    scene.reset(seed)
    expert.start(scene)
    gripper = expert.action_dim == 8
    hold_left = None
    for k in range(ep_cfg.max_steps):
        t = scene.time
        obs = scene.render(rgb=rgb)
        state = np.append(scene.q, scene.gripper_opening) if gripper else scene.q.copy()
        tcp = scene.tcp_position()
        action = expert_step(scene, expert, ep_cfg.dt)
        yield RolloutStep(k, t, obs, state, action, tcp)
        for i in range(n_ticks):
            scene.step(ep_cfg.tick_s)
            if on_tick is not None and i < n_ticks - 1:
                on_tick(scene)
        if hold_left is None and scene.success_time is not None:
            hold_left = ep_cfg.hold_steps
        elif hold_left is not None:
            hold_left -= 1
        if hold_left is not None and hold_left <= 0:
            break


def received_transform(matrix) -> np.ndarray:
    """The (4, 4) transform a receiver rebuilds from its translation + quaternion.

    What bag_to_zarr reads from /tf_static and perception_node from TF: make_dataset preprocesses
    with it too, so both data paths transform the clouds with the very same matrix.
    """
    from dp_common.core.transforms import matrix_to_pose7, pose7_to_matrix

    return pose7_to_matrix(matrix_to_pose7(matrix))


def run_expert_episode(
    scene: SimScene,
    expert: ReachExpert,
    seed: int,
    preprocess: PreprocessFn,
    ep_cfg: EpisodeConfig | None = None,
    keep_images: bool = False,
) -> Episode:
    """Reset to `seed`, roll the expert out (:func:`expert_rollout`), preprocess every cloud."""
    clouds, states, actions, tcps, images = [], [], [], [], []
    transform = received_transform(scene.camera_transform)
    for step in expert_rollout(scene, expert, seed, ep_cfg, rgb=keep_images or _needs_rgb(preprocess)):
        obs = step.obs
        clouds.append(
            np.asarray(preprocess(obs["xyz"], obs["rgb"], transform, seed * 1000 + step.k), dtype=np.float32)
        )
        states.append(step.state)
        tcps.append(step.tcp)
        actions.append(step.action)
        if keep_images:
            images.append(obs["rgb_image"])
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
