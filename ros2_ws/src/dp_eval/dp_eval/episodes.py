"""Reading a recorded bag for evaluation: everything but the cloud contents, split into episodes.

Everything except the clouds is loaded in one pass (joint states, recorded actions, episode
status, static transforms); clouds are listed by stamp only (read from the CDR header without
decoding) and decoded later, one at a time, while the policy runs. The numpy-only containers and
the episode split are in ``dp_eval.core.episodes``.
"""

from __future__ import annotations

import json

import numpy as np

from dp_common.bags import BagMessage, BagReader, header_stamp_ns
from dp_common.msgs import ns_to_s, stamp_to_ns
from dp_common.msgs.joint_state import JOINT_STATE_TYPE, read_joint_state
from dp_common.msgs.transform import read_tf
from dp_eval.core.episodes import BagData, JointTrack, split_episodes


def msg_stamp_ns(bag_msg: BagMessage, msg) -> int:
    """A message's header stamp (integer ns) when set, else its bag time."""
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return stamp_to_ns(header.stamp)
    return int(bag_msg.timestamp_ns)


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
    stamps: list[int] = []
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
                js = read_joint_state(msg)
                joints.add(ns_to_s(msg_stamp_ns(m, msg)), js.names, js.position)
            elif m.topic == action_t:
                t = ns_to_s(msg_stamp_ns(m, msg))
                if m.msgtype == JOINT_STATE_TYPE:
                    js = read_joint_state(msg)
                    actions.add(t, js.names, js.position)
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
                for tf in read_tf(msg):
                    transforms[(tf.frame_id, tf.child_frame_id)] = tf.matrix
        bag_times = []
        for m in reader.messages([cloud_t]):
            ns = header_stamp_ns(m.rawdata)
            if ns is None or ns == 0:
                ns = m.timestamp_ns
            stamps.append(int(ns))
            bag_times.append(ns_to_s(m.timestamp_ns))
            if not cloud_frame:
                cloud_frame = reader.deserialize(m).header.frame_id
        duration = ns_to_s(reader.end_time_ns - reader.start_time_ns)
    if not stamps:
        raise ValueError(f"bag {path} has no messages on {cloud_topic!r}")
    if not actions.t:
        raise ValueError(f"bag {path} has no messages on the action topic {action_topic!r}")
    cloud_stamps_ns = np.asarray(stamps, dtype=np.int64)
    episodes = split_episodes(cloud_stamps_ns * 1e-9, np.asarray(bag_times), status, episode_gap_s)
    return BagData(
        cloud_topic=cloud_t,
        cloud_stamps_ns=cloud_stamps_ns,
        cloud_frame=cloud_frame,
        joints=joints,
        actions=actions,
        action_topic=action_t,
        transforms=transforms,
        episodes=episodes,
        duration_s=duration,
    )
