"""Stepped replay of a recorded bag through the robot's policy runtime (the bag-reading side).

For every recorded frame and joint state, in bag order, exactly what the nodes do, minus the
transport::

    cloud (bag) -> decode -> preprocess_cloud(checkpoint's perception params, fixed seed) -> dp/points
    image (bag) -> read_image -> fit_image(checkpoint's image_shape)   (image policies)
    joint_states (bag) ----------------------------------------------------------------------┐
                -> dp_eval.core.stepped.drive: node clock = bag time, timer ticks every 1/rate
                -> dp_policy.core.runner.PolicyRunner (policy_node's tick: history, seed + chunk_id,
                   delta -> absolute, inpainting) -> chunk rows

Image Diffusion Policy checkpoints replay ``EvalConfig.image_topic`` instead of the cloud topic
(load the bag with it as the frame topic: :func:`frame_topic_of`); nothing goes through perception.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dp_common.bags import BagReader
from dp_common.msgs.chunk import build_chunk
from dp_common.msgs.cloud import build_cloud, read_cloud
from dp_common.msgs.image import read_image
from dp_common.msgs.stamp import stamp_to_ns
from dp_common.msgs.types import bag_types
from dp_eval.core.config import EvalConfig
from dp_eval.core.episodes import BagData
from dp_eval.core.stepped import (
    EpisodeChunks,
    FrameEvent,
    JointEvent,
    RunResult,
    drive,
    frame_topic_of,
    is_image_checkpoint,
    timer_period_ns,
)
from dp_eval.episodes import msg_stamp_ns
from dp_policy.core.node_config import PolicyNodeConfig
from dp_policy.core.resize import fit_image

__all__ = ["frame_topic_of", "is_image_checkpoint", "resolve_transform", "run_stepped", "runner_config"]
logger = logging.getLogger(__name__)

POINTS_TOPIC = "dp/points"
CHUNK_TOPIC = "dp/action_chunk"


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
    from dp_common.core.transforms import quaternion_to_matrix

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


def runner_config(
    checkpoint, cfg: EvalConfig, seed: int, dt: float, inpaint_rows: int = 0
) -> PolicyNodeConfig:
    """policy_node's config for a replay: its defaults, the replay's rate, seed and tolerances."""
    return PolicyNodeConfig(
        checkpoint=str(checkpoint),
        device=cfg.device,
        rate_hz=cfg.policy_rate_hz if cfg.policy_rate_hz > 0 else 1.0 / dt,
        sync_wait_s=cfg.sync_wait_s,
        step_tolerance_s=cfg.step_tolerance_s,
        joint_tolerance_s=cfg.joint_tolerance_s,
        autostart=True,
        inpaint_rows=inpaint_rows,
        seed=seed,
        warmup_iters=0,
        publish_markers=False,
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
    inpaint_rows: int | None = None,
) -> RunResult:
    """Replays `bag` through policy_node's runtime (module docstring); deterministic.

    Args:
        bag_path: the bag (read again for frames and joint states).
        bag: what :func:`dp_eval.core.episodes.load_bag` read from it (episodes, transforms).
        checkpoint: checkpoint directory.
        cfg: evaluation config.
        seed: base seed of the diffusion noise (chunk i uses seed + i, as policy_node's `seed`).
        out_bag: optional open BagWriter that receives dp/points and dp/action_chunk.
        progress: show a tqdm bar.
        name: label in the report (default: the checkpoint directory name).
        policy: an already loaded policy (else loaded from `checkpoint`).
        inpaint_rows: policy_node's `inpaint_rows` (0 = off); None = ``cfg.inpaint_rows``.
    """
    from dp_perception.core import PerceptionError, preprocess_cloud
    from dp_policy.core.runner import runner_from_checkpoint

    if policy is None:
        from dp_policy.core import Policy

        policy = Policy.from_checkpoint(str(checkpoint), device=cfg.device)
    pc = policy.config
    inpaint_rows = cfg.inpaint_rows if inpaint_rows is None else inpaint_rows
    runner = runner_from_checkpoint(runner_config(checkpoint, cfg, seed, pc.dt, inpaint_rows), policy)
    image_shape = runner.image_shape
    pcfg = perception_config_of(policy) if runner.image_key is None else None
    transform = resolve_transform(bag.cloud_frame, pcfg.target_frame, bag, cfg) if pcfg else None
    name = name or Path(checkpoint).resolve().name
    episodes = [EpisodeChunks(ep.index, ep.name) for ep in bag.episodes]
    timings: dict[str, list[float]] = {"preprocess": [], "inference": []}
    dropped: Counter = Counter()
    types = None
    if out_bag is not None:
        if pcfg is not None:
            out_bag.add_topic(POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
        out_bag.add_topic(CHUNK_TOPIC, "dp_msgs/msg/ActionChunk")
        types = bag_types(out_bag.typestore)
    bar = None
    if progress:
        from tqdm import tqdm

        unit = "image" if runner.image_key else "cloud"
        bar = tqdm(total=bag.cloud_stamps.size, desc=f"stepped {name}", unit=unit, leave=False)

    def events(reader: BagReader) -> Iterator[FrameEvent | JointEvent]:
        joint_topic = {t.lstrip("/"): t for t in reader.topics}.get(
            cfg.joint_topic.lstrip("/"), cfg.joint_topic
        )
        i = -1
        for m in reader.messages([bag.cloud_topic, joint_topic]):
            msg = reader.deserialize(m)
            if m.topic == joint_topic:
                yield JointEvent(int(m.timestamp_ns), stamp_to_ns(msg.header.stamp), msg.name, msg.position)
                continue
            i += 1
            if bar is not None:
                bar.update(1)
            t0 = time.perf_counter()
            stamp, episode = msg_stamp_ns(m, msg), bag.episode_of_cloud(i)
            try:
                if pcfg is None:  # as policy_node's on_image: any supported encoding -> checkpoint's shape
                    frame = fit_image(read_image(msg, use_cv_bridge=False), image_shape)
                else:
                    cloud = read_cloud(msg, max_points=pcfg.max_input_points)
                    rgb = cloud.rgb_packed if pcfg.use_rgb else None
                    frame = preprocess_cloud(
                        cloud.xyz, rgb, pcfg, transform=transform, seed=cfg.perception_seed
                    )
            except PerceptionError as exc:
                yield FrameEvent(
                    m.timestamp_ns, stamp, None, episode, f"perception_{getattr(exc, 'reason', 'error')}"
                )
                continue
            except ValueError as exc:  # ImageConversionError: encoding, step, size
                logger.warning("image %d not usable: %s", i, exc)
                yield FrameEvent(m.timestamp_ns, stamp, None, episode, "image_conversion")
                continue
            timings["preprocess"].append(time.perf_counter() - t0)
            if types is not None and pcfg is not None:
                out = build_cloud(stamp, pcfg.target_frame, frame, types=types)
                out_bag.write(POINTS_TOPIC, m.timestamp_ns, out)
            yield FrameEvent(int(m.timestamp_ns), stamp, frame, episode)

    def on_chunk(chunk, episode: int, t_ns: int) -> None:
        timings["inference"].append(chunk.inference_s)
        episodes[episode].stamps_ns.append(chunk.stamp_ns)
        episodes[episode].rows.append(chunk.rows)
        if types is not None:
            c = chunk
            msg = build_chunk(
                c.stamp_ns, c.rows, c.joint_names, c.dt, c.chunk_id, c.policy_id, c.action_space, types
            )
            out_bag.write(CHUNK_TOPIC, t_ns, msg)

    period_ns = timer_period_ns(runner.cfg.rate_hz)
    t_wall0 = time.perf_counter()
    with BagReader(bag_path) as reader:
        dropped.update(drive(runner, events(reader), period_ns, on_chunk))
    wall = time.perf_counter() - t_wall0
    if bar is not None:
        bar.close()
    return RunResult(
        name=name,
        path=str(checkpoint),
        policy_id=runner.policy_id,
        joint_names=list(runner.joint_names),
        dt=pc.dt,
        episodes=episodes,
        timings=timings,
        dropped=dict(dropped),
        n_clouds=int(bag.cloud_stamps.size),
        wall_s=wall,
        sensor_span_s=sum(ep.t1 - ep.t0 for ep in bag.episodes),
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
            "image": {"topic": bag.cloud_topic, "shape": list(image_shape)} if runner.image_key else {},
            "policy_period_s": period_ns * 1e-9,
            "inpaint_rows": inpaint_rows,
        },
    )
