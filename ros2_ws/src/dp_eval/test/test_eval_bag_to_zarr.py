"""dp_eval.bag_to_zarr on a real-robot-like bag (bgr8 camera, /tf_static), without the simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from dp_eval.bag_to_zarr import main  # noqa: E402
from dp_eval.core.synthetic import JOINT_NAMES, joint_trajectory  # noqa: E402
from dp_eval.synthetic_bag import write_synthetic_bag  # noqa: E402
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
