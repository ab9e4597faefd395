"""CLI: rosbag2 demonstrations (sqlite3 or mcap) -> DP3 zarr, through the perception core.

One bag = one episode (record one bag per demonstration; ``dp_sim.record_demos`` does). Every bag
is read with the one bag stack, ``dp_common.bags`` (the `rosbags` library; no rosbag2_py needed)::

    steps   = clouds on --cloud-topic, thinned to at least --dt apart (time t_k = cloud stamp)
    point_cloud[k] = dp_perception.core.preprocess_cloud(cloud_k, transform target<-cloud at t_k)
    state[k]       = --state-topic (JointState) interpolated at t_k, columns = --joints
                     [+ --gripper-joint]; every joint from the messages that carry its name (an arm
                     and a gripper driver may publish joint_states separately)
    action[k]      = --action-from command (default): the newest --action-topic (JointState)
                     command stamped <= t_k + dt/2 (the target commanded right after observation
                     k), columns = --joints [+ the gripper: the newest --gripper-command-topic value
                     (Float64MultiArray, one value, bag time) at <= t_k + dt/2, held between
                     commands as the hand holds it; without that option the --action-topic
                     JointState carrying the --gripper-joint name]
                   = --action-from joint_states (kinesthetic teaching, no command topic):
                     state[k + K], K = --action-lag (default 1; DP / DP3's convention for such
                     data), every state column [the gripper's too, i.e. its future finger state;
                     with --gripper-command-topic the gripper column is the command as above].
                     The last K steps of every episode are dropped (they have no future state).

Steps before the first arm command (or after the last) and steps without an image are dropped;
every dropped step is logged and counted in the summary's "trimmed", every skipped episode in
"skipped". A step without an earlier gripper command is an error naming the bag, topic and time
(record the gripper command from the start). Gripper demonstrations, e.g. from
``dp_sim.record_demos --task lift``::

    python -m dp_eval.bag_to_zarr demos_lift/ --out data/lift.zarr --perception-config perception.yaml \\
        --gripper-joint panda_finger_joint1 --gripper-command-topic /gripper_controller/commands

Kinesthetic demonstrations (the arm moved by hand; only joint_states and the camera recorded)::

    python -m dp_eval.bag_to_zarr demos/ --out data/kin.zarr --action-from joint_states \\
        --gripper-joint panda_finger_joint1

Bad recordings are errors naming the bag, topic and time, before anything is converted: a
missing topic (the message lists the topics the bag has) or joint, stamps that go backwards on a
topic (per joint on a joint-state topic), a gap longer than --max-gap x --dt (default 3) in any
stream (a gripper command topic, which only carries changes, is not gap-checked), non-finite
joint positions. ``--report`` checks the bags instead of converting them (no --out needed; clouds
and images are not decoded): one line per episode with its length (s), steps, the rate of every
topic (Hz) and its problems or OK (dropped steps in brackets), then a summary; exit code 0 when
every episode is good, 2 otherwise::

    python -m dp_eval.bag_to_zarr demos/ --report --action-from joint_states

The seed of an episode (meta/episode_seeds, and the perception's sampling seed) is the ``seed`` in
the bag's --status-topic JSON when present (simulator bags), else the bag's index; its
``expert_target`` (the goal a bimodal expert chose) goes to meta/episode_target (else -1).

The target <- camera transform (target = the perception's target_frame) is looked up at each
cloud's stamp in the TF tree of the bag's /tf and /tf_static (dp_eval.core.tf_tree): chains of
any length (world -> base -> ... -> camera_depth_optical_frame), dynamic transforms interpolated
in time (linear translation, slerp rotation), static ones valid at any time. A cloud whose
transform cannot be resolved -- no path between the frames, or a dynamic transform with no sample
within --tf-tolerance (default 0.02 s) of the stamp -- is an error naming the bag, frames and
time. --camera-transform x y z qx qy qz qw overrides the bag's TF (a fixed camera). The crop box,
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
from pathlib import Path

import numpy as np

from dp_common.cli import add_image_shape_argument, config_params
from dp_common.msgs import s_to_ns
from dp_eval.bag_report import ACTION_FROM, check_action_args, cloud_transform, report
from dp_eval.bag_streams import read_bag
from dp_eval.core.alignment import MissingColumnError, streams_to_episode
from dp_eval.core.checks import streams_problems
from dp_eval.core.tf_tree import TfLookupError
from dp_policy.core.dataset import ZarrEpisodeWriter

logger = logging.getLogger(__name__)

DEFAULT_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
STATUS_TOPIC = "/sim/episode_status"


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
    action_from: str = "command",
    action_lag: int = 1,
    max_gap: float = 3.0,
    tf_tolerance: float = 0.02,
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

    ``action_from="joint_states"``: no command topic; action[k] = the state ``action_lag`` steps
    later, and the last ``action_lag`` steps of every episode are dropped. ``max_gap``: the longest
    allowed gap in any stream, in steps of ``dt``. ``tf_tolerance`` (s): how far beyond its samples
    a dynamic transform (/tf) may be used. Steps that are dropped are logged and listed in the
    summary's ``trimmed``; skipped episodes in ``skipped``.

    Raises:
        ValueError: bad arguments, a missing topic or joint, a step without a gripper command, a bad
            recording (stamps out of order, a gap, non-finite joints) or a cloud whose transform
            cannot be resolved at its stamp.
    """
    check_action_args(action_from, action_lag, max_gap, tf_tolerance)
    commands = action_from == "command"
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
        "action_from": action_from if commands else f"joint_states (lag {action_lag} steps)",
        "perception_config": pcfg,
        "topics": {
            "cloud": cloud_topic,
            "state": state_topic,
            "action": action_topic if commands else "",
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
    skipped, trimmed = [], {}
    try:
        for i, bag in enumerate(iterator):
            s = read_bag(bag, cloud_topic, state_topic, action_topic if commands else "", joints, image_topic,
                         image_shape, gripper_joint, gripper_command_topic, status_topic,
                         tf_tolerance_ns=s_to_ns(tf_tolerance))  # fmt: skip
            problems = streams_problems(s, dt, max_gap, str(bag))
            if problems:
                raise ValueError("bad recording (see --report):\n  " + "\n  ".join(problems))
            seed = i if s.seed is None else s.seed
            notes: list[str] = []
            try:
                tf = cloud_transform(s, target, camera_transform) if cloud_topic else None
                ep = streams_to_episode(s, preprocess, tf, dt, seed, bool(image_topic), str(bag),
                                        0 if commands else action_lag, notes)  # fmt: skip
            except (MissingColumnError, TfLookupError):
                raise
            except ValueError as exc:
                logger.warning("skipping %s: %s", bag, exc)
                skipped.append(str(bag))
                continue
            writer.add(ep)
            for note in notes:
                logger.info("%s: %s", bag, note)
            if notes:
                trimmed[str(bag)] = notes
    finally:
        writer.close()
    n = len(writer.episode_ends)
    return {"episodes": n, "steps": writer.total, "skipped": skipped, "trimmed": trimmed}


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
    ap.add_argument("--out", default="", help="output zarr directory (overwritten); needed unless --report")
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
    ap.add_argument(
        "--camera-transform",
        nargs=7,
        type=float,
        default=None,
        metavar=("X", "Y", "Z", "QX", "QY", "QZ", "QW"),
        help="fixed target_frame <- cloud frame transform (overrides the bag's /tf and /tf_static)",
    )
    ap.add_argument(
        "--action-from",
        choices=ACTION_FROM,
        default="command",
        help="command: --action-topic commands; joint_states: the state --action-lag steps later\n"
        "(kinesthetic teaching: no command topic; the last --action-lag steps are dropped)",
    )
    ap.add_argument("--action-lag", type=int, default=1, help="steps (K) for --action-from joint_states")
    ap.add_argument(
        "--max-gap", type=float, default=3.0, help="longest allowed gap in any stream, in steps of --dt"
    )
    ap.add_argument(
        "--tf-tolerance",
        type=float,
        default=0.02,
        help="s a dynamic /tf transform may be used beyond its first / last sample",
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="check the bags instead of converting: one line per episode + a summary;\n"
        "exit code 0 if all are good, 2 if any has a problem (--out is not needed)",
    )
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
        if args.report:
            target = PerceptionConfig(**perception).target_frame
            return report(bags, args.dt, args.cloud_topic, args.state_topic, args.action_topic, args.joints,
                          args.image_topic, args.gripper_joint, args.gripper_command_topic, target, tf,
                          args.action_from, args.action_lag, args.max_gap, args.tf_tolerance)  # fmt: skip
        if not args.out:
            raise ValueError("--out is required (the output zarr) unless --report")
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
            action_from=args.action_from,
            action_lag=args.action_lag,
            max_gap=args.max_gap,
            tf_tolerance=args.tf_tolerance,
        )
    except (ValueError, ImportError) as exc:
        print(f"bag_to_zarr: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["episodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
