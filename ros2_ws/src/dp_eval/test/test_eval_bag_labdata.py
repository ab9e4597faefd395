"""bag_to_zarr on demonstrations as labs record them (issue 16): kinesthetic teaching without a
command topic, a wrist camera on a TF tree, and bad recordings (errors and --report)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from dp_common.msgs import ns_to_stamp, s_to_ns  # noqa: E402
from dp_common.msgs.joint_state import build_joint_state  # noqa: E402
from dp_eval.bag_to_zarr import main  # noqa: E402
from dp_eval.core.synthetic import JOINT_NAMES, joint_trajectory, wrist_camera_pose  # noqa: E402
from dp_eval.synthetic_bag import (  # noqa: E402
    GRIPPER_TOPIC,
    finger_opening,
    gripper_command,
    write_synthetic_bag,
)
from dp_perception.core.synthetic import tabletop_cloud  # noqa: E402

ARM = ["--cloud-topic", "camera/points", "--state-topic", "joint_states", "--joints", *JOINT_NAMES]
COMMANDS = ["--action-topic", "expert/joint_command"]
OPEN_CROP = ["crop_min=[-100, -100, -100]", "crop_max=[100, 100, 100]"]
PERCEPTION = ["--perception", "num_points=64", "min_points=8", "voxel_size=0.0", *OPEN_CROP]
FINGER = "panda_finger_joint1"


def _convert(tmp_path, bag, *extra, name="out.zarr"):
    out = tmp_path / name
    rc = main([str(bag), "--out", str(out), *ARM, *PERCEPTION, *extra])
    return rc, out


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_actions_from_joint_states_recover_the_true_commands(tmp_path, capsys):
    # the synthetic arm reaches each command one dt later: state(t + dt) = command(t)
    bag = tmp_path / "kin"
    write_synthetic_bag(bag, episodes=1, episode_s=1.0, width=8, height=6)
    rc, cmd = _convert(tmp_path, bag, *COMMANDS, name="cmd.zarr")
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    rc, kin = _convert(tmp_path, bag, "--action-from", "joint_states", "--action-topic", "/not/recorded")
    assert rc == 0, capsys.readouterr().err
    summary = _summary(capsys)
    assert summary["episodes"] == 1 and summary["steps"] == 10
    assert summary["trimmed"] == {str(bag): ["1 step(s) at the end (action = state 1 step(s) later) dropped"]}
    a, b = zarr.open(str(kin), mode="r"), zarr.open(str(cmd), mode="r")
    assert b["data/action"].shape == (11, 7) and a["data/action"].shape == (10, 7)
    t = np.arange(10) * 0.1
    np.testing.assert_allclose(a["data/state"][:], joint_trajectory(t, 0), atol=1e-6)
    np.testing.assert_allclose(a["data/action"][:], b["data/action"][:10], atol=1e-6)  # = the commands
    np.testing.assert_array_equal(a["data/point_cloud"][:], b["data/point_cloud"][:10])
    assert a.attrs["action_from"] == "joint_states (lag 1 steps)" and a.attrs["topics"]["action"] == ""
    # K = 2: the state two steps later, two steps dropped
    rc, kin2 = _convert(tmp_path, bag, "--action-from", "joint_states", "--action-lag", "2", name="k2.zarr")
    assert rc == 0
    c = zarr.open(str(kin2), mode="r")
    np.testing.assert_allclose(c["data/action"][:], joint_trajectory(np.arange(9) * 0.1 + 0.2, 0), atol=1e-6)
    assert main([str(bag), "--out", str(tmp_path / "x"), "--action-from", "joint_states", "--action-lag",
                 "0"]) == 2  # fmt: skip
    assert "--action-lag must be an integer >= 1" in capsys.readouterr().err


def test_gripper_columns_with_actions_from_joint_states(tmp_path, capsys):
    bag = tmp_path / "hand"
    write_synthetic_bag(bag, episodes=1, episode_s=1.0, width=8, height=6, gripper=True)
    kin = ["--action-from", "joint_states", "--gripper-joint", FINGER]
    # from the finger's joint state: the gripper's action is its future state, like the arm's
    rc, out = _convert(tmp_path, bag, *kin)
    assert rc == 0, capsys.readouterr().err
    root = zarr.open(str(out), mode="r")
    t = np.arange(10) * 0.1
    assert root["data/action"].shape == (10, 8) and root.attrs["joint_names"] == [*JOINT_NAMES, FINGER]
    np.testing.assert_allclose(root["data/state"][:, 7], finger_opening(t, 1.0), atol=1e-6)
    np.testing.assert_allclose(root["data/action"][:, 7], finger_opening(t + 0.1, 1.0), atol=1e-6)
    np.testing.assert_allclose(root["data/action"][:, :7], joint_trajectory(t + 0.1, 0), atol=1e-6)
    # from the gripper command topic: the command held at the step (as with --action-from command)
    rc, out = _convert(tmp_path, bag, *kin, "--gripper-command-topic", GRIPPER_TOPIC, name="cmd.zarr")
    assert rc == 0, capsys.readouterr().err
    root = zarr.open(str(out), mode="r")
    np.testing.assert_array_equal(
        root["data/action"][:, 7], gripper_command(t + 0.05, 1.0).astype(np.float32)
    )
    np.testing.assert_allclose(root["data/action"][:, :7], joint_trajectory(t + 0.1, 0), atol=1e-6)


def _expected_cloud(k: int, pose: np.ndarray, num_points: int = 64) -> np.ndarray:
    xyz = tabletop_cloud(width=8, height=6, seed=k).xyz.reshape(-1, 3)
    valid = xyz[np.all(np.isfinite(xyz), axis=1)]
    world = valid @ pose[:3, :3].T + pose[:3, 3]
    return world[np.arange(num_points) % len(world)]  # fewer valid points than num_points: cycled


def test_wrist_camera_clouds_are_transformed_with_the_pose_at_their_stamp(tmp_path, capsys):
    # world -> base -> wrist_link (/tf, 50 Hz, sampled between the cloud stamps) -> camera_link ->
    # camera_depth_frame -> camera_optical_frame
    bag = tmp_path / "wrist"
    write_synthetic_bag(bag, episodes=1, episode_s=1.0, width=8, height=6, wrist_camera=True)
    rc, out = _convert(tmp_path, bag, *COMMANDS)
    assert rc == 0, capsys.readouterr().err
    pc = zarr.open(str(out), mode="r")["data/point_cloud"][:]
    assert pc.shape == (11, 64, 3)
    for k in range(11):  # the bag starts at t0_s = 1.0; cloud k is stamped 1.0 + 0.1 k
        np.testing.assert_allclose(pc[k], _expected_cloud(k, wrist_camera_pose(0.1 * k)), atol=2e-6)
    # the camera moves: a fixed pose would not give these clouds; --camera-transform still overrides
    assert not np.allclose(pc[10], _expected_cloud(10, wrist_camera_pose(0.0)), atol=1e-3)
    rc, fixed = _convert(tmp_path, bag, *COMMANDS, "--camera-transform", "0", "0", "1", "0", "0", "0", "1",
                         name="fixed.zarr")  # fmt: skip
    assert rc == 0
    np.testing.assert_allclose(
        zarr.open(str(fixed), mode="r")["data/point_cloud"][3], _expected_cloud(3, np.diag([1.0, 1, 1, 1])) +
        [0, 0, 1], atol=2e-6,
    )  # fmt: skip


def test_a_cloud_outside_the_recorded_tf_is_an_error_naming_bag_frames_and_time(tmp_path, capsys):
    def stop_tf_early(msgs, types):  # the /tf recording ends at 0.5 s into the episode
        return [m for m in msgs if m[1] != "/tf" or m[0] <= 1.5]

    bag = tmp_path / "short_tf"
    write_synthetic_bag(bag, episodes=1, episode_s=1.0, width=8, height=6, wrist_camera=True,
                        edit=stop_tf_early)  # fmt: skip
    rc, _ = _convert(tmp_path, bag, *COMMANDS)
    err = capsys.readouterr().err
    assert rc == 2
    assert str(bag) in err and "camera_optical_frame into world at 1.600 s" in err
    assert "base -> wrist_link" in err and "20 ms of that time (its samples span 0.910 s .. 1.490 s)" in err
    # --report says the same without converting
    assert main([str(bag), "--report", *ARM, *COMMANDS]) == 2
    assert "camera_optical_frame into world at 1.600 s" in capsys.readouterr().out


def _edited(tmp_path, name, edit, **kw):
    bag = tmp_path / name
    write_synthetic_bag(bag, episodes=1, episode_s=1.0, width=8, height=6, edit=edit, **kw)
    return bag


def _drop_joint_states(msgs, types):  # the arm's driver stalls from 0.3 s to 0.8 s
    return [m for m in msgs if m[1] != "joint_states" or not 1.3 < m[0] < 1.8]


def _cloud_stamp_backwards(msgs, types):  # the 6th cloud carries the 4th one's stamp
    clouds = [m[2] for m in msgs if m[1] == "camera/points"]
    clouds[5].header.stamp = ns_to_stamp(s_to_ns(1.3), types)
    return msgs


def _nonfinite_joint(value: float):
    def edit(msgs, types):  # one joint_states message at 0.4 s carries a non-finite position
        out = []
        for t, topic, msg in msgs:
            if topic == "joint_states" and abs(t - 1.4) < 1e-9:
                q = joint_trajectory(np.array([0.4]), 0)[0]
                q[2] = value
                msg = build_joint_state(s_to_ns(t), JOINT_NAMES, q, types=types)
            out.append((t, topic, msg))
        return out

    return edit


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_drop_joint_states, f"joint_states [{', '.join(JOINT_NAMES)}]: gap of 0.500 s from t = 1.300 s"),
        (_cloud_stamp_backwards, "camera/points: stamps go backwards at t = 1.300 s (+1.300 s into the bag)"),
        (_nonfinite_joint(np.nan), "joint_states: joint panda_joint3 is nan at t = 1.400 s"),
        (_nonfinite_joint(-np.inf), "joint_states: joint panda_joint3 is -inf at t = 1.400 s"),
    ],
)
def test_bad_recordings_are_errors_naming_topic_bag_and_time(tmp_path, capsys, edit, expected):
    bag = _edited(tmp_path, "bad", edit)
    rc, _ = _convert(tmp_path, bag, *COMMANDS)
    err = capsys.readouterr().err
    assert rc == 2 and f"{bag}: {expected}" in err, err


def test_a_gap_within_max_gap_converts_and_missing_topics_list_what_the_bag_has(tmp_path, capsys):
    bag = _edited(tmp_path, "gap", _drop_joint_states)
    rc, _ = _convert(tmp_path, bag, *COMMANDS, "--max-gap", "6")  # 0.5 s < 6 x 0.1 s
    assert rc == 0, capsys.readouterr().err
    rc, _ = _convert(tmp_path, bag, "--action-topic", "/arm/command")
    err = capsys.readouterr().err
    assert rc == 2 and f"{bag}: topics ['/arm/command'] not in the bag; it has {{" in err
    assert (
        "'camera/points': 'sensor_msgs/PointCloud2'" in err
        and "'joint_states': 'sensor_msgs/JointState'" in err
    )


def test_report_prints_one_line_per_episode_and_a_summary(tmp_path, capsys):
    good = tmp_path / "good"
    write_synthetic_bag(good, episodes=1, episode_s=1.0, width=8, height=6, gripper=True)
    gap = _edited(tmp_path, "gap", _drop_joint_states)
    assert main([str(good), "--report", *ARM, *COMMANDS]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        f"{good}: 1.00 s, 11 steps, joint_states 71.0 Hz, expert/joint_command 10.0 Hz, "
        "camera/points 10.0 Hz: OK",
        "summary: 1 episode(s), 1 good (11 steps, 1.0 s), no problems",
    ]
    assert not (tmp_path / "out.zarr").exists()
    # a gripper command topic only carries changes: a rate, but no gap problem; joint_states mode
    kin = ["--action-from", "joint_states", "--gripper-joint", FINGER]
    kin += ["--gripper-command-topic", GRIPPER_TOPIC]
    rc = main([str(good), str(gap), "--report", *ARM, *kin])
    assert rc == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{good}: 1.00 s, 10 steps, joint_states 71.0 Hz, camera/points 10.0 Hz, ")
    assert lines[0].endswith(": OK [1 step(s) at the end (action = state 1 step(s) later) dropped]")
    assert f"{GRIPPER_TOPIC} 2.0 Hz" in lines[0]
    assert lines[1].startswith(f"{gap}: ") and ": PROBLEMS: " in lines[1]
    assert f"topics ['{GRIPPER_TOPIC}'] not in the bag; it has {{" in lines[1]  # the finger's bag only
    assert lines[2] == f"summary: 2 episode(s), 1 good (10 steps, 1.0 s), 1 with problems: ['{gap}']"
    # every problem of a bag on its line
    rc = main([str(gap), "--report", *ARM, *COMMANDS])
    out = capsys.readouterr().out
    assert rc == 2 and "PROBLEMS: joint_states [panda_joint1" in out and "gap of 0.500 s" in out


def test_dropped_frames_are_reported_and_logged_not_silent(tmp_path, capsys, caplog):
    def late_commands(msgs, types):  # the teleop starts 0.3 s after the camera
        return [m for m in msgs if m[1] != "expert/joint_command" or m[0] >= 1.3 - 1e-9]

    caplog.set_level(logging.INFO, logger="dp_eval.bag_to_zarr")
    bag = _edited(tmp_path, "late", late_commands)
    rc, out = _convert(tmp_path, bag, *COMMANDS)
    assert rc == 0
    note = "3 frame(s) before the first command dropped"
    assert _summary(capsys)["trimmed"] == {str(bag): [note]}
    assert zarr.open(str(out), mode="r")["data/state"].shape[0] == 8
    assert f"{bag}: {note}" in caplog.text
    assert main([str(bag), "--report", *ARM, *COMMANDS]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(f"8 steps, joint_states 50.0 Hz, "
        f"expert/joint_command 10.0 Hz, camera/points 10.0 Hz: OK [{note}]")  # fmt: skip
