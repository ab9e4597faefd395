"""CLI: rosbag2 demonstrations (sqlite3 or mcap) -> DP3 zarr, through the perception core.

One bag = one episode (record one bag per demonstration; ``dp_sim.record_demos`` does). Every bag
is read with the one bag stack, ``dp_common.bags`` (the `rosbags` library; no rosbag2_py needed)::

    steps   = clouds on --cloud-topic, thinned to at least --dt apart (time t_k = cloud stamp)
    point_cloud[k] = dp_perception.core.preprocess_cloud(cloud_k, transform world<-camera)
    state[k]       = --state-topic (JointState) interpolated at t_k, columns = --joints
                     [+ --gripper-joint]; every joint from the messages that carry its name (an arm
                     and a gripper driver may publish joint_states separately)
    action[k]      = the newest --action-topic (JointState) command stamped <= t_k + dt/2
                     (the target commanded right after observation k), columns = --joints
                     [+ the gripper: the newest --gripper-command-topic value (Float64MultiArray,
                     one value, bag time) at <= t_k + dt/2, held between commands as the hand
                     holds it; without that option the --action-topic JointState carrying the
                     --gripper-joint name]

Steps before the first arm command are dropped; a step without an earlier gripper command is an
error naming the bag, topic and time (record the gripper command from the start). Gripper
demonstrations, e.g. from ``dp_sim.record_demos --task lift``::

    python -m dp_eval.bag_to_zarr demos_lift/ --out data/lift.zarr --perception-config perception.yaml \\
        --gripper-joint panda_finger_joint1 --gripper-command-topic /gripper_controller/commands

The seed of an episode (meta/episode_seeds, and the perception's sampling seed) is the ``seed`` in
the bag's --status-topic JSON when present (simulator bags), else the bag's index; its
``expert_target`` (the goal a bimodal expert chose) goes to meta/episode_target (else -1).

The world <- camera transform comes from /tf_static in the bag (a single static transform from
--target-frame to the cloud's frame), or from --camera-transform x y z qx qy qz qw. The crop box,
voxel size and ``num_points`` come from --perception-config (a perception_node parameter file;
default: PerceptionConfig's defaults, as in dp_perception's config/perception.yaml) and
--perception key=value. Example::

    python -m dp_eval.bag_to_zarr demos/episode_* --out data/from_bags.zarr \\
        --perception-config my_perception.yaml

``python -m dp_sim.bag_to_zarr [--task lift]`` is the same command with the simulator's defaults
for bags from ``dp_sim.record_demos`` (the task's perception file and, for gripper tasks, the two
gripper options).

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
STATUS_TOPIC = "/sim/episode_status"


@dataclass
class Series:
    """A time series of one value per stamp (sorted by time; seconds from message stamps)."""

    t: np.ndarray  # (S,)
    v: np.ndarray  # (S,) or (S, J)

    @staticmethod
    def of(times: list[float], values: list) -> Series:
        """Sort (stable) the collected samples by time."""
        order = np.argsort(np.asarray(times, dtype=float), kind="stable")
        return Series(np.asarray(times, dtype=float)[order], np.asarray(values, dtype=float)[order])

    def newest_at(self, t: float) -> int:
        """Index of the newest sample stamped <= t (-1 if none)."""
        return int(np.searchsorted(self.t, t, side="right")) - 1


@dataclass
class BagStreams:
    """Time series read from one bag (times in seconds from message header stamps / bag time)."""

    cloud_t: list[float]
    clouds: list[tuple[np.ndarray, np.ndarray | None]]  # xyz (N,3) f32, rgb (N,3) f32 | None
    cloud_frame: str
    state: dict[str, Series]  # joint name -> measured positions (merged across publishers)
    action: Series  # (A, J) arm commands, columns = joints
    transforms: dict[tuple[str, str], np.ndarray]  # (parent, child) -> (4, 4) parent<-child
    image_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (I,) sorted
    images: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8 RGB, same order
    gripper: Series | None = None  # (G,) gripper commands (m), when a gripper column is asked for
    gripper_source: str = ""  # where the gripper commands came from (for error messages)
    seed: int | None = None  # the episode's seed from the status topic (simulator bags)
    target: int = -1  # the expert's goal index from the status topic (bimodal tasks), else -1


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
    gripper_joint: str = "",
    gripper_command_topic: str = "",
    status_topic: str = "",
) -> BagStreams:
    """Read the clouds, images, joint states, commands and static transforms of one bag.

    ``cloud_topic`` / ``image_topic`` may be "" (not read). Images are converted to RGB and, with
    ``image_shape`` (h, w), fitted to it (see the module docstring). Joint states are merged by name
    across every message on ``state_topic`` (an arm and a gripper driver may publish separately).
    With ``gripper_joint``, gripper commands are read from ``gripper_command_topic``
    (std_msgs/Float64MultiArray, one value, bag time) or, without it, from ``action_topic``
    messages that carry ``gripper_joint``.

    Raises:
        ValueError: a requested topic is not in the bag, or a state / gripper joint never appears.
    """
    from dp_common.bags import BagReader
    from dp_common.msgs.array import read_float64_array
    from dp_common.msgs.cloud import read_cloud
    from dp_common.msgs.image import read_image
    from dp_common.msgs.joint_state import read_joint_state
    from dp_common.msgs.transform import read_tf
    from dp_policy.core.resize import fit_image

    cloud_t, clouds, frame = [], [], ""
    img_t, imgs = [], []
    ac_t, ac, gr_t, gr = [], [], [], []
    state_joints = list(joints) + ([gripper_joint] if gripper_joint else [])
    st: dict[str, tuple[list, list]] = {j: ([], []) for j in state_joints}
    tfs: dict[tuple[str, str], np.ndarray] = {}
    seed, target = None, -1
    with BagReader(Path(path)) as reader:
        topics = {
            t for t in (cloud_topic, image_topic, state_topic, action_topic, gripper_command_topic) if t
        }
        missing = topics - set(reader.topics)
        if missing:
            raise ValueError(f"{path}: topics {sorted(missing)} not in the bag")
        extra = {t for t in ("/tf_static", status_topic) if t and t in reader.topics}
        for m in reader.messages(topics | extra):
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
            elif m.topic == gripper_command_topic:
                data = read_float64_array(msg)
                if data.shape != (1,) or not np.isfinite(data[0]):
                    raise ValueError(
                        f"{path}: {gripper_command_topic} at bag time {ns_to_s(m.timestamp_ns):.3f} s: "
                        f"expected one finite gripper opening (m). Got {data.tolist()}"
                    )
                gr_t.append(ns_to_s(m.timestamp_ns))  # Float64MultiArray has no header: bag time
                gr.append(float(data[0]))
            elif m.topic == status_topic:
                if seed is None:
                    try:
                        status = json.loads(msg.data)
                        seed = int(status["seed"])
                        target = int(status.get("expert_target", -1))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        seed, target = None, -1
            elif m.topic in (state_topic, action_topic):
                js = read_joint_state(msg)
                t = ns_to_s(js.stamp_ns)
                if m.topic == state_topic:
                    for name, value in zip(js.names, js.position, strict=False):  # position may be empty
                        if name in st:
                            st[name][0].append(t)
                            st[name][1].append(value)
                if m.topic == action_topic:
                    cols = _joint_columns(list(js.names), joints)
                    if cols is not None:
                        ac_t.append(t)
                        ac.append(js.position[cols])
                    if gripper_joint and not gripper_command_topic and gripper_joint in js.names:
                        gr_t.append(t)
                        gr.append(float(js.position[list(js.names).index(gripper_joint)]))
            else:
                for tf in read_tf(msg):
                    tfs[(tf.frame_id.lstrip("/"), tf.child_frame_id.lstrip("/"))] = tf.matrix
    absent = [j for j in state_joints if not st[j][0]]
    if absent:
        raise ValueError(f"{path}: joints {absent} are in no {state_topic} message (JointState names)")
    iorder = np.argsort(img_t, kind="stable")
    gripper = None
    source = ""
    if gripper_joint:
        source = gripper_command_topic or f"{action_topic} (JointState name {gripper_joint})"
        if not gr_t:
            raise ValueError(f"{path}: gripper column {gripper_joint}: no gripper command on {source}")
        gripper = Series.of(gr_t, gr)
    return BagStreams(
        cloud_t,
        clouds,
        frame,
        {j: Series.of(*st[j]) for j in state_joints},
        Series(np.zeros(0), np.zeros((0, len(joints)))) if not ac_t else Series.of(ac_t, ac),
        tfs,
        np.asarray(img_t, dtype=float)[iorder],
        [imgs[i] for i in iorder],
        gripper,
        source,
        seed,
        target,
    )


def _nearest(times: np.ndarray, t: float) -> int:
    """Index of the stamp in sorted ``times`` nearest to ``t``."""
    i = int(np.searchsorted(times, t))
    if i == len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
        return i - 1
    return i


class MissingColumnError(ValueError):
    """A requested column (the gripper) has no value at a step: a conversion error, not a bag to skip."""


def streams_to_episode(
    s: BagStreams,
    preprocess,
    transform: np.ndarray | None,
    dt: float,
    seed: int = 0,
    use_images: bool = False,
    bag: str = "",
) -> Episode:
    """Align the streams into one episode (see the module docstring).

    Steps are the clouds, or the images when the bag was read without a cloud topic. With
    ``use_images`` every step gets the nearest image (within dt/2; steps without one are dropped).
    Image-only episodes have ``point_cloud = None``.

    Raises:
        MissingColumnError: a gripper column is asked for and no gripper command precedes a step.
        ValueError: nothing usable in the bag.
    """
    use_clouds = bool(s.clouds)
    use_images = use_images or not use_clouds
    if len(s.action.t) == 0 or (not use_clouds and not s.images):
        raise ValueError("bag has no clouds / images or commands for the requested joints")
    if use_images and not s.images:
        raise ValueError("bag has no images on the image topic")
    steps_t = s.cloud_t if use_clouds else list(s.image_t)
    pcs, imgs, states, actions = [], [], [], []
    last_t = -np.inf
    for k, t in enumerate(steps_t):
        if t < last_t + dt - 1e-3:
            continue
        ia = s.action.newest_at(t + dt / 2)
        if ia < 0:
            continue
        if t > s.action.t[-1] + dt / 2:
            break
        ii = -1
        if use_images:
            ii = _nearest(s.image_t, t)
            if abs(s.image_t[ii] - t) > dt / 2:
                continue
        action = s.action.v[ia]
        if s.gripper is not None:
            ig = s.gripper.newest_at(t + dt / 2)
            if ig < 0:
                raise MissingColumnError(
                    f"{bag}: step {len(states)} at t = {t:.3f} s: no gripper command on {s.gripper_source} "
                    f"at or before {t + dt / 2:.3f} s (first one at {s.gripper.t[0]:.3f} s); record the "
                    "gripper's command from the start of the demonstration"
                )
            action = np.append(action, s.gripper.v[ig])
        last_t = t
        q = np.array([np.interp(t, series.t, series.v) for series in s.state.values()])
        if use_clouds:
            xyz, rgb = s.clouds[k]
            pcs.append(np.asarray(preprocess(xyz, rgb, transform, seed * 1000 + k), dtype=np.float32))
        if use_images:
            imgs.append(s.images[ii])
        states.append(q)
        actions.append(action)
    if not states:
        raise ValueError("no cloud / image overlaps the commands")
    if imgs and len({im.shape for im in imgs}) > 1:
        raise ValueError("images change size within the bag; pass --image-shape H W")
    return Episode(
        seed=seed,
        success=True,
        target_index=s.target,
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
    gripper_joint: str = "",
    gripper_command_topic: str = "",
    status_topic: str = STATUS_TOPIC,
) -> dict:
    """Convert bags (one episode each) into one zarr at `out`; returns a summary.

    ``perception`` are PerceptionConfig fields (the rest keep their defaults). ``image_topic`` adds
    ``data/img`` (fitted to ``image_shape`` (h, w) when given); ``cloud_topic=""`` makes an
    image-only dataset (no perception, no data/point_cloud). ``gripper_joint`` appends the gripper
    column to state (from joint_states) and action (from ``gripper_command_topic``, else from the
    action topic's JointState). An episode's seed (meta/episode_seeds, and the seed of the
    perception's sampling) is the ``seed`` of the first JSON message on ``status_topic`` when the bag
    has one (simulator bags), else the bag's index; its ``expert_target`` (which goal the expert
    chose) goes to meta/episode_target (-1 when absent).

    Raises:
        ValueError: bad arguments, a missing topic or joint, a step without a gripper command.
    """
    joints = list(joints or DEFAULT_JOINTS)
    if gripper_joint in joints:
        raise ValueError(f"gripper joint {gripper_joint!r} is also in joints {joints}; give it once")
    if gripper_command_topic and not gripper_joint:
        raise ValueError("--gripper-command-topic needs --gripper-joint (the column's name)")
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
        "joint_names": joints + ([gripper_joint] if gripper_joint else []),
        "action_space": "joint_position",
        "perception_config": pcfg,
        "topics": {
            "cloud": cloud_topic,
            "state": state_topic,
            "action": action_topic,
            "image": image_topic,
            "gripper_command": gripper_command_topic,
            "status": status_topic,
        },  # fmt: skip
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
            s = read_bag(bag, cloud_topic, state_topic, action_topic, joints, image_topic, image_shape,
                         gripper_joint, gripper_command_topic, status_topic)  # fmt: skip
            tf = camera_transform
            if tf is None and cloud_topic:
                frame = s.cloud_frame.lstrip("/")
                tf = np.eye(4) if frame == target else s.transforms.get((target, frame))
            if tf is None and cloud_topic:
                raise ValueError(
                    f"{bag}: no static transform {target} -> {s.cloud_frame} in /tf_static; "
                    "pass --camera-transform"
                )
            seed = i if s.seed is None else s.seed
            try:
                writer.add(streams_to_episode(s, preprocess, tf, dt, seed, bool(image_topic), str(bag)))
            except MissingColumnError:
                raise
            except ValueError as exc:
                logger.warning("skipping %s: %s", bag, exc)
                skipped.append(str(bag))
    finally:
        writer.close()
    return {"episodes": len(writer.episode_ends), "steps": writer.total, "skipped": skipped}


def main(
    argv: list[str] | None = None,
    perception_config: str = "",
    perception_defaults: dict | None = None,
    defaults: dict | None = None,
    epilog: str = "",
) -> int:
    """Entry point (console script `bag_to_zarr`; ``python -m dp_sim.bag_to_zarr`` calls it too).

    Args:
        perception_config: default of --perception-config ("" = PerceptionConfig's defaults).
        perception_defaults: PerceptionConfig fields applied under the file and --perception.
        defaults: other option defaults by argparse dest (e.g. gripper_joint), for aliases.
        epilog: extra --help text (an alias's own options).
    """
    from dp_common.core.transforms import pose7_to_matrix

    ap = argparse.ArgumentParser(
        description=__doc__, epilog=epilog or None, formatter_class=argparse.RawTextHelpFormatter
    )
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
    ap.add_argument("--joints", nargs="*", default=list(DEFAULT_JOINTS), help="arm joint columns, in order")
    ap.add_argument(
        "--gripper-joint",
        default="",
        help="append a gripper column named so (e.g. panda_finger_joint1): state from --state-topic\n"
        "(JointState, merged by name), action from --gripper-command-topic, else from the\n"
        "--action-topic JointState carrying this name",
    )
    ap.add_argument(
        "--gripper-command-topic",
        default="",
        help="std_msgs/Float64MultiArray gripper commands, one value (e.g. /gripper_controller/commands;\n"
        "bag time; the newest command at each step is held)",
    )
    ap.add_argument(
        "--status-topic",
        default=STATUS_TOPIC,
        help="std_msgs/String JSON with the episode's 'seed' (simulator bags; ignored when absent)",
    )
    ap.add_argument(
        "--perception-config",
        default=perception_config,
        help="perception_node params yaml with the PerceptionConfig fields"
        + (f" (default: {perception_config})" if perception_config else " (default: PerceptionConfig's)"),
    )
    ap.add_argument("--perception", nargs="*", default=[], help="PerceptionConfig key=value")
    ap.add_argument("--camera-transform", nargs=7, type=float, default=None)
    ap.set_defaults(**(defaults or {}))
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
            gripper_joint=args.gripper_joint,
            gripper_command_topic=args.gripper_command_topic,
            status_topic=args.status_topic,
        )
    except (ValueError, ImportError) as exc:
        print(f"bag_to_zarr: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["episodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
