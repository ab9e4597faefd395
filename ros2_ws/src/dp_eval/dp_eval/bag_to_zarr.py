"""CLI: rosbag2 demonstrations (sqlite3 or mcap) -> DP3 zarr, through the perception core.

One bag = one episode (record one bag per demonstration; ``dp_sim.record_demos`` does). Every bag
is read with the one bag stack, ``dp_common.bags`` (the `rosbags` library; no rosbag2_py needed)::

    steps   = clouds on --cloud-topic, thinned to at least --dt apart (time t_k = cloud stamp)
    point_cloud[k] = dp_perception.core.preprocess_cloud(cloud_k, transform world<-camera)
    state[k]       = --state-topic (JointState) interpolated at t_k, columns = --joints
    action[k]      = the newest --action-topic (JointState) command stamped <= t_k + dt/2
                     (the target commanded right after observation k)

Steps before the first command are dropped. The world <- camera transform comes from /tf_static
in the bag (a single static transform from --target-frame to the cloud's frame), or from
--camera-transform x y z qx qy qz qw. The crop box, voxel size and ``num_points`` come from
--perception-config (a perception_node parameter file; default: PerceptionConfig's defaults, as in
dp_perception's config/perception.yaml) and --perception key=value. Example::

    python -m dp_eval.bag_to_zarr demos/episode_* --out data/from_bags.zarr \\
        --perception-config my_perception.yaml

``python -m dp_sim.bag_to_zarr`` is the same command with the simulator's perception defaults
(config/perception_sim.yaml), for bags from ``dp_sim.record_demos``.

Images (image Diffusion Policy): with --image-topic (sensor_msgs/Image, encodings rgb8, bgr8,
rgba8, bgra8, mono8; others are rejected) every step also gets

    img[k] = the image stamped nearest to t_k (within dt/2, else the step is dropped), converted
             to RGB by dp_common.msgs.image.read_image and, with --image-shape H W,
             center-cropped to the H:W aspect ratio and area-resized to H x W
             (dp_policy.core.resize.fit_image -- what policy_node does to camera/image)

written as data/img (T, H, W, 3) uint8 (Diffusion Policy's layout). Without --image-shape the
camera's size is kept (all images of all bags must then have the same size). For an RGB-only
robot pass --cloud-topic "" : the steps are then the images (thinned to dt) and no
data/point_cloud is written::

    python -m dp_eval.bag_to_zarr demos/ --out data/img.zarr --image-topic /camera/image \\
        --image-shape 72 96 [--cloud-topic ""]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dp_common.cli import add_image_shape_argument, config_params
from dp_common.msgs import ns_to_s, stamp_to_ns
from dp_policy.core.dataset import Episode, ZarrEpisodeWriter

logger = logging.getLogger(__name__)

DEFAULT_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))


@dataclass
class BagStreams:
    """Time series read from one bag (times in seconds from message header stamps)."""

    cloud_t: list[float]
    clouds: list[tuple[np.ndarray, np.ndarray | None]]  # xyz (N,3) f32, rgb (N,3) f32 | None
    cloud_frame: str
    state_t: np.ndarray  # (S,)
    state: np.ndarray  # (S, J)
    action_t: np.ndarray  # (A,)
    action: np.ndarray  # (A, J)
    transforms: dict[tuple[str, str], np.ndarray]  # (parent, child) -> (4, 4) parent<-child
    image_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (I,) sorted
    images: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 RGB, same order


def _joint_columns(names: list[str], joints: list[str]) -> list[int] | None:
    idx = {n: i for i, n in enumerate(names)}
    if not all(j in idx for j in joints):
        return None
    return [idx[j] for j in joints]


def read_bag(
    path: Path,
    cloud_topic: str,
    state_topic: str,
    action_topic: str,
    joints: list[str],
    image_topic: str = "",
    image_shape: tuple[int, int] | None = None,
) -> BagStreams:
    """Read the clouds, images, joint states, commands and static transforms of one bag.

    ``cloud_topic`` / ``image_topic`` may be "" (not read). Images are converted to RGB and, with
    ``image_shape`` (h, w), fitted to it (see the module docstring).
    """
    from dp_common.bags import BagReader
    from dp_common.msgs.cloud import read_cloud
    from dp_common.msgs.image import read_image
    from dp_common.msgs.joint_state import read_joint_state
    from dp_common.msgs.transform import read_tf
    from dp_policy.core.resize import fit_image

    cloud_t, clouds, frame = [], [], ""
    img_t, imgs = [], []
    st_t, st, ac_t, ac = [], [], [], []
    tfs: dict[tuple[str, str], np.ndarray] = {}
    with BagReader(Path(path)) as reader:
        topics = {t for t in (cloud_topic, image_topic, state_topic, action_topic) if t}
        missing = topics - set(reader.topics)
        if missing:
            raise ValueError(f"{path}: topics {sorted(missing)} not in the bag")
        for m in reader.messages(topics | {"/tf_static"}):
            msg = reader.deserialize(m)
            if m.topic == image_topic:
                try:
                    rgb = read_image(msg, use_cv_bridge=False)
                except ValueError as exc:
                    raise ValueError(f"{path}: {image_topic}: {exc}") from exc
                img_t.append(ns_to_s(stamp_to_ns(msg.header.stamp)))
                imgs.append(fit_image(rgb, image_shape) if image_shape else rgb)
            elif m.topic == cloud_topic:
                cloud = read_cloud(msg)
                cloud_t.append(ns_to_s(cloud.stamp_ns))
                clouds.append((np.array(cloud.xyz, dtype=np.float32), cloud.rgb()))
                frame = cloud.frame_id
            elif m.topic in (state_topic, action_topic):
                js = read_joint_state(msg)
                cols = _joint_columns(list(js.names), joints)
                if cols is None:
                    continue  # a publisher carrying other joints (e.g. the gripper)
                q = js.position[cols]
                if m.topic == state_topic:
                    st_t.append(ns_to_s(js.stamp_ns))
                    st.append(q)
                else:
                    ac_t.append(ns_to_s(js.stamp_ns))
                    ac.append(q)
            else:
                for tf in read_tf(msg):
                    tfs[(tf.frame_id.lstrip("/"), tf.child_frame_id.lstrip("/"))] = tf.matrix
    order = np.argsort(st_t, kind="stable")
    aorder = np.argsort(ac_t, kind="stable")
    iorder = np.argsort(img_t, kind="stable")
    nj = len(joints)
    return BagStreams(
        cloud_t,
        clouds,
        frame,
        np.asarray(st_t)[order],
        np.asarray(st, dtype=float).reshape(-1, nj)[order],
        np.asarray(ac_t)[aorder],
        np.asarray(ac, dtype=float).reshape(-1, nj)[aorder],
        tfs,
        np.asarray(img_t, dtype=float)[iorder],
        [imgs[i] for i in iorder],
    )


def _nearest(times: np.ndarray, t: float) -> int:
    """Index of the stamp in sorted ``times`` nearest to ``t``."""
    i = int(np.searchsorted(times, t))
    if i == len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
        return i - 1
    return i


def streams_to_episode(
    s: BagStreams,
    preprocess,
    transform: np.ndarray | None,
    dt: float,
    seed: int = 0,
    use_images: bool = False,
) -> Episode:
    """Align the streams into one episode (see the module docstring).

    Steps are the clouds, or the images when the bag was read without a cloud topic. With
    ``use_images`` every step gets the nearest image (within dt/2; steps without one are dropped).
    Image-only episodes have ``point_cloud = None``.
    """
    use_clouds = bool(s.clouds)
    use_images = use_images or not use_clouds
    if len(s.state_t) == 0 or len(s.action_t) == 0 or (not use_clouds and not s.images):
        raise ValueError("bag has no clouds / images, joint states or commands for the requested joints")
    if use_images and not s.images:
        raise ValueError("bag has no images on the image topic")
    steps_t = s.cloud_t if use_clouds else list(s.image_t)
    pcs, imgs, states, actions = [], [], [], []
    last_t = -np.inf
    for k, t in enumerate(steps_t):
        if t < last_t + dt - 1e-3:
            continue
        ia = int(np.searchsorted(s.action_t, t + dt / 2, side="right")) - 1
        if ia < 0:
            continue
        if t > s.action_t[-1] + dt / 2:
            break
        ii = -1
        if use_images:
            ii = _nearest(s.image_t, t)
            if abs(s.image_t[ii] - t) > dt / 2:
                continue
        last_t = t
        q = np.array([np.interp(t, s.state_t, s.state[:, j]) for j in range(s.state.shape[1])])
        if use_clouds:
            xyz, rgb = s.clouds[k]
            pcs.append(np.asarray(preprocess(xyz, rgb, transform, seed * 1000 + k), dtype=np.float32))
        if use_images:
            imgs.append(s.images[ii])
        states.append(q)
        actions.append(s.action[ia])
    if not states:
        raise ValueError("no cloud / image overlaps the commands")
    if imgs and len({im.shape for im in imgs}) > 1:
        raise ValueError("images change size within the bag; pass --image-shape H W")
    return Episode(
        seed=seed,
        success=True,
        target_index=-1,
        point_cloud=np.stack(pcs) if pcs else None,
        state=np.asarray(states, dtype=np.float32),
        action=np.asarray(actions, dtype=np.float32),
        tcp_pos=np.full((len(states), 3), np.nan, dtype=np.float32),
        images=np.stack(imgs) if imgs else None,
    )


def convert(
    bags: list[Path],
    out: Path,
    perception: dict | None = None,
    dt: float = 0.1,
    cloud_topic: str = "/camera/points",
    state_topic: str = "/joint_states",
    action_topic: str = "/expert/joint_command",
    joints: list[str] | None = None,
    camera_transform: np.ndarray | None = None,
    progress: bool = True,
    image_topic: str = "",
    image_shape: tuple[int, int] | None = None,
) -> dict:
    """Convert bags (one episode each) into one zarr at `out`; returns a summary.

    ``perception`` are PerceptionConfig fields (the rest keep their defaults). ``image_topic`` adds
    ``data/img`` (fitted to ``image_shape`` (h, w) when given); ``cloud_topic=""`` makes an
    image-only dataset (no perception, no data/point_cloud).
    """
    joints = list(joints or DEFAULT_JOINTS)
    if not cloud_topic and not image_topic:
        raise ValueError("need a cloud topic, an image topic, or both")
    if image_shape is not None and (len(image_shape) != 2 or min(image_shape) < 1):
        raise ValueError(f"image_shape must be (H, W) >= 1. Got {image_shape}")
    if cloud_topic:
        from dp_perception.core.preprocess import cloud_preprocessor

        preprocess, pcfg = cloud_preprocessor(perception)
    else:
        preprocess, pcfg = None, {}
    target = pcfg.get("target_frame", "")
    attrs = {
        "source": "dp_eval.bag_to_zarr",
        "bags": [str(b) for b in bags],
        "dt": dt,
        "joint_names": joints,
        "action_space": "joint_position",
        "perception_config": pcfg,
        "topics": {"cloud": cloud_topic, "state": state_topic, "action": action_topic, "image": image_topic},
    }
    if image_topic:
        attrs["image_shape"] = list(image_shape) if image_shape else None
        attrs["image_resize"] = "dp_policy.core.resize.fit_image" if image_shape else "none"
    writer = ZarrEpisodeWriter(out, attrs)
    iterator = bags
    if progress:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="bags", unit="bag")
    skipped = []
    try:
        for i, bag in enumerate(iterator):
            s = read_bag(bag, cloud_topic, state_topic, action_topic, joints, image_topic, image_shape)
            tf = camera_transform
            if tf is None and cloud_topic:
                frame = s.cloud_frame.lstrip("/")
                tf = np.eye(4) if frame == target else s.transforms.get((target, frame))
            if tf is None and cloud_topic:
                raise ValueError(
                    f"{bag}: no static transform {target} -> {s.cloud_frame} in /tf_static; "
                    "pass --camera-transform"
                )
            try:
                writer.add(streams_to_episode(s, preprocess, tf, dt, seed=i, use_images=bool(image_topic)))
            except ValueError as exc:
                logger.warning("skipping %s: %s", bag, exc)
                skipped.append(str(bag))
    finally:
        writer.close()
    return {"episodes": len(writer.episode_ends), "steps": writer.total, "skipped": skipped}


def main(
    argv: list[str] | None = None, perception_config: str = "", perception_defaults: dict | None = None
) -> int:
    """Entry point (console script `bag_to_zarr`; ``python -m dp_sim.bag_to_zarr`` calls it too).

    Args:
        perception_config: default of --perception-config ("" = PerceptionConfig's defaults).
        perception_defaults: PerceptionConfig fields applied under the file and --perception.
    """
    from dp_common.core.transforms import pose7_to_matrix

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("bags", nargs="+", help="bag directories (or a folder holding them)")
    ap.add_argument("--out", required=True, help="output zarr directory (overwritten)")
    ap.add_argument("--dt", type=float, default=0.1, help="step period (s)")
    ap.add_argument("--cloud-topic", default="/camera/points", help='PointCloud2 topic; "" = image-only data')
    ap.add_argument(
        "--image-topic", default="", help="sensor_msgs/Image topic -> data/img (e.g. /camera/image)"
    )
    add_image_shape_argument(ap)
    ap.add_argument("--state-topic", default="/joint_states")
    ap.add_argument("--action-topic", default="/expert/joint_command")
    ap.add_argument("--joints", nargs="*", default=list(DEFAULT_JOINTS))
    ap.add_argument(
        "--perception-config",
        default=perception_config,
        help="perception_node params yaml with the PerceptionConfig fields"
        + (f" (default: {perception_config})" if perception_config else " (default: PerceptionConfig's)"),
    )
    ap.add_argument("--perception", nargs="*", default=[], help="PerceptionConfig key=value")
    ap.add_argument("--camera-transform", nargs=7, type=float, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bags: list[Path] = []
    for b in map(Path, args.bags):
        if (b / "metadata.yaml").exists() or b.suffix in (".mcap", ".db3"):
            bags.append(b)
        elif b.is_dir():
            bags += sorted(p.parent for p in b.glob("*/metadata.yaml"))
    if not bags:
        print("bag_to_zarr: no bags found", file=sys.stderr)
        return 2
    try:
        tf = pose7_to_matrix(args.camera_transform) if args.camera_transform else None
        from dp_perception.core import PerceptionConfig

        perception = {
            **(perception_defaults or {}),
            **config_params(args.perception_config, PerceptionConfig, args.perception),
        }
        summary = convert(
            bags,
            Path(args.out),
            perception,
            args.dt,
            args.cloud_topic,
            args.state_topic,
            args.action_topic,
            args.joints,
            tf,
            image_topic=args.image_topic,
            image_shape=tuple(args.image_shape) if args.image_shape else None,
        )
    except (ValueError, ImportError) as exc:
        print(f"bag_to_zarr: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["episodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
