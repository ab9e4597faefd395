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

Written with the `rosbags` library (no rosbag2_py needed). Example::

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

from dp_common.core.pointcloud import encode_xyz
from dp_sim.core.expert import ExpertConfig, ReachExpert
from dp_sim.core.robot import JOINT_NAMES
from dp_sim.core.scene import SimConfig, SimScene
from dp_sim.make_dataset import DEFAULT_SIM_YAML, build_sim_config, parse_overrides

logger = logging.getLogger(__name__)

CAMERA_FRAME = "camera_optical_frame"
WORLD_FRAME = "world"
ACTION_TOPIC = "/expert/joint_command"


class _BagTypes:
    """Message constructors and serialization from the rosbags typestore."""

    def __init__(self) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.store = get_typestore(Stores.ROS2_HUMBLE)
        t = self.store.types
        self.Time = t["builtin_interfaces/msg/Time"]
        self.Header = t["std_msgs/msg/Header"]
        self.String = t["std_msgs/msg/String"]
        self.PointField = t["sensor_msgs/msg/PointField"]
        self.PointCloud2 = t["sensor_msgs/msg/PointCloud2"]
        self.Image = t["sensor_msgs/msg/Image"]
        self.JointState = t["sensor_msgs/msg/JointState"]
        self.Clock = t["rosgraph_msgs/msg/Clock"]
        self.TFMessage = t["tf2_msgs/msg/TFMessage"]
        self.TransformStamped = t["geometry_msgs/msg/TransformStamped"]
        self.Transform = t["geometry_msgs/msg/Transform"]
        self.Vector3 = t["geometry_msgs/msg/Vector3"]
        self.Quaternion = t["geometry_msgs/msg/Quaternion"]

    def stamp(self, t: float):
        ns = int(round(t * 1e9))
        return self.Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def header(self, t: float, frame: str):
        return self.Header(stamp=self.stamp(t), frame_id=frame)

    def cloud(self, t: float, xyz: np.ndarray, rgb: np.ndarray | None):
        raw = encode_xyz(np.asarray(xyz, dtype=np.float32).reshape(-1, 3), rgb)
        pf = [self.PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in raw.fields]
        return self.PointCloud2(
            header=self.header(t, CAMERA_FRAME),
            height=raw.height,
            width=raw.width,
            fields=pf,
            is_bigendian=raw.is_bigendian,
            point_step=raw.point_step,
            row_step=raw.row_step,
            data=np.frombuffer(raw.data, dtype=np.uint8),
            is_dense=True,
        )

    def image(self, t: float, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        return self.Image(
            header=self.header(t, CAMERA_FRAME),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
        )

    def joint_state(self, t: float, q: np.ndarray, qd: np.ndarray | None = None):
        return self.JointState(
            header=self.header(t, ""),
            name=list(JOINT_NAMES),
            position=np.asarray(q, dtype=np.float64),
            velocity=np.asarray(qd if qd is not None else [], dtype=np.float64),
            effort=np.zeros(0, dtype=np.float64),
        )

    def tf_static(self, t: float, transform: np.ndarray):
        from scipy.spatial.transform import Rotation

        x, y, z, w = Rotation.from_matrix(transform[:3, :3]).as_quat()
        tr = self.TransformStamped(
            header=self.header(t, WORLD_FRAME),
            child_frame_id=CAMERA_FRAME,
            transform=self.Transform(
                translation=self.Vector3(*map(float, transform[:3, 3])),
                rotation=self.Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)),
            ),
        )
        return self.TFMessage(transforms=[tr])


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
    types: _BagTypes | None = None,
) -> dict:
    """Run one expert episode and write it as an mcap rosbag2 directory at `path`.

    Returns:
        the final task state (JSON-friendly dict) plus `steps` (expert commands written).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    types = types or _BagTypes()
    ser = types.store.serialize_cdr
    tick = 1.0 / clock_hz
    per_cam = max(1, int(round(clock_hz / camera_hz)))
    per_act = max(1, int(round(dt / tick)))
    scene.reset(seed)
    expert.reset(scene.q, scene.goal_points(), seed)
    if path.exists():
        shutil.rmtree(path)
    t0 = 1.0  # bags start at 1 s sim time (a zero stamp reads as "unset" in ROS)
    steps = 0
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}

        def conn(topic: str, msgtype: str):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=types.store)
            return conns[topic]

        def write(topic: str, msgtype: str, t: float, msg) -> None:
            w.write(conn(topic, msgtype), int(round(t * 1e9)), ser(msg, msgtype))

        from dp_sim.core.robot import package_share_dir

        urdf = scene.kin.urdf_path.read_text().replace(
            "package://", f"file://{package_share_dir(scene.kin.urdf_path)}/"
        )
        write("/robot_description", "std_msgs/msg/String", t0, types.String(data=urdf))
        write("/tf_static", "tf2_msgs/msg/TFMessage", t0, types.tf_static(t0, scene.camera_transform))
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
            write("/clock", "rosgraph_msgs/msg/Clock", t, types.Clock(clock=types.stamp(t)))
            write("/joint_states", "sensor_msgs/msg/JointState", t, types.joint_state(t, scene.q, scene.qd))
            if k % per_cam == 0:
                obs = scene.render(rgb=True)
                write(
                    "/camera/points", "sensor_msgs/msg/PointCloud2", t, types.cloud(t, obs["xyz"], obs["rgb"])
                )
                if images:
                    write("/camera/image", "sensor_msgs/msg/Image", t, types.image(t, obs["rgb_image"]))
            if k % per_act == 0:
                # after the observation of the same instant: the action recorded for this step
                write(ACTION_TOPIC, "sensor_msgs/msg/JointState", t, types.joint_state(t, q_target))
            if k % per_act == 0:
                state = scene.task_state()
                state["expert_target"] = expert.target_index
                write("/sim/episode_status", "std_msgs/msg/String", t, types.String(data=json.dumps(state)))
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
    types = _BagTypes()
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
            types=types,
        )
        results.append({"seed": seed, "success": res["success"], "steps": res["steps"]})
    scene.close()
    print(json.dumps({"out": str(out), "episodes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
