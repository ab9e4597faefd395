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
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dp_sim.core.dataset import Episode, ZarrEpisodeWriter, perception_preprocessor
from dp_sim.core.robot import JOINT_NAMES
from dp_sim.make_dataset import DEFAULT_PERCEPTION_YAML, perception_overrides

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
) -> BagStreams:
    """Read the clouds, joint states, commands and static transforms of one bag."""
    from rosbags.highlevel import AnyReader

    from dp_perception.core.pointcloud import decode_cloud_message

    cloud_t, clouds, frame = [], [], ""
    st_t, st, ac_t, ac = [], [], [], []
    tfs: dict[tuple[str, str], np.ndarray] = {}
    with AnyReader([Path(path)]) as reader:
        wanted = {cloud_topic, state_topic, action_topic, "/tf_static"}
        conns = [c for c in reader.connections if c.topic in wanted]
        missing = {cloud_topic, state_topic, action_topic} - {c.topic for c in conns}
        if missing:
            raise ValueError(f"{path}: topics {sorted(missing)} not in the bag")
        for conn, _t, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == cloud_topic:
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
    )


def streams_to_episode(s: BagStreams, preprocess, transform: np.ndarray, dt: float, seed: int = 0) -> Episode:
    """Align the streams into one episode (see the module docstring)."""
    if len(s.state_t) == 0 or len(s.action_t) == 0 or not s.clouds:
        raise ValueError("bag has no clouds, joint states or commands for the requested joints")
    pcs, states, actions = [], [], []
    last_t = -np.inf
    for k, (t, (xyz, rgb)) in enumerate(zip(s.cloud_t, s.clouds, strict=True)):
        if t < last_t + dt - 1e-3:
            continue
        ia = int(np.searchsorted(s.action_t, t + dt / 2, side="right")) - 1
        if ia < 0:
            continue
        if t > s.action_t[-1] + dt / 2:
            break
        last_t = t
        q = np.array([np.interp(t, s.state_t, s.state[:, j]) for j in range(s.state.shape[1])])
        pcs.append(np.asarray(preprocess(xyz, rgb, transform, seed * 1000 + k), dtype=np.float32))
        states.append(q)
        actions.append(s.action[ia])
    if not pcs:
        raise ValueError("no cloud overlaps the commands")
    return Episode(
        seed=seed,
        success=True,
        target_index=-1,
        point_cloud=np.stack(pcs),
        state=np.asarray(states, dtype=np.float32),
        action=np.asarray(actions, dtype=np.float32),
        tcp_pos=np.full((len(pcs), 3), np.nan, dtype=np.float32),
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
) -> dict:
    """Convert bags (one episode each) into one DP3 zarr at `out`; returns a summary."""
    joints = list(joints or JOINT_NAMES)
    preprocess, pcfg = perception_preprocessor(perception)
    target = pcfg["target_frame"]
    writer = ZarrEpisodeWriter(
        out,
        {
            "source": "dp_sim.bag_to_zarr",
            "bags": [str(b) for b in bags],
            "dt": dt,
            "joint_names": joints,
            "action_space": "joint_position",
            "perception_config": pcfg,
            "topics": {"cloud": cloud_topic, "state": state_topic, "action": action_topic},
        },
    )
    iterator = bags
    if progress:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="bags", unit="bag")
    skipped = []
    try:
        for i, bag in enumerate(iterator):
            s = read_bag(bag, cloud_topic, state_topic, action_topic, joints)
            tf = camera_transform
            if tf is None:
                frame = s.cloud_frame.lstrip("/")
                tf = np.eye(4) if frame == target else s.transforms.get((target, frame))
            if tf is None:
                raise ValueError(
                    f"{bag}: no static transform {target} -> {s.cloud_frame} in /tf_static; "
                    "pass --camera-transform"
                )
            try:
                writer.add(streams_to_episode(s, preprocess, tf, dt, seed=i))
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
    ap.add_argument("--cloud-topic", default="/camera/points")
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
        )
    except (ValueError, ImportError) as exc:
        print(f"bag_to_zarr: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["episodes"] else 1


if __name__ == "__main__":
    sys.exit(main())
