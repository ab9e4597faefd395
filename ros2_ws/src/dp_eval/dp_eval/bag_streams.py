"""Reading one demonstration bag into time series (the ROS-message part of ``dp_eval.bag_to_zarr``).

Bags are read with the one bag stack, ``dp_common.bags`` (the ``rosbags`` library); the aligning of
the series into an episode is ROS-free (:mod:`dp_eval.core.alignment`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dp_common.msgs import ns_to_s, stamp_to_ns
from dp_eval.core.alignment import BagStreams, Series


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
