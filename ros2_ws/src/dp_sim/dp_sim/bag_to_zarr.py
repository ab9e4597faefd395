"""CLI: rosbag2 demonstrations (sqlite3 or mcap) -> DP3 zarr, through the perception core.

One bag = one episode (record one bag per demonstration; `record_demos` does). Every bag is read
with the `rosbags` library (no rosbag2_py needed)::

    steps   = clouds on --cloud-topic, thinned to at least --dt apart (time t_k = cloud stamp)
    point_cloud[k] = dp_perception.core.preprocess_cloud(cloud_k, transform world<-camera)
    state[k]       = --state-topic (JointState) interpolated at t_k, columns = --joints
    action[k]      = the newest --action-topic (JointState) command stamped <= t_k + dt/2
                     (the target commanded right after observation k)

Steps before the first command are dropped. The world <- camera transform comes from /tf_static
in the bag (a single static transform from --target-frame to the cloud's frame), or from
--camera-transform x y z qx qy qz qw. Example::

    python -m dp_sim.bag_to_zarr demos/episode_* --out data/from_bags.zarr

Images (image Diffusion Policy): with --image-topic (sensor_msgs/Image, encodings rgb8, bgr8,
rgba8, bgra8, mono8; others are rejected) every step also gets

    img[k] = the image stamped nearest to t_k (within dt/2, else the step is dropped), converted
             to RGB by dp_policy.image_conversion.image_msg_to_rgb and, with --image-shape H W,
             center-cropped to the H:W aspect ratio and area-resized to H x W
             (dp_policy.image_conversion.fit_image -- what policy_node does to camera/image)

written as data/img (T, H, W, 3) uint8 (Diffusion Policy's layout). Without --image-shape the
camera's size is kept (all images of all bags must then have the same size). For an RGB-only
robot pass --cloud-topic "" : the steps are then the images (thinned to dt) and no
data/point_cloud is written::

    python -m dp_sim.bag_to_zarr demos/ --out data/img.zarr --image-topic /camera/image \\
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

from dp_sim.core.dataset import Episode, ZarrEpisodeWriter, perception_preprocessor
from dp_sim.core.robot import JOINT_NAMES
from dp_sim.make_dataset import DEFAULT_PERCEPTION_YAML, add_image_shape_argument, perception_overrides

logger = logging.getLogger(__name__)


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


def _stamp(h) -> float:
    return float(h.stamp.sec) + float(h.stamp.nanosec) * 1e-9


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
    from rosbags.highlevel import AnyReader

    from dp_policy.image_conversion import fit_image, image_msg_to_rgb

    cloud_t, clouds, frame = [], [], ""
    img_t, imgs = [], []
    st_t, st, ac_t, ac = [], [], [], []
    tfs: dict[tuple[str, str], np.ndarray] = {}
    with AnyReader([Path(path)]) as reader:
        topics = {t for t in (cloud_topic, image_topic, state_topic, action_topic) if t}
        conns = [c for c in reader.connections if c.topic in topics | {"/tf_static"}]
        missing = topics - {c.topic for c in conns}
        if missing:
            raise ValueError(f"{path}: topics {sorted(missing)} not in the bag")
        for conn, _t, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == image_topic:
                try:
                    rgb = image_msg_to_rgb(msg, use_cv_bridge=False)
                except ValueError as exc:
                    raise ValueError(f"{path}: {image_topic}: {exc}") from exc
                img_t.append(_stamp(msg.header))
                imgs.append(fit_image(rgb, image_shape) if image_shape else rgb)
            elif conn.topic == cloud_topic:
                from dp_common.core.pointcloud import decode_cloud_message

                dec = decode_cloud_message(msg)
                cloud_t.append(_stamp(msg.header))
                clouds.append((np.array(dec.xyz, dtype=np.float32), dec.rgb()))
                frame = msg.header.frame_id
            elif conn.topic in (state_topic, action_topic):
                cols = _joint_columns(list(msg.name), joints)
                if cols is None:
                    continue  # a publisher carrying other joints (e.g. the gripper)
                q = np.asarray(msg.position, dtype=float)[cols]
                if conn.topic == state_topic:
                    st_t.append(_stamp(msg.header))
                    st.append(q)
                else:
                    ac_t.append(_stamp(msg.header))
                    ac.append(q)
            else:
                for tr in msg.transforms:
                    from scipy.spatial.transform import Rotation

                    r, p = tr.transform.rotation, tr.transform.translation
                    m = np.eye(4)
                    m[:3, :3] = Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix()
                    m[:3, 3] = (p.x, p.y, p.z)
                    tfs[(tr.header.frame_id.lstrip("/"), tr.child_frame_id.lstrip("/"))] = m
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


def _transform_from_args(values: list[float]) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    if len(values) != 7:
        raise ValueError(f"--camera-transform: expected x y z qx qy qz qw. Got {values}")
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat(values[3:]).as_matrix()
    m[:3, 3] = values[:3]
    return m


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

    ``image_topic`` adds ``data/img`` (fitted to ``image_shape`` (h, w) when given);
    ``cloud_topic=""`` makes an image-only dataset (no perception, no data/point_cloud).
    """
    joints = list(joints or JOINT_NAMES)
    if not cloud_topic and not image_topic:
        raise ValueError("need a cloud topic, an image topic, or both")
    if image_shape is not None and (len(image_shape) != 2 or min(image_shape) < 1):
        raise ValueError(f"image_shape must be (H, W) >= 1. Got {image_shape}")
    preprocess, pcfg = perception_preprocessor(perception) if cloud_topic else (None, {})
    target = pcfg.get("target_frame", "")
    attrs = {
        "source": "dp_sim.bag_to_zarr",
        "bags": [str(b) for b in bags],
        "dt": dt,
        "joint_names": joints,
        "action_space": "joint_position",
        "perception_config": pcfg,
        "topics": {"cloud": cloud_topic, "state": state_topic, "action": action_topic, "image": image_topic},
    }
    if image_topic:
        attrs["image_shape"] = list(image_shape) if image_shape else None
        attrs["image_resize"] = "dp_policy.image_conversion.fit_image" if image_shape else "none"
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


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `bag_to_zarr`)."""
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
    ap.add_argument("--joints", nargs="*", default=list(JOINT_NAMES))
    ap.add_argument("--perception-config", default=str(DEFAULT_PERCEPTION_YAML))
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
        tf = _transform_from_args(args.camera_transform) if args.camera_transform else None
        summary = convert(
            bags,
            Path(args.out),
            perception_overrides(args.perception_config, args.perception),
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
