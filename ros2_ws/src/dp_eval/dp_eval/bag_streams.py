"""Reading one demonstration bag into time series (the ROS-message part of ``dp_eval.bag_to_zarr``).

Bags are read with the one bag stack, ``dp_common.bags`` (the ``rosbags`` library); the aligning of
the series into an episode (:mod:`dp_eval.core.alignment`), the checks of the recording
(:mod:`dp_eval.core.checks`) and the TF tree of /tf and /tf_static (:mod:`dp_eval.core.tf_tree`)
are ROS-free.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dp_common.msgs import ns_to_s, stamp_to_ns
from dp_eval.core.alignment import BagStreams, Series

TF_TOPICS = ("/tf", "/tf_static", "tf", "tf_static")  # recorded with or without the leading slash


def _joint_columns(names: list[str], joints: list[str]) -> list[int] | None:
    idx = {n: i for i, n in enumerate(names)}
    if not all(j in idx for j in joints):
        return None
    return [idx[j] for j in joints]


def _stamps(d: dict[str, list[int]]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.int64) for k, v in d.items()}


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
    stamps_only: bool = False,
    tf_tolerance_ns: int = 20_000_000,
) -> BagStreams:
    """Read the clouds, images, joint states, commands and transforms (/tf, /tf_static) of one bag.

    ``cloud_topic`` / ``image_topic`` / ``action_topic`` may be "" (not read). Images are converted
    to RGB and, with ``image_shape`` (h, w), fitted to it (see the module docstring). Joint states
    are merged by name across every message on ``state_topic`` (an arm and a gripper driver may
    publish separately). With ``gripper_joint``, gripper commands are read from
    ``gripper_command_topic`` (std_msgs/Float64MultiArray, one value, bag time) or, without it,
    from ``action_topic`` messages that carry ``gripper_joint`` (none without an action topic: the
    gripper's action is then its future state). ``stamps_only`` reads cloud and image stamps
    without decoding them (clouds / images are None: for ``--report``).

    The header stamps of every stream (topic, or topic [joint]) are kept in bag order, and
    non-finite joint values are collected in ``problems``, for :mod:`dp_eval.core.checks`.

    Raises:
        ValueError: a requested topic is not in the bag (naming the ones it has), or a state /
            gripper joint never appears.
    """
    from dp_common.bags import BagReader, header_stamp_ns
    from dp_common.msgs.array import read_float64_array
    from dp_common.msgs.cloud import read_cloud
    from dp_common.msgs.image import read_image
    from dp_common.msgs.joint_state import read_joint_state
    from dp_common.msgs.transform import read_tf
    from dp_eval.core.checks import fmt_time
    from dp_eval.core.tf_tree import TfTree
    from dp_policy.core.resize import fit_image

    cloud_t, cloud_ns, clouds, frame = [], [], [], ""
    img_t, imgs = [], []
    ac_t, ac, gr_t, gr = [], [], [], []
    state_joints = list(joints) + ([gripper_joint] if gripper_joint else [])
    st: dict[str, tuple[list, list]] = {j: ([], []) for j in state_joints}
    tree = TfTree(tf_tolerance_ns, name=str(path))
    stamps: dict[str, list[int]] = {}
    topic_stamps: dict[str, list[int]] = {}
    problems: list[str] = []
    nonfinite: set[tuple[str, str]] = set()
    seed, target = None, -1
    with BagReader(Path(path)) as reader:
        start = reader.start_time_ns
        topics = {
            t for t in (cloud_topic, image_topic, state_topic, action_topic, gripper_command_topic) if t
        }
        missing = topics - set(reader.topics)
        if missing:
            have = {t: reader.topics[t].replace("/msg/", "/") for t in sorted(reader.topics)}
            raise ValueError(f"{path}: topics {sorted(missing)} not in the bag; it has {have}")
        extra = {t for t in (*TF_TOPICS, status_topic) if t and t in reader.topics}
        for m in reader.messages(topics | extra):
            if m.topic == cloud_topic and not frame:  # the frame of the first cloud, even for stamps
                frame = read_cloud(reader.deserialize(m)).frame_id
            if stamps_only and m.topic in (cloud_topic, image_topic) and reader.is_ros2:
                ns = header_stamp_ns(m.rawdata)
                stamps.setdefault(m.topic, []).append(ns)
                if m.topic == cloud_topic:
                    cloud_t.append(ns_to_s(ns))
                    cloud_ns.append(ns)
                    clouds.append(None)
                else:
                    img_t.append(ns_to_s(ns))
                    imgs.append(None)
                continue
            msg = reader.deserialize(m)
            if m.topic == image_topic:
                try:
                    rgb = None if stamps_only else read_image(msg, use_cv_bridge=False)
                except ValueError as exc:
                    raise ValueError(f"{path}: {image_topic}: {exc}") from exc
                ns = stamp_to_ns(msg.header.stamp)
                stamps.setdefault(m.topic, []).append(ns)
                img_t.append(ns_to_s(ns))
                imgs.append(fit_image(rgb, image_shape) if image_shape and rgb is not None else rgb)
            elif m.topic == cloud_topic:
                cloud = read_cloud(msg)
                stamps.setdefault(m.topic, []).append(cloud.stamp_ns)
                cloud_t.append(ns_to_s(cloud.stamp_ns))
                cloud_ns.append(cloud.stamp_ns)
                clouds.append(None if stamps_only else (np.array(cloud.xyz, dtype=np.float32), cloud.rgb()))
                frame = cloud.frame_id
            elif m.topic == gripper_command_topic:
                data = read_float64_array(msg)
                if data.shape != (1,) or not np.isfinite(data[0]):
                    raise ValueError(
                        f"{path}: {gripper_command_topic} at bag time {ns_to_s(m.timestamp_ns):.3f} s: "
                        f"expected one finite gripper opening (m). Got {data.tolist()}"
                    )
                stamps.setdefault(m.topic, []).append(m.timestamp_ns)
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
                topic_stamps.setdefault(m.topic, []).append(js.stamp_ns)
                names = list(js.names)
                wanted = (state_joints if m.topic == state_topic else joints) + [gripper_joint]
                for name, value in zip(names, js.position, strict=False):  # position may be empty
                    if name in wanted and not np.isfinite(value) and (m.topic, name) not in nonfinite:
                        nonfinite.add((m.topic, name))  # the first time per joint and topic
                        problems.append(
                            f"{path}: {m.topic}: joint {name} is {value} at {fmt_time(js.stamp_ns, start)}; "
                            "expected finite positions"
                        )
                if m.topic == state_topic:
                    for name, value in zip(names, js.position, strict=False):
                        if name in st:
                            st[name][0].append(t)
                            st[name][1].append(value)
                            stamps.setdefault(f"{m.topic} [{name}]", []).append(js.stamp_ns)
                if m.topic == action_topic:
                    cols = _joint_columns(names, joints)
                    if cols is not None:
                        stamps.setdefault(m.topic, []).append(js.stamp_ns)
                        ac_t.append(t)
                        ac.append(js.position[cols])
                    if gripper_joint and not gripper_command_topic and gripper_joint in names:
                        gr_t.append(t)
                        gr.append(float(js.position[names.index(gripper_joint)]))
            else:
                try:
                    tfs = read_tf(msg)
                except ValueError as exc:
                    where = f"{m.topic} at {fmt_time(m.timestamp_ns, start)}"
                    raise ValueError(f"{path}: {where}: {exc}") from exc
                static = m.topic.lstrip("/") == "tf_static"
                for tf in tfs:
                    tree.add(tf.frame_id, tf.child_frame_id, tf.stamp_ns, tf.matrix, static)
    absent = [j for j in state_joints if not st[j][0]]
    if absent:
        raise ValueError(f"{path}: joints {absent} are in no {state_topic} message (JointState names)")
    iorder = np.argsort(img_t, kind="stable")
    gripper = None
    source = ""
    if gripper_joint and (gripper_command_topic or action_topic):
        source = gripper_command_topic or f"{action_topic} (JointState name {gripper_joint})"
        if not gr_t:
            raise ValueError(f"{path}: gripper column {gripper_joint}: no gripper command on {source}")
        gripper = Series.of(gr_t, gr)
    for topic, ts in stamps.items():
        if topic in (cloud_topic, image_topic, gripper_command_topic):
            topic_stamps[topic] = ts
    return BagStreams(
        cloud_t,
        clouds,
        frame,
        {j: Series.of(*st[j]) for j in state_joints},
        Series(np.zeros(0), np.zeros((0, len(joints)))) if not ac_t else Series.of(ac_t, ac),
        tree,
        np.asarray(img_t, dtype=float)[iorder],
        [imgs[i] for i in iorder],
        gripper,
        source,
        seed,
        target,
        cloud_ns=cloud_ns,
        stamps=_stamps(stamps),
        topic_stamps=_stamps(topic_stamps),
        no_gap_check={gripper_command_topic} if gripper_command_topic else set(),
        problems=problems,
        start_ns=start,
    )
