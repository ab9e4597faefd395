"""Deterministic stepped replay: recorded clouds + joint states -> policy chunks, in-process.

For every recorded cloud, in bag order, exactly what the nodes do, minus the transport::

    cloud (bag) -> decode -> preprocess_cloud(checkpoint's perception params, fixed seed)
                -> ObservationHistory (dp_policy.observations: history spaced by dt,
                   aligned to sensor stamps; joint states interpolated at each cloud's stamp)
                -> every 1/policy_rate s of sensor time: Policy.predict_action_chunk with a
                   torch.Generator seeded with seed + chunk_id (as policy_node does)
                -> published rows = prediction[n_obs_steps - 1:] (row 0 = "now" = newest stamp)

"now" is the newest cloud's stamp, and joint states are known up to that stamp. No wall clock
enters, so the same bag, checkpoint and seed give identical chunks.

Image Diffusion Policy checkpoints (encoder type ``image``) replay the bag's image topic instead
(``EvalConfig.image_topic``, load the bag with it as the frame topic: :func:`frame_topic_of`)::

    image (bag) -> dp_policy.image_conversion.image_msg_to_rgb -> fit_image(checkpoint's image_shape)
                -> the same ObservationHistory / timer / seeding as clouds

which is what policy_node does to ``camera/image``; nothing goes through perception.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dp_eval.core.bagio import BagReader
from dp_eval.core.config import EvalConfig
from dp_eval.core.episodes import BagData, msg_time
from dp_eval.core.messages import decode_cloud, make_action_chunk, make_cloud

logger = logging.getLogger(__name__)

POINTS_TOPIC = "dp/points"
CHUNK_TOPIC = "dp/action_chunk"


def load_policy(path: str | Path, device: str = "cpu"):
    """Loads a checkpoint directory with the policy core (``Policy.from_checkpoint``)."""
    from dp_policy.core import Policy

    return Policy.from_checkpoint(str(path), device=device)


def policy_id_of(path: str | Path, policy=None) -> str:
    """'<policy id or dir name>@<sha256[:8] of the weights>', as policy_node stamps its chunks."""
    path = Path(path)
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    name = getattr(policy, "policy_id", "") or path.resolve().name
    return f"{name}@{h.hexdigest()[:8]}"


def chunk_seed(seed: int, chunk_id: int) -> int:
    """Noise seed of chunk `chunk_id` (counted over the whole replay): seed + chunk_id, as
    policy_node does with its `seed` parameter."""
    return int(seed) + int(chunk_id)


def obs_history_api():
    """(ObservationError, ObservationHistory, ObsHistoryConfig) of the policy node's history rule.

    The policy engineer keeps it ROS-free in ``dp_policy.observations`` (earlier
    ``dp_policy.core.obs_history``); both locations are accepted.
    """
    try:
        from dp_policy import observations as oh
    except ImportError:
        from dp_policy.core import obs_history as oh
    return oh.ObservationError, oh.ObservationHistory, oh.ObsHistoryConfig


def is_image_checkpoint(path: str | Path) -> bool:
    """True when the checkpoint directory holds an image policy (encoder type ``image``)."""
    import json

    try:
        meta = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False  # load_policy reports the real problem
    return (meta.get("policy", {}).get("encoder", {}) or {}).get("type") == "image"


def frame_topic_of(checkpoint: str | Path, cfg: EvalConfig) -> str:
    """The bag topic whose messages drive the replay: image_topic for image policies, else cloud_topic."""
    return cfg.image_topic if is_image_checkpoint(checkpoint) else cfg.cloud_topic


def perception_config_of(policy):
    """The PerceptionConfig the checkpoint's data was made with."""
    from dp_perception.core import PerceptionConfig

    pc = policy.config
    data = dict(pc.perception or {})
    if not data:
        logger.warning("checkpoint records no perception parameters; using defaults + its num_points")
        data = {"num_points": pc.encoder.num_points, "use_rgb": pc.encoder.use_rgb}
    known = set(PerceptionConfig.__dataclass_fields__)
    return PerceptionConfig(**{k: v for k, v in data.items() if k in known})


def resolve_transform(cloud_frame: str, target_frame: str, bag: BagData, cfg: EvalConfig):
    """target<-cloud (4, 4) transform: None (same frame), /tf_static of the bag, or camera_to_target.

    Raises:
        ValueError: when no transform is known.
    """
    from dp_perception.core import quaternion_to_matrix

    src, dst = cloud_frame.lstrip("/"), target_frame.lstrip("/")
    if not src or src == dst:
        return None
    for (parent, child), m in bag.transforms.items():
        if parent.lstrip("/") == dst and child.lstrip("/") == src:
            return m
        if parent.lstrip("/") == src and child.lstrip("/") == dst:
            return np.linalg.inv(m)
    if cfg.camera_to_target and src == cfg.camera_frame.lstrip("/"):
        return quaternion_to_matrix(cfg.camera_to_target[:3], cfg.camera_to_target[3:])
    raise ValueError(
        f"clouds are in frame {src!r} but the checkpoint expects {dst!r}, and there is no transform: "
        f"the bag has no /tf_static {dst!r} <- {src!r} and camera_to_target is "
        f"{cfg.camera_to_target or 'empty'} for camera_frame {cfg.camera_frame!r}. Pass "
        "--camera-to-target 'x y z qx qy qz qw' (pose of the camera in the target frame)."
    )


@dataclass
class EpisodeChunks:
    """Chunks predicted in one episode: stamps (M,), rows (M, H, A)."""

    index: int
    name: str
    stamps: list[float] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def arrays(self, horizon: int, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(M,) stamps and (M, H, A) rows."""
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
        """Writes all chunks: stamps (M,), episode (M,), rows (M, H, A)."""
        stamps, eps, rows = [], [], []
        for ep in self.episodes:
            stamps += ep.stamps
            eps += [ep.index] * len(ep.stamps)
            rows += ep.rows
        np.savez(
            path,
            stamps=np.asarray(stamps, dtype=np.float64),
            episode=np.asarray(eps, dtype=np.int64),
            rows=np.stack(rows) if rows else np.zeros((0, 0, 0), dtype=np.float32),
            joint_names=np.asarray(self.joint_names),
            dt=np.float64(self.dt),
        )


def run_stepped(
    bag_path,
    bag: BagData,
    checkpoint: str | Path,
    cfg: EvalConfig,
    seed: int = 0,
    out_bag=None,
    progress: bool = True,
    name: str | None = None,
    policy=None,
) -> RunResult:
    """Runs the policy on every recorded cloud (image policies: image) of `bag` (module docstring).

    Args:
        bag_path: the bag (read again for the clouds).
        bag: what :func:`dp_eval.core.episodes.load_bag` read from it.
        checkpoint: checkpoint directory.
        cfg: evaluation config.
        seed: base seed of the diffusion noise.
        out_bag: optional open BagWriter that receives dp/points and dp/action_chunk.
        progress: show a tqdm bar.
        name: label in the report (default: the checkpoint directory name).
        policy: an already loaded policy (else loaded from `checkpoint`).
    """
    import torch

    from dp_common.core.joint_states import JointStateBuffer
    from dp_perception.core import PerceptionError, preprocess_cloud
    from dp_policy.image_conversion import fit_image, image_msg_to_rgb

    ObservationError, ObservationHistory, ObsHistoryConfig = obs_history_api()

    policy = policy or load_policy(checkpoint, cfg.device)
    pc = policy.config
    joint_names = list(pc.joint_names) or list(bag.actions.t)[: pc.action_dim]
    if len(joint_names) != pc.action_dim:
        raise ValueError(f"checkpoint has {pc.action_dim} action columns but names {joint_names}")
    state_names = joint_names[: pc.state_dim]
    if len(state_names) != pc.state_dim:
        raise ValueError(
            f"checkpoint state_dim={pc.state_dim} but only {len(joint_names)} joint names; "
            "agent_pos is taken as the positions of the first state_dim joints"
        )
    image_key = pc.encoder.image_keys[0] if pc.encoder.type == "image" else None
    if image_key is not None and len(pc.encoder.image_keys) != 1:
        keys = list(pc.encoder.image_keys)
        raise ValueError(f"replay serves one camera (image_topic); the checkpoint has {keys}")
    image_shape = tuple(int(v) for v in pc.encoder.image_shape) if image_key else ()
    pcfg = perception_config_of(policy) if image_key is None else None
    transform = resolve_transform(bag.cloud_frame, pcfg.target_frame, bag, cfg) if pcfg else None
    hist_cfg = ObsHistoryConfig(
        n_obs_steps=pc.n_obs_steps,
        dt=pc.dt,
        num_points=pcfg.num_points if pcfg else 0,
        point_channels=(6 if pcfg.use_rgb else 3) if pcfg else 0,
        obs_timeout_s=max(0.5, 2 * pc.dt),
        future_tolerance_s=0.05,
        step_tolerance_s=min(cfg.step_tolerance_s, 0.9 * pc.dt),
        joint_tolerance_s=cfg.joint_tolerance_s,
        **({"obs_key": image_key, "image_shape": image_shape} if image_key else {}),
    )
    period = 1.0 / cfg.policy_rate_hz if cfg.policy_rate_hz > 0 else pc.dt
    pid = policy_id_of(checkpoint, policy)
    name = name or Path(checkpoint).resolve().name
    first_row = pc.n_obs_steps - 1

    joint_samples = bag.joints.samples()
    episodes = [EpisodeChunks(ep.index, ep.name) for ep in bag.episodes]
    timings: dict[str, list[float]] = {"preprocess": [], "inference": []}
    dropped: Counter = Counter()
    if out_bag is not None:
        if pcfg is not None:
            out_bag.add_topic(POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
        out_bag.add_topic(CHUNK_TOPIC, "dp_msgs/msg/ActionChunk")
        ts = out_bag.typestore

    bar = None
    if progress:
        from tqdm import tqdm

        unit = "image" if image_key else "cloud"
        bar = tqdm(total=bag.cloud_stamps.size, desc=f"stepped {name}", unit=unit, leave=False)
    t_wall0 = time.perf_counter()
    ep_idx = -1
    hist = joints = None
    js_next = 0
    next_pred = -np.inf
    chunk_id = 0
    with BagReader(bag_path) as reader:
        for i, m in enumerate(reader.messages([bag.cloud_topic])):
            if bar is not None:
                bar.update(1)
            e = bag.episode_of_cloud(i)
            if e != ep_idx:  # new episode: the nodes would start from scratch
                ep_idx = e
                hist = ObservationHistory(hist_cfg)
                joints = JointStateBuffer(history_s=max(2.0, 4 * pc.n_obs_steps * pc.dt))
                next_pred = -np.inf
                t_start = bag.episodes[e].t0 - 1.0
                js_next = 0
                while js_next < len(joint_samples) and joint_samples[js_next][0] < t_start:
                    js_next += 1
            t0 = time.perf_counter()
            msg = reader.deserialize(m)
            if image_key is not None:
                stamp = msg_time(m, msg)
            else:
                cloud = decode_cloud(msg, max_points=pcfg.max_input_points)
                stamp = cloud.stamp_s
            while js_next < len(joint_samples) and joint_samples[js_next][0] <= stamp:
                t_j, names_j, q_j = joint_samples[js_next]
                joints.update(t_j, names_j, q_j)
                js_next += 1
            if image_key is not None:
                try:  # as policy_node's on_image: any supported encoding / size -> checkpoint's shape
                    points = fit_image(image_msg_to_rgb(msg, use_cv_bridge=False), image_shape)
                except ValueError as exc:  # ImageConversionError: encoding, step, size
                    dropped["image_conversion"] += 1
                    logger.warning("image %d not usable: %s", i, exc)
                    continue
            else:
                try:
                    points = preprocess_cloud(
                        cloud.xyz,
                        cloud.rgb_packed if pcfg.use_rgb else None,
                        pcfg,
                        transform=transform,
                        seed=cfg.perception_seed,
                    )
                except PerceptionError as exc:
                    dropped[f"perception_{getattr(exc, 'reason', 'error')}"] += 1
                    continue
            timings["preprocess"].append(time.perf_counter() - t0)
            if out_bag is not None and pcfg is not None:
                out_bag.write(POINTS_TOPIC, m.timestamp_ns, make_cloud(ts, stamp, pcfg.target_frame, points))
            try:
                hist.add_cloud(stamp, points, now_s=stamp)
            except ObservationError as exc:
                dropped[f"obs_{exc.reason}"] += 1
                continue
            if stamp < next_pred - 0.25 * period:  # tolerate camera jitter
                continue
            try:
                obs = hist.build(stamp, joints, state_names)
            except ObservationError as exc:
                dropped[f"obs_{exc.reason}"] += 1
                continue
            gen = torch.Generator().manual_seed(chunk_seed(seed, chunk_id))
            t1 = time.perf_counter()
            pred = np.asarray(policy.predict_action_chunk(obs.as_policy_input(), generator=gen))
            timings["inference"].append(time.perf_counter() - t1)
            hist.mark_used(obs)
            rows = pred[first_row:].astype(np.float32)
            episodes[e].stamps.append(obs.stamp)
            episodes[e].rows.append(rows)
            next_pred = stamp + period  # the node's timer: one chunk per period of sensor time
            if out_bag is not None:
                out_bag.write(
                    CHUNK_TOPIC,
                    m.timestamp_ns,
                    make_action_chunk(ts, obs.stamp, chunk_id, pid, joint_names, pc.dt, rows),
                )
            chunk_id += 1
    wall = time.perf_counter() - t_wall0
    if bar is not None:
        bar.close()
    span = sum(ep.t1 - ep.t0 for ep in bag.episodes)
    return RunResult(
        name=name,
        path=str(checkpoint),
        policy_id=pid,
        joint_names=joint_names,
        dt=pc.dt,
        episodes=episodes,
        timings=timings,
        dropped=dict(dropped),
        n_clouds=int(bag.cloud_stamps.size),
        wall_s=wall,
        sensor_span_s=span,
        config={
            "policy": {
                "name": pc.name,
                "dt": pc.dt,
                "n_obs_steps": pc.n_obs_steps,
                "horizon": pc.horizon,
                "n_action_steps": pc.n_action_steps,
                "num_inference_steps": pc.num_inference_steps,
            },
            "perception": pcfg.to_dict() if pcfg else {},
            "image": {"topic": bag.cloud_topic, "shape": list(image_shape)} if image_key else {},
            "policy_period_s": period,
        },
    )
