"""dp_eval.bag_to_zarr on a real-robot-like bag (bgr8 camera, /tf_static), without the simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from dp_eval.bag_to_zarr import main  # noqa: E402
from dp_eval.core.synthetic import JOINT_NAMES, joint_trajectory  # noqa: E402
from dp_eval.synthetic_bag import (  # noqa: E402
    GRIPPER_TOPIC,
    finger_opening,
    gripper_command,
    write_synthetic_bag,
)
from dp_perception.core.synthetic import TABLETOP_CROP, tabletop_cloud  # noqa: E402
from dp_policy.core.resize import fit_image  # noqa: E402

TOPICS = [
    "--cloud-topic",
    "camera/points",
    "--state-topic",
    "joint_states",
    "--action-topic",
    "expert/joint_command",
]


def test_bag_to_zarr_clouds_images_states_actions(tmp_path, capsys):
    write_synthetic_bag(tmp_path / "bag", storage="sqlite3", episodes=1, episode_s=1.0, width=32, height=24,
                        images=True)  # fmt: skip
    perception = ["num_points=64", "min_points=8", "voxel_size=0.0",
                  f"crop_min={list(TABLETOP_CROP[0])}", f"crop_max={list(TABLETOP_CROP[1])}"]  # fmt: skip
    images = ["--image-topic", "camera/image", "--image-shape", "12", "16"]
    out = str(tmp_path / "d.zarr")
    rc = main(
        [
            str(tmp_path / "bag"),
            "--out",
            out,
            *TOPICS,
            "--joints",
            *JOINT_NAMES,
            *images,
            "--perception",
            *perception,
        ]
    )
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 1
    root = zarr.open(str(tmp_path / "d.zarr"), mode="r")
    n = root["data/state"].shape[0]
    assert (
        n == 11 and root["data/point_cloud"].shape == (n, 64, 3) and root["data/img"].shape == (n, 12, 16, 3)
    )
    t = np.arange(n) * 0.1  # clouds at 10 Hz from the episode start; states are sampled at 50 Hz
    np.testing.assert_allclose(root["data/state"][:], joint_trajectory(t, 0), atol=1e-5)
    # the expert command recorded with observation k is the state one dt later
    np.testing.assert_allclose(root["data/action"][:], joint_trajectory(t + 0.1, 0), atol=1e-5)
    # bgr8 frames come back as RGB, fitted exactly as policy_node fits camera/image
    frame0 = tabletop_cloud(width=32, height=24, seed=0).rgb
    np.testing.assert_array_equal(root["data/img"][0], fit_image(frame0, (12, 16)))
    # the world <- camera transform came from the bag's /tf_static: points lie in the world crop box
    pc = root["data/point_cloud"][:]
    assert np.all(pc >= np.asarray(TABLETOP_CROP[0]) - 1e-6) and np.all(
        pc <= np.asarray(TABLETOP_CROP[1]) + 1e-6
    )
    assert (
        root.attrs["perception_config"]["num_points"] == 64 and root.attrs["source"] == "dp_eval.bag_to_zarr"
    )


def test_bag_to_zarr_reports_missing_topics(tmp_path, capsys):
    write_synthetic_bag(tmp_path / "bag", episodes=1, episode_s=0.5, width=8, height=6)
    assert (
        main([str(tmp_path / "bag"), "--out", str(tmp_path / "x.zarr"), *TOPICS, "--image-topic", "nope"])
        == 2
    )
    assert "topics ['nope'] not in the bag" in capsys.readouterr().err


def test_sim_alias_is_the_same_command():
    import dp_eval.bag_to_zarr as real
    import dp_sim.bag_to_zarr as alias

    assert alias.main.__module__ == "dp_sim.bag_to_zarr" and alias._main is real.main


PERCEPTION = ["--perception", "num_points=32", "min_points=8", "voxel_size=0.0",
              f"crop_min={list(TABLETOP_CROP[0])}", f"crop_max={list(TABLETOP_CROP[1])}"]  # fmt: skip


def test_bag_to_zarr_gripper_column_from_a_command_topic_and_merged_joint_states(tmp_path, capsys):
    # the arm and the hand publish joint_states separately (50 Hz / 20 Hz); the gripper command
    # topic only carries changes (t = 0 and t = 0.5 s): the column holds the last command
    write_synthetic_bag(tmp_path / "bag", episodes=1, episode_s=1.0, width=16, height=12, gripper=True)
    out = tmp_path / "g.zarr"
    args = [str(tmp_path / "bag"), "--out", str(out), *TOPICS, "--joints", *JOINT_NAMES, *PERCEPTION]
    rc = main([*args, "--gripper-joint", "panda_finger_joint1", "--gripper-command-topic", GRIPPER_TOPIC])
    assert rc == 0, capsys.readouterr().err
    root = zarr.open(str(out), mode="r")
    n = root["data/state"].shape[0]
    t = np.arange(n) * 0.1
    assert root["data/state"].shape == (n, 8) and root["data/action"].shape == (n, 8)
    assert root.attrs["joint_names"] == [*JOINT_NAMES, "panda_finger_joint1"]
    np.testing.assert_allclose(root["data/state"][:, :7], joint_trajectory(t, 0), atol=1e-5)
    np.testing.assert_allclose(root["data/state"][:, 7], finger_opening(t, 1.0), atol=1e-6)
    # the command of step k is the newest one at <= t_k + dt / 2: open until 0.5 s, then closed
    np.testing.assert_array_equal(
        root["data/action"][:, 7], gripper_command(t + 0.05, 1.0).astype(np.float32)
    )
    assert root.attrs["topics"]["gripper_command"] == GRIPPER_TOPIC


def test_bag_to_zarr_gripper_errors_name_the_topic_joint_and_time(tmp_path, capsys):
    write_synthetic_bag(tmp_path / "arm", episodes=1, episode_s=0.5, width=8, height=6)
    args = [str(tmp_path / "arm"), "--out", str(tmp_path / "x.zarr"), *TOPICS, "--joints", *JOINT_NAMES,
            *PERCEPTION]  # fmt: skip
    # no finger joint in joint_states
    assert main([*args, "--gripper-joint", "panda_finger_joint1"]) == 2
    err = capsys.readouterr().err
    assert "['panda_finger_joint1']" in err and "joint_states" in err and "arm" in err
    # the gripper command topic is not in the bag
    assert (
        main([*args, "--gripper-joint", "panda_finger_joint1", "--gripper-command-topic", GRIPPER_TOPIC]) == 2
    )
    assert f"topics ['{GRIPPER_TOPIC}'] not in the bag" in capsys.readouterr().err
    # the first gripper command comes after the first steps: the error names the bag, topic and time
    write_synthetic_bag(tmp_path / "late2", episodes=1, episode_s=1.0, width=8, height=6, gripper=True,
                        gripper_command_times=(0.5,))  # fmt: skip
    args[0] = str(tmp_path / "late2")
    assert (
        main([*args, "--gripper-joint", "panda_finger_joint1", "--gripper-command-topic", GRIPPER_TOPIC]) == 2
    )
    err = capsys.readouterr().err
    assert "late2" in err and GRIPPER_TOPIC in err and "step 0 at t = 1.000 s" in err
    # a JointState command that does not carry the gripper name
    assert main([*args, "--gripper-joint", "panda_finger_joint1"]) == 2
    assert "no gripper command on expert/joint_command (JointState name panda_finger_joint1)" in (
        capsys.readouterr().err
    )
