"""Demonstration data: DP3 zarr layout, make_dataset CLI, rosbag2 round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from dp_common.cli import parse_overrides  # noqa: E402
from dp_sim.core import SimConfig  # noqa: E402
from dp_sim.core.dataset import EpisodeConfig, generate_dataset  # noqa: E402
from dp_sim.make_dataset import build_sim_config  # noqa: E402


def _stub_preprocess(num_points=64):
    """Crop above the table in world and subsample: stands in for the perception core."""

    def fn(xyz, rgb, transform, seed):
        w = xyz @ transform[:3, :3].T + transform[:3, 3]
        w = w[w[:, 2] > 0.005]
        idx = np.random.default_rng(seed).choice(len(w), num_points, replace=len(w) < num_points)
        return w[idx].astype(np.float32)

    fn.needs_rgb = False
    return fn


def test_generate_dataset_writes_dp3_layout(tmp_path):
    out = tmp_path / "d.zarr"
    summary = generate_dataset(
        out,
        [3, 4, 5],
        _stub_preprocess(64),
        SimConfig(camera_width=80, camera_height=60),
        ep_cfg=EpisodeConfig(hold_steps=2),
        progress=False,
    )
    assert summary["episodes"] == 3 and summary["success_rate"] == 1.0
    root = zarr.open(str(out), mode="r")
    ends = root["meta/episode_ends"][:]
    t = int(ends[-1])
    assert root["data/point_cloud"].shape == (t, 64, 3)
    assert root["data/point_cloud"].dtype == np.float32
    assert root["data/state"].shape == (t, 7) and root["data/action"].shape == (t, 7)
    assert np.all(np.diff(np.concatenate([[0], ends])) > 5)
    assert root["meta/episode_seeds"][:].tolist() == [3, 4, 5]
    assert root.attrs["dt"] == 0.1 and len(root.attrs["joint_names"]) == 7
    # action k is the target the state moves toward: state k+1 lies between state k and action k
    s, a = root["data/state"][: ends[0]], root["data/action"][: ends[0]]
    step = np.linalg.norm(s[1:] - s[:-1], axis=1)
    remaining = np.linalg.norm(a[:-1] - s[:-1], axis=1)
    assert np.all(step <= remaining + 1e-5)
    # the last state touches: tcp close to the cube (recorded for analysis)
    assert np.all(np.isfinite(root["data/tcp_pos"][:]))


def test_cli_overrides_and_yaml():
    cfg = build_sim_config(None, parse_overrides(["variant=bimodal", "cube_x_range=[0.4,0.6]"]))
    assert cfg.variant == "bimodal" and cfg.cube_x_range == [0.4, 0.6]
    with pytest.raises(ValueError, match="unknown"):
        build_sim_config(None, {"nope": 1})
    from dp_sim.make_dataset import DEFAULT_SIM_YAML

    assert build_sim_config(DEFAULT_SIM_YAML, {}).camera_width == SimConfig().camera_width


def test_make_dataset_cli_with_perception(tmp_path, capsys):
    from dp_sim.make_dataset import main

    out = tmp_path / "cli.zarr"
    rc = main(
        [
            "--out",
            str(out),
            "--episodes",
            "2",
            "--seed-start",
            "7",
            "--no-progress",
            "--set",
            "camera_width=96",
            "camera_height=72",
            "--perception",
            "num_points=128",
            "min_points=16",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["episodes"] == 2
    root = zarr.open(str(out), mode="r")
    assert root["data/point_cloud"].shape[1:] == (128, 3)
    assert root.attrs["perception_config"]["num_points"] == 128
    assert root["meta/episode_seeds"][:].tolist() == [7, 8]


def test_bag_round_trip_matches_direct_dataset(tmp_path):
    pytest.importorskip("rosbags")
    from dp_eval.bag_to_zarr import convert
    from dp_sim.core import ReachExpert, SimScene
    from dp_sim.core.dataset import SIM_PERCEPTION_DEFAULTS, perception_preprocessor
    from dp_sim.record_demos import record_episode

    cfg = SimConfig(camera_width=96, camera_height=72)
    perception = {"num_points": 128, "min_points": 16}
    scene = SimScene(cfg)
    try:
        res = record_episode(
            tmp_path / "bag0", scene, ReachExpert(kin=scene.kin), seed=2, ep_cfg=EpisodeConfig(hold_steps=2)
        )
    finally:
        scene.close()
    assert res["success"]
    summary = convert(
        [tmp_path / "bag0"], tmp_path / "bag.zarr", {**SIM_PERCEPTION_DEFAULTS, **perception}, progress=False
    )
    assert summary["episodes"] == 1
    pre, _ = perception_preprocessor(perception)
    generate_dataset(
        tmp_path / "direct.zarr", [2], pre, cfg, ep_cfg=EpisodeConfig(hold_steps=2), progress=False
    )
    a = zarr.open(str(tmp_path / "bag.zarr"), mode="r")
    b = zarr.open(str(tmp_path / "direct.zarr"), mode="r")
    # one episode loop (expert_rollout), the same FPS seed (the bag's status seed), the same transform
    for key in ("data/point_cloud", "data/state", "data/action", "meta/episode_ends", "meta/episode_seeds"):
        np.testing.assert_array_equal(a[key][:], b[key][:], err_msg=key)


def test_shipped_perception_yaml_matches_scene():
    yaml = pytest.importorskip("yaml")
    from dp_common.core.transforms import pose7_to_matrix
    from dp_sim.core.dataset import SIM_PERCEPTION_DEFAULTS, perception_node_params
    from dp_sim.make_dataset import DEFAULT_PERCEPTION_YAML, DEFAULT_SIM_YAML, build_sim_config

    shipped = yaml.safe_load(DEFAULT_PERCEPTION_YAML.read_text())["/**"]["ros__parameters"]
    expected = perception_node_params(build_sim_config(DEFAULT_SIM_YAML, {}))
    for key, value in SIM_PERCEPTION_DEFAULTS.items():
        assert shipped[key] == value, key
    # the same rigid transform (q and -q are the same rotation)
    np.testing.assert_allclose(
        pose7_to_matrix(shipped["camera_to_target"]), pose7_to_matrix(expected["camera_to_target"]), atol=1e-5
    )
    assert shipped["camera_frame"] == expected["camera_frame"]
