"""The two data paths of a gripper task give the same zarr (issue 13).

``record_demos --task lift`` (bags with what a lab records) + ``bag_to_zarr --task lift`` and the
fast in-process ``make_dataset --task lift`` run the same episode loop
(``dp_sim.core.dataset.expert_rollout``), the same perception (the task's params file, the episode's
seed for the sampling, the transform as received from /tf_static) and must give bit-identical arrays.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("rosbags")
pytest.importorskip("dp_perception.core.preprocess")

from dp_common.bags import BagReader  # noqa: E402
from dp_common.msgs.array import read_float64_array  # noqa: E402
from dp_common.msgs.joint_state import read_joint_state  # noqa: E402
from dp_sim import bag_to_zarr, make_dataset, record_demos  # noqa: E402

SEEDS = ["--seed-start", "11", "--episodes", "2"]
KEYS = ("data/point_cloud", "data/state", "data/action", "meta/episode_ends", "meta/episode_seeds",
        "meta/episode_target")  # fmt: skip


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_lift_bags_and_make_dataset_give_identical_zarr(tmp_path, capsys):
    bags, via_bags, direct = tmp_path / "bags", tmp_path / "bags.zarr", tmp_path / "direct.zarr"
    assert record_demos.main(["--task", "lift", "--out", str(bags), *SEEDS, "--no-progress"]) == 0
    recorded = _last_json(capsys)
    assert [e["success"] for e in recorded["episodes"]] == [True, True]
    assert bag_to_zarr.main(["--task", "lift", str(bags), "--out", str(via_bags)]) == 0
    assert _last_json(capsys)["episodes"] == 2
    assert make_dataset.main(["--task", "lift", "--out", str(direct), *SEEDS, "--no-progress"]) == 0
    assert _last_json(capsys)["episodes"] == 2

    a, b = zarr.open(str(via_bags), mode="r"), zarr.open(str(direct), mode="r")
    for key in KEYS:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key][:], b[key][:], err_msg=key)
    assert (
        a.attrs["joint_names"]
        == b.attrs["joint_names"]
        == [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1"]
    )
    assert a.attrs["perception_config"] == b.attrs["perception_config"]
    assert b.attrs["perception_config"]["crop_min"][2] == 0.015  # the manipulation tasks' file
    assert a["meta/episode_seeds"][:].tolist() == [11, 12]
    # the gripper column is exercised: the hand opens (0.04) and closes (0) in every episode
    grip = b["data/action"][:, 7]
    assert set(np.unique(grip).tolist()) == {0.0, np.float32(0.04)}
    assert b["data/state"][:, 7].min() < 0.035  # the measured opening follows, closing on the cube

    # what a lab records: both finger joints in joint_states, the gripper command as the hand gets it
    ep = bags / "episode_000011"
    with BagReader(ep) as r:
        assert {
            "/camera/points": "sensor_msgs/msg/PointCloud2",
            "/joint_states": "sensor_msgs/msg/JointState",
            "/expert/joint_command": "sensor_msgs/msg/JointState",
            "/gripper_controller/commands": "std_msgs/msg/Float64MultiArray",
            "/tf_static": "tf2_msgs/msg/TFMessage",
            "/robot_description": "std_msgs/msg/String",
            "/sim/episode_status": "std_msgs/msg/String",
            "/clock": "rosgraph_msgs/msg/Clock",
        }.items() <= r.topics.items()
        assert "/camera/image" not in r.topics  # only with --images
        js = read_joint_state(r.deserialize(next(r.messages(["/joint_states"]))))
        assert js.names[-2:] == ("panda_finger_joint1", "panda_finger_joint2") and len(js.position) == 9
        cmd = r.deserialize(next(r.messages(["/gripper_controller/commands"])))
        assert read_float64_array(cmd).tolist() == [0.04]
        n_js = sum(1 for _ in r.messages(["/joint_states"]))
        n_cloud = sum(1 for _ in r.messages(["/camera/points"]))
        assert n_js == 5 * n_cloud  # 50 Hz joint states (through the last step), 10 Hz camera
