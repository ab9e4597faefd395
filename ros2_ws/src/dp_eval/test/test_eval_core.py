"""dp_eval core: ROS-free import, metrics, config validation, bag round trips, episode split."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dp_eval.core.config import EvalConfig
from dp_eval.core.metrics import episode_metrics, interp_targets, json_safe
from dp_eval.episodes import load_bag

SRC = pathlib.Path(__file__).resolve().parents[2]


def test_core_does_not_import_rclpy():
    code = (
        "import sys, dp_eval.core, dp_eval.core.episodes, dp_eval.core.report, dp_eval.core.synthetic\n"
        "import dp_eval.core.tf_tree, dp_eval.core.checks, dp_eval.core.alignment\n"
        "assert 'rosbags' not in sys.modules, 'core imported rosbags'\n"
        "assert 'rclpy' not in sys.modules, 'core imported rclpy'\n"
    )
    paths = [str(p) for p in SRC.iterdir() if (p / "setup.py").exists()]
    env_path = ":".join(paths)
    r = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_metrics_known_offset():
    rec_t = np.arange(0, 3.0, 0.1)
    rec_q = np.stack([rec_t, 2 * rec_t], axis=1)
    stamps = np.array([0.0, 0.5, 1.0])
    dt, h = 0.1, 15
    times = stamps[:, None] + dt * np.arange(h)
    truth = interp_targets(rec_t, rec_q, times, 0.05)
    chunks = truth + np.array([0.3, 0.4])  # L2 offset 0.5 everywhere
    m = episode_metrics(stamps, chunks, dt, rec_t, rec_q, (1, 4, 8, "end"))
    for key in ("l2_step_1", "l2_step_4", "l2_step_8", "l2_step_end", "l2_mean"):
        assert m[key] == pytest.approx(0.5, abs=1e-9), key
    assert m["chunk_rate_hz"] == pytest.approx(2.0)
    assert m["per_joint_mae"] == pytest.approx([0.3, 0.4])
    assert m["final_position_error"] == pytest.approx(np.linalg.norm(chunks[-1, -1] - rec_q[-1]))
    # Rows past the recording are not compared.
    late = episode_metrics(np.array([2.5]), chunks[:1], dt, rec_t, rec_q, ("end",))
    assert late["err"][0, -1] != late["err"][0, -1]  # NaN
    assert json_safe({"a": float("nan"), "b": np.float32(1.5)}) == {"a": None, "b": 1.5}


def test_eval_config_validation():
    with pytest.raises(ValueError, match="camera_to_target"):
        EvalConfig(camera_to_target=[1.0, 2.0])
    with pytest.raises(ValueError, match="output_storage"):
        EvalConfig(output_storage="bag")
    with pytest.raises(ValueError, match="unknown EvalConfig keys"):
        EvalConfig.from_dict({"nope": 1})
    assert EvalConfig().steps == [1, 4, 8, "end"]


def test_load_bag_splits_episodes(tmp_path):
    from dp_eval.synthetic_bag import write_synthetic_bag

    info = write_synthetic_bag(
        tmp_path / "bag", storage="sqlite3", episodes=2, episode_s=1.0, width=16, height=12
    )
    bag = load_bag(tmp_path / "bag")
    assert len(bag.episodes) == 2
    assert bag.cloud_stamps_ns.size == info["counts"]["camera/points"] == 22
    assert bag.cloud_stamps_ns.dtype == np.int64 and bag.cloud_stamps_ns[0] == 1_000_000_000
    assert [e.i1 - e.i0 + 1 for e in bag.episodes] == [11, 11]
    assert bag.cloud_frame == "camera_optical_frame"
    np.testing.assert_allclose(
        bag.transforms[("world", "camera_optical_frame")], info["transform"], atol=1e-9
    )
    t, q = bag.actions.arrays(info["joint_names"])
    assert t.size == 22 and q.shape == (22, 7)
    with pytest.raises(ValueError, match="no action topic"):
        load_bag(tmp_path / "bag", action_topic="missing/topic")
