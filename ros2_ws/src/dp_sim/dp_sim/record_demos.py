"""CLI: record scripted-expert demonstrations as rosbag2 (mcap), one bag per episode.

The bags carry the topics a real robot records, stamped with sim time, so they exercise the
real-robot path (bag -> `bag_to_zarr` -> training)::

    /camera/points          sensor_msgs/PointCloud2 (optical frame, x y z rgb)   camera_hz
    /camera/image           sensor_msgs/Image rgb8                                camera_hz
    /joint_states           sensor_msgs/JointState                                clock_hz
    /expert/joint_command   sensor_msgs/JointState: the expert's absolute joint targets, 1/dt
    /tf_static              tf2_msgs/TFMessage: world -> camera_optical_frame
    /robot_description      std_msgs/String (URDF)
    /sim/episode_status     std_msgs/String (JSON; seed, success, cube poses)
    /clock                  rosgraph_msgs/Clock                                   clock_hz

Written with the one bag stack, ``dp_common.bags`` (the `rosbags` library; no rosbag2_py needed),
and the message layer ``dp_common.msgs``. Example::

    python -m dp_sim.record_demos --out demos/ --episodes 3 --seed-start 0
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
from dp_common.msgs.cloud import build_cloud
from dp_common.msgs.image import build_image
from dp_common.msgs.joint_state import build_joint_state
from dp_common.msgs.transform import build_tf, build_transform
from dp_sim.core.expert import ExpertConfig, ReachExpert
from dp_sim.core.robot import JOINT_NAMES
from dp_sim.core.scene import SimConfig, SimScene
from dp_sim.make_dataset import DEFAULT_SIM_YAML, build_sim_config

logger = logging.getLogger(__name__)

CAMERA_FRAME = "camera_optical_frame"
WORLD_FRAME = "world"
ACTION_TOPIC = "/expert/joint_command"


def record_episode(
    path: Path,
    scene: SimScene,
    expert: ReachExpert,
    seed: int,
    dt: float = 0.1,
    clock_hz: float = 50.0,
    camera_hz: float = 10.0,
    max_steps: int = 100,
    hold_steps: int = 3,
    images: bool = True,
    typestore=None,
) -> dict:
    """Run one expert episode and write it as an mcap rosbag2 directory at `path`.

    Args:
        typestore: rosbags typestore to reuse across episodes (default: ``dp_common.bags.make_typestore``).
    Returns:
        the final task state (JSON-friendly dict) plus `steps` (expert commands written).
    """
    tick = 1.0 / clock_hz
    per_cam = max(1, int(round(clock_hz / camera_hz)))
    per_act = max(1, int(round(dt / tick)))
    scene.reset(seed)
    expert.reset(scene.q, scene.goal_points(), seed)
    if path.exists():
        shutil.rmtree(path)
    t0 = 1.0  # bags start at 1 s sim time (a zero stamp reads as "unset" in ROS)
    steps = 0
    with BagWriter(path, storage="mcap", typestore=typestore) as w:
        types = w.types
        string = types["std_msgs/msg/String"]

        def write(topic: str, t: float, msg) -> None:
            w.write(topic, s_to_ns(t), msg)

        from dp_sim.core.robot import package_share_dir

        urdf = scene.kin.urdf_path.read_text().replace(
            "package://", f"file://{package_share_dir(scene.kin.urdf_path)}/"
        )
        w.add_topic("/robot_description", "std_msgs/msg/String", latched=True)
        w.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        write("/robot_description", t0, string(data=urdf))
        camera = build_transform(s_to_ns(t0), WORLD_FRAME, CAMERA_FRAME, scene.camera_transform, types)
        write("/tf_static", t0, build_tf([camera], types))
        hold_left = None
        k = 0
        while True:
            t = t0 + scene.time
            if k % per_act == 0:
                if steps >= max_steps or (hold_left is not None and hold_left <= 0):
                    break
                q_target = expert.act(per_act * tick)
                scene.set_command(q_target)
                steps += 1
                if hold_left is not None:
                    hold_left -= 1
            t_ns = s_to_ns(t)
            write("/clock", t, types["rosgraph_msgs/msg/Clock"](clock=ns_to_stamp(t_ns, types)))
            write("/joint_states", t, build_joint_state(t_ns, JOINT_NAMES, scene.q, scene.qd, types=types))
            if k % per_cam == 0:
                obs = scene.render(rgb=True)
                xyz = np.asarray(obs["xyz"], dtype=np.float32).reshape(-1, 3)
                write("/camera/points", t, build_cloud(t_ns, CAMERA_FRAME, xyz, obs["rgb"], types))
                if images:
                    write("/camera/image", t, build_image(t_ns, CAMERA_FRAME, obs["rgb_image"], types=types))
            if k % per_act == 0:
                # after the observation of the same instant: the action recorded for this step
                write(ACTION_TOPIC, t, build_joint_state(t_ns, JOINT_NAMES, q_target, types=types))
            if k % per_act == 0:
                state = scene.task_state()
                state["expert_target"] = expert.target_index
                write("/sim/episode_status", t, string(data=json.dumps(state)))
            scene.step(tick)
            k += 1
            if hold_left is None and scene.success_time is not None:
                hold_left = hold_steps
    state = scene.task_state()
    state["steps"] = steps
    state["expert_target"] = expert.target_index
    return state


def main(argv: list[str] | None = None) -> int:
    """Entry point (console script `record_demos`)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, help="directory; one bag directory per episode")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--sim-config", default=str(DEFAULT_SIM_YAML))
    ap.add_argument("--set", nargs="*", default=[], help="SimConfig overrides key=value")
    ap.add_argument("--dt", type=float, default=0.1, help="expert command period (s)")
    ap.add_argument("--clock-hz", type=float, default=50.0)
    ap.add_argument("--camera-hz", type=float, default=10.0)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--hold-steps", type=int, default=3)
    ap.add_argument("--no-images", action="store_true", help="skip /camera/image")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        sim_cfg: SimConfig = build_sim_config(args.sim_config, parse_overrides(args.set))
    except (ValueError, TypeError) as exc:
        print(f"record_demos: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scene = SimScene(sim_cfg)
    expert = ReachExpert(ExpertConfig(), scene.kin)
    typestore = make_typestore()
    from tqdm import tqdm

    results = []
    for seed in tqdm(range(args.seed_start, args.seed_start + args.episodes), desc="bags", unit="ep"):
        res = record_episode(
            out / f"episode_{seed:06d}",
            scene,
            expert,
            seed,
            dt=args.dt,
            clock_hz=args.clock_hz,
            camera_hz=args.camera_hz,
            max_steps=args.max_steps,
            hold_steps=args.hold_steps,
            images=not args.no_images,
            typestore=typestore,
        )
        results.append({"seed": seed, "success": res["success"], "steps": res["steps"]})
    scene.close()
    print(json.dumps({"out": str(out), "episodes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
