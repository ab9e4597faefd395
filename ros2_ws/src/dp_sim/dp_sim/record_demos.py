"""CLI: record scripted-expert demonstrations as rosbag2 (mcap), one bag per episode.

The bags carry what a lab records on a real Panda (topics and types as ``sim_node`` / control_node
publish them), stamped with sim time, so they exercise the real-robot path (bag -> ``bag_to_zarr``
-> training)::

    /camera/points               sensor_msgs/PointCloud2 (optical frame, x y z rgb)      1/dt
    /camera/image                sensor_msgs/Image rgb8 (with --images)                  1/dt
    /joint_states                sensor_msgs/JointState: panda_joint1..7 + panda_finger_joint1/2
                                 (measured positions and velocities)                      clock_hz
    /expert/joint_command        sensor_msgs/JointState: the 7 absolute arm joint targets 1/dt
    /gripper_controller/commands std_msgs/Float64MultiArray: one value, the per-finger opening
                                 command (m) -- what control_node sends the hand          1/dt
                                 (gripper tasks only)
    /tf_static                   tf2_msgs/TFMessage: world -> camera_optical_frame (nominal)
    /robot_description           std_msgs/String (URDF)
    /sim/episode_status          std_msgs/String (JSON: seed, task, success, cube poses)  1/dt
    /clock                       rosgraph_msgs/Clock                                      clock_hz

The arm command and the gripper command are separate topics, as a lab records them (teleop /
expert arm targets, and the command the gripper driver received); ``bag_to_zarr --gripper-joint
panda_finger_joint1 --gripper-command-topic /gripper_controller/commands`` joins them into the
8-column action (``python -m dp_sim.bag_to_zarr --task lift`` sets both).

The messages are built with the builders the nodes publish with and written straight to the bag
(no DDS in between). Recording the running graph instead (``sim_node expert_drive:=true``, whose
``expert/joint_command`` carries the gripper name, and ``dp_eval``'s ``bag_recorder``) is not
deterministic: best-effort camera QoS and a free-running sim may drop frames, sim_node publishes
no /tf_static and renders its first frame one camera period after the reset.

The episode loop is ``dp_sim.core.dataset.expert_rollout``, the one ``make_dataset`` runs: for the
same seed, task and perception settings the converted bags and ``make_dataset``'s zarr hold
identical arrays (tested in test_sim_bag_equivalence.py). Written with the one bag stack,
``dp_common.bags`` (the `rosbags` library; no rosbag2_py needed), and the message layer
``dp_common.msgs``. Examples::

    python -m dp_sim.record_demos --out demos/ --episodes 3 --seed-start 0
    python -m dp_sim.record_demos --task lift --out demos_lift/ --episodes 100
    python -m dp_sim.bag_to_zarr --task lift demos_lift/ --out data/sim_lift_bags.zarr
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from dp_common.bags import BagWriter, make_typestore
from dp_common.cli import parse_overrides
from dp_common.msgs import ns_to_stamp, s_to_ns
from dp_common.msgs.array import build_float64_array
from dp_common.msgs.cloud import build_cloud
from dp_common.msgs.image import build_image
from dp_common.msgs.joint_state import build_joint_state
from dp_common.msgs.transform import build_tf, build_transform
from dp_sim.core.dataset import EpisodeConfig, expert_rollout
from dp_sim.core.expert import ExpertConfig
from dp_sim.core.pick_expert import make_expert
from dp_sim.core.robot import FINGER_JOINTS, JOINT_NAMES, package_share_dir
from dp_sim.core.scene import SimConfig, SimScene
from dp_sim.make_dataset import DEFAULT_SIM_YAML, add_task_argument, build_sim_config

logger = logging.getLogger(__name__)

CAMERA_FRAME = "camera_optical_frame"
WORLD_FRAME = "world"
ACTION_TOPIC = "/expert/joint_command"
GRIPPER_COMMAND_TOPIC = "/gripper_controller/commands"
STATUS_TOPIC = "/sim/episode_status"
STATE_NAMES = list(JOINT_NAMES) + list(FINGER_JOINTS)
T0_S = 1.0  # bags start at 1 s sim time (a zero stamp reads as "unset" in ROS)


def record_episode(
    path: Path,
    scene: SimScene,
    expert,
    seed: int,
    ep_cfg: EpisodeConfig | None = None,
    images: bool = True,
    typestore=None,
) -> dict:
    """Run one expert episode (:func:`dp_sim.core.dataset.expert_rollout`) and write it as mcap at `path`.

    joint_states and /clock are written every ``ep_cfg.tick_s``; camera, commands and status every
    step (``ep_cfg.dt``). A gripper expert's 8th action column goes to /gripper_controller/commands.

    Args:
        expert: ``dp_sim.core.pick_expert.make_expert(task, ...)`` for the scene's task.
        typestore: rosbags typestore to reuse across episodes (default: ``dp_common.bags.make_typestore``).
    Returns:
        the final task state (JSON-friendly dict) plus `steps` (expert commands written).
    """
    ep_cfg = ep_cfg or EpisodeConfig()
    if path.exists():
        shutil.rmtree(path)
    steps = 0
    with BagWriter(path, storage="mcap", typestore=typestore) as w:
        types = w.types
        string = types["std_msgs/msg/String"]

        def write(topic: str, t_ns: int, msg) -> None:
            w.write(topic, t_ns, msg)

        def write_joints(sc: SimScene) -> int:
            t_ns = s_to_ns(T0_S + sc.time)
            write("/clock", t_ns, types["rosgraph_msgs/msg/Clock"](clock=ns_to_stamp(t_ns, types)))
            position = np.concatenate([sc.q, sc.finger_q])
            velocity = np.concatenate([sc.qd, sc.finger_qd])
            write(
                "/joint_states", t_ns, build_joint_state(t_ns, STATE_NAMES, position, velocity, types=types)
            )
            return t_ns

        urdf = scene.kin.urdf_path.read_text().replace(
            "package://", f"file://{package_share_dir(scene.kin.urdf_path)}/"
        )
        w.add_topic("/robot_description", "std_msgs/msg/String", latched=True)
        w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        t0_ns = s_to_ns(T0_S)
        write("/robot_description", t0_ns, string(data=urdf))
        camera = build_transform(t0_ns, WORLD_FRAME, CAMERA_FRAME, scene.camera_transform, types)
        write("/tf_static", t0_ns, build_tf([camera], types))
        for step in expert_rollout(scene, expert, seed, ep_cfg, rgb=True, on_tick=write_joints):
            t_ns = write_joints(scene)
            obs = step.obs
            xyz = np.asarray(obs["xyz"], dtype=np.float32).reshape(-1, 3)
            write("/camera/points", t_ns, build_cloud(t_ns, CAMERA_FRAME, xyz, obs["rgb"], types))
            if images:
                write("/camera/image", t_ns, build_image(t_ns, CAMERA_FRAME, obs["rgb_image"], types=types))
            # after the observation of the same instant: the command issued for this step
            write(ACTION_TOPIC, t_ns, build_joint_state(t_ns, JOINT_NAMES, step.action[:7], types=types))
            if len(step.action) == 8:
                write(GRIPPER_COMMAND_TOPIC, t_ns, build_float64_array(step.action[7:], types))
            steps += 1
            state = scene.task_state()
            state["expert_target"] = expert.target_index
            write(STATUS_TOPIC, t_ns, string(data=json.dumps(state)))
    state = scene.task_state()
    state["steps"] = steps
    state["expert_target"] = expert.target_index
    return state


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `record_demos`)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, help="directory; one bag directory per episode")
    add_task_argument(ap)
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--sim-config", default=str(DEFAULT_SIM_YAML))
    ap.add_argument("--set", nargs="*", default=[], help="SimConfig overrides key=value")
    ap.add_argument("--expert", nargs="*", default=[], help="ExpertConfig overrides key=value")
    ap.add_argument("--dt", type=float, default=0.1, help="expert command and camera period (s)")
    ap.add_argument(
        "--clock-hz",
        type=float,
        default=50.0,
        help="joint_states and /clock rate = physics tick (sim_node's); make_dataset steps at 50 Hz\n"
        "too: keep it for data identical to make_dataset's",
    )
    ap.add_argument(
        "--max-steps", type=int, default=None, help="steps before giving up (default: task timeout / dt)"
    )
    ap.add_argument("--hold-steps", type=int, default=3, help="steps recorded after the first success")
    ap.add_argument("--images", action="store_true", help="also record /camera/image (rgb8)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        overrides = parse_overrides(args.set)
        if args.task:
            overrides["task"] = args.task
        sim_cfg: SimConfig = build_sim_config(args.sim_config, overrides)
        expert_cfg = ExpertConfig(**parse_overrides(args.expert))
        max_steps = args.max_steps or int(round(sim_cfg.timeout_s / args.dt))
        if args.clock_hz <= 0:
            raise ValueError(f"--clock-hz: expected > 0. Got {args.clock_hz}")
        ep_cfg = EpisodeConfig(args.dt, max_steps, args.hold_steps, tick_s=1.0 / args.clock_hz)
        if args.episodes < 1:
            raise ValueError(f"--episodes: expected >= 1. Got {args.episodes}")
    except (ValueError, TypeError) as exc:
        print(f"record_demos: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = SimScene(sim_cfg)
    expert = make_expert(sim_cfg.task, expert_cfg, scene.kin)
    typestore = make_typestore()
    seeds = range(args.seed_start, args.seed_start + args.episodes)
    if not args.no_progress:
        from tqdm import tqdm

        seeds = tqdm(seeds, desc="bags", unit="ep")
    results = []
    try:
        for seed in seeds:
            res = record_episode(
                out / f"episode_{seed:06d}", scene, expert, seed, ep_cfg, args.images, typestore
            )
            results.append({"seed": seed, "success": res["success"], "steps": res["steps"]})
    finally:
        scene.close()
    print(json.dumps({"out": str(out), "task": sim_cfg.task, "episodes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
