"""What an evaluation needs from a recorded bag, split into episodes (ROS-free).

Everything except the clouds is loaded in one pass (joint states, recorded actions, episode
status, static transforms); clouds are listed by stamp only (read from the CDR header without
decoding) and decoded later, one at a time, while the policy runs.

Episodes: a bag may hold several. A new episode starts where the episode topic (the simulator's
``sim/episode_status``, JSON with a ``seed``) changes its key, where sensor time jumps back, or
where clouds pause longer than ``episode_gap_s``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np

from dp_eval.core.bagio import BagReader, header_stamp_ns
from dp_eval.core.messages import ns_to_s, stamp_s

logger = logging.getLogger(__name__)


@dataclass
class JointTrack:
    """Joint positions merged by name: per joint, sorted times (s) and positions."""

    t: dict[str, list[float]] = field(default_factory=dict)
    q: dict[str, list[float]] = field(default_factory=dict)

    def add(self, t_s: float, names, positions) -> None:
        """Adds one (possibly partial) sample."""
        for name, p in zip(names, positions, strict=False):
            self.t.setdefault(name, []).append(t_s)
            self.q.setdefault(name, []).append(float(p))

    def arrays(self, names) -> tuple[np.ndarray, np.ndarray]:
        """(T,) times and (T, len(names)) positions on the union of the joints' sample times.

        Each joint is linearly interpolated (held at the ends) onto the union of sample times.

        Raises:
            KeyError: naming the joints that never appear.
        """
        missing = [n for n in names if n not in self.t]
        if missing:
            raise KeyError(f"joints {missing} never appear; recorded joints: {sorted(self.t)}")
        ts = np.unique(np.concatenate([np.asarray(self.t[n]) for n in names]))
        out = np.empty((ts.size, len(names)))
        for j, n in enumerate(names):
            tj = np.asarray(self.t[n])
            qj = np.asarray(self.q[n])
            order = np.argsort(tj, kind="stable")
            out[:, j] = np.interp(ts, tj[order], qj[order])
        return ts, out

    def samples(self) -> list[tuple[float, list[str], list[float]]]:
        """All samples as (t_s, [name], [position]) sorted by time (for a JointStateBuffer)."""
        items = []
        for n, ts in self.t.items():
            for t, q in zip(ts, self.q[n], strict=True):
                items.append((t, n, q))
        items.sort(key=lambda x: x[0])
        return [(t, [n], [q]) for t, n, q in items]


@dataclass
class EpisodeSpan:
    """One episode: index, name, sensor-time bounds [t0, t1] (s), cloud indices [i0, i1]."""

    index: int
    name: str
    t0: float
    t1: float
    i0: int
    i1: int


@dataclass
class BagData:
    """Streams of one bag used by the evaluation (sensor stamps in s)."""

    cloud_topic: str
    cloud_stamps: np.ndarray
    cloud_frame: str
    joints: JointTrack
    actions: JointTrack
    action_topic: str
    transforms: dict[tuple[str, str], np.ndarray]
    episodes: list[EpisodeSpan]
    duration_s: float

    def episode_of_cloud(self, i: int) -> int:
        """Index of the episode containing cloud number i (in bag order)."""
        for ep in self.episodes:
            if ep.i0 <= i <= ep.i1:
                return ep.index
        raise IndexError(f"cloud {i} outside every episode")


def _quat_matrix(t, q) -> np.ndarray:
    x, y, z, w = q
    n = np.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / n, y / n, z / n, w / n
    m = np.eye(4)
    m[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    m[:3, 3] = t
    return m


def msg_time(reader_msg, msg) -> float:
    """Header stamp when set, else the bag time."""
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return stamp_s(header)
    return ns_to_s(reader_msg.timestamp_ns)


def load_bag(
    path,
    cloud_topic: str = "camera/points",
    joint_topic: str = "joint_states",
    action_topic: str = "expert/joint_command",
    action_joint_names=(),
    episode_topic: str = "sim/episode_status",
    episode_key: str = "seed",
    episode_gap_s: float = 1.0,
    typestore=None,
) -> BagData:
    """Reads everything but the cloud contents from a bag and splits it into episodes.

    Args:
        path: rosbag2 directory (sqlite3 or mcap).
        cloud_topic, joint_topic, action_topic: topic names (a leading '/' is optional).
        action_joint_names: column names of a Float64MultiArray action topic.
        episode_topic: std_msgs/String JSON topic whose `episode_key` changing starts an episode.
        episode_gap_s: a pause between clouds longer than this starts an episode.

    Raises:
        ValueError: when the cloud or action topic is missing or empty.
    """
    joints, actions = JointTrack(), JointTrack()
    stamps: list[float] = []
    cloud_frame = ""
    transforms: dict[tuple[str, str], np.ndarray] = {}
    status: list[tuple[float, object]] = []
    with BagReader(path, typestore=typestore) as reader:
        topics = reader.topics
        names = {t.lstrip("/"): t for t in topics}

        def resolve(topic):
            return names.get(topic.lstrip("/"))

        cloud_t, joint_t, action_t = resolve(cloud_topic), resolve(joint_topic), resolve(action_topic)
        episode_t = resolve(episode_topic) if episode_topic else None
        if cloud_t is None:
            raise ValueError(f"bag {path} has no cloud topic {cloud_topic!r}; topics: {sorted(topics)}")
        if action_t is None:
            raise ValueError(
                f"bag {path} has no action topic {action_topic!r} (recorded expert commands); "
                f"topics: {sorted(topics)}"
            )
        tf_topics = [t for t in topics if t.lstrip("/") in ("tf_static", "tf")]
        wanted = [t for t in (joint_t, action_t, episode_t) if t] + tf_topics
        for m in reader.messages(wanted):
            msg = reader.deserialize(m)
            if m.topic == joint_t:
                joints.add(msg_time(m, msg), msg.name, msg.position)
            elif m.topic == action_t:
                t = msg_time(m, msg)
                if m.msgtype == "sensor_msgs/msg/JointState":
                    actions.add(t, msg.name, msg.position)
                elif m.msgtype == "std_msgs/msg/Float64MultiArray":
                    if len(action_joint_names) != len(msg.data):
                        raise ValueError(
                            f"{action_topic} carries {len(msg.data)} values; pass action_joint_names "
                            f"with as many names. Got {list(action_joint_names)}"
                        )
                    actions.add(t, action_joint_names, msg.data)
                elif m.msgtype == "trajectory_msgs/msg/JointTrajectory" and msg.points:
                    actions.add(t, msg.joint_names, msg.points[0].positions)
                else:
                    raise ValueError(f"unsupported action topic type {m.msgtype}")
            elif m.topic == episode_t:
                try:
                    key = json.loads(msg.data).get(episode_key)
                except (json.JSONDecodeError, AttributeError):
                    key = msg.data
                status.append((ns_to_s(m.timestamp_ns), key))
            else:  # tf / tf_static
                for tf in msg.transforms:
                    tr, rot = tf.transform.translation, tf.transform.rotation
                    transforms[(tf.header.frame_id, tf.child_frame_id)] = _quat_matrix(
                        [tr.x, tr.y, tr.z], [rot.x, rot.y, rot.z, rot.w]
                    )
        bag_times = []
        for m in reader.messages([cloud_t]):
            ns = header_stamp_ns(m.rawdata)
            if ns is None or ns == 0:
                ns = m.timestamp_ns
            stamps.append(ns * 1e-9)
            bag_times.append(ns_to_s(m.timestamp_ns))
            if not cloud_frame:
                cloud_frame = reader.deserialize(m).header.frame_id
        duration = ns_to_s(reader.end_time_ns - reader.start_time_ns)
    if not stamps:
        raise ValueError(f"bag {path} has no messages on {cloud_topic!r}")
    if not actions.t:
        raise ValueError(f"bag {path} has no messages on the action topic {action_topic!r}")
    cloud_stamps = np.asarray(stamps)
    episodes = split_episodes(cloud_stamps, np.asarray(bag_times), status, episode_gap_s)
    return BagData(
        cloud_topic=cloud_t,
        cloud_stamps=cloud_stamps,
        cloud_frame=cloud_frame,
        joints=joints,
        actions=actions,
        action_topic=action_t,
        transforms=transforms,
        episodes=episodes,
        duration_s=duration,
    )


def split_episodes(
    cloud_stamps: np.ndarray, bag_times: np.ndarray, status: list, gap_s: float
) -> list[EpisodeSpan]:
    """Episode spans from cloud stamps (s), the episode topic's (bag time, key) and a gap (s)."""
    n = cloud_stamps.size
    starts = {0}
    for i in range(1, n):
        dt = cloud_stamps[i] - cloud_stamps[i - 1]
        if dt < 0 or dt > gap_s:
            starts.add(i)
    prev = None
    for k, (t_bag, key) in enumerate(status):
        if k > 0 and key != prev:
            i = int(np.searchsorted(bag_times, t_bag, side="left"))
            if 0 < i < n:
                starts.add(i)
        prev = key
    bounds = sorted(starts) + [n]
    spans = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1] - 1
        spans.append(
            EpisodeSpan(
                index=k,
                name=f"episode_{k:03d}",
                t0=float(cloud_stamps[a]),
                t1=float(cloud_stamps[b]),
                i0=a,
                i1=b,
            )
        )
    return spans
