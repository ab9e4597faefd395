"""Image demonstrations (issue 9): make_dataset --images --image-shape, bag_to_zarr image topics."""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from dp_policy.core.dataset import load_zarr  # noqa: E402
from dp_policy.core.resize import fit_images  # noqa: E402
from dp_sim.core import SimConfig  # noqa: E402
from dp_sim.core.dataset import EpisodeConfig, generate_dataset  # noqa: E402
from dp_sim.make_dataset import resize_zarr_images  # noqa: E402

CAM = SimConfig(camera_width=96, camera_height=72)


def _stub_preprocess(num_points=32):
    def fn(xyz, rgb, transform, seed):
        idx = np.random.default_rng(seed).choice(len(xyz), num_points)
        return xyz[idx].astype(np.float32)

    fn.needs_rgb = False
    return fn


def test_resize_zarr_images_in_place_matches_fit_image(tmp_path):
    out = tmp_path / "d.zarr"
    summary = generate_dataset(
        out,
        [1],
        _stub_preprocess(),
        CAM,
        ep_cfg=EpisodeConfig(hold_steps=1),
        keep_images=True,
        progress=False,
    )
    assert summary["episodes"] == 1
    native = zarr.open(str(out), mode="r")["data/img"][:]
    assert native.dtype == np.uint8 and native.shape[1:] == (72, 96, 3)
    assert native.std() > 5  # a rendered scene, not a blank frame
    resize_zarr_images(out, (40, 40), block=7)
    root = zarr.open(str(out), mode="r")
    img = root["data/img"]
    assert img.dtype == np.uint8 and img.shape == (len(native), 40, 40, 3)
    np.testing.assert_array_equal(img[:], fit_images(native, (40, 40)))
    assert root.attrs["image_shape"] == [40, 40] and root.attrs["image_source_shape"] == [72, 96]
    assert sorted(root["data"].array_keys()) == ["action", "img", "point_cloud", "state", "tcp_pos"]
    # the policy's loader reads it as Diffusion Policy's layout: uint8 images beside state / action
    data = load_zarr(out)
    assert data["img"].dtype == np.uint8 and data["img"].shape == (len(native), 40, 40, 3)
    assert data["agent_pos"].shape == (len(native), 7) and data["action"].shape == (len(native), 7)


def test_make_dataset_cli_images_with_shape(tmp_path, capsys):
    from dp_sim.make_dataset import main

    out = tmp_path / "cli.zarr"
    argv = ["--out", str(out), "--episodes", "1", "--seed-start", "4", "--no-progress", "--images",
            "--image-shape", "36", "36", "--set", "camera_width=96", "camera_height=72",
            "--perception", "num_points=64", "min_points=16"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    root = zarr.open(str(out), mode="r")
    t = summary["steps"]
    assert root["data/img"].shape == (t, 36, 36, 3) and root["data/img"].dtype == np.uint8
    assert root["data/point_cloud"].shape == (t, 64, 3) and root["data/state"].shape == (t, 7)
    assert root.attrs["image_shape"] == [36, 36] and root.attrs["image_source_shape"] == [72, 96]
    assert main(["--out", str(out), "--image-shape", "36", "36"]) == 2  # needs --images


def test_bag_image_topic_round_trip_matches_direct_dataset(tmp_path):
    pytest.importorskip("rosbags")
    from dp_eval.bag_to_zarr import convert
    from dp_sim.bag_to_zarr import main
    from dp_sim.core import ReachExpert, SimScene
    from dp_sim.core.dataset import SIM_PERCEPTION_DEFAULTS
    from dp_sim.record_demos import record_episode

    scene = SimScene(CAM)
    try:
        res = record_episode(
            tmp_path / "bag0", scene, ReachExpert(kin=scene.kin), seed=2, ep_cfg=EpisodeConfig(hold_steps=2)
        )
    finally:
        scene.close()
    assert res["success"]
    perception = {**SIM_PERCEPTION_DEFAULTS, "num_points": 64, "min_points": 16}
    summary = convert([tmp_path / "bag0"], tmp_path / "bag.zarr", perception, progress=False,
                      image_topic="/camera/image", image_shape=(48, 64))  # fmt: skip
    assert summary["episodes"] == 1
    generate_dataset(tmp_path / "direct.zarr", [2], _stub_preprocess(), CAM,
                     ep_cfg=EpisodeConfig(hold_steps=2), keep_images=True, progress=False)  # fmt: skip
    a = zarr.open(str(tmp_path / "bag.zarr"), mode="r")
    b = zarr.open(str(tmp_path / "direct.zarr"), mode="r")
    assert a["data/img"].shape == (b["data/img"].shape[0], 48, 64, 3)
    np.testing.assert_array_equal(a["data/img"][:], fit_images(b["data/img"][:], (48, 64)))
    np.testing.assert_allclose(a["data/action"][:], b["data/action"][:], atol=1e-6)
    assert a.attrs["topics"]["image"] == "/camera/image" and a.attrs["image_shape"] == [48, 64]
    # image-only (an RGB-only robot): steps from the images, no clouds, same frames and actions
    rc = main([str(tmp_path / "bag0"), "--out", str(tmp_path / "img.zarr"), "--cloud-topic", "",
               "--image-topic", "/camera/image"])  # fmt: skip
    assert rc == 0
    c = zarr.open(str(tmp_path / "img.zarr"), mode="r")
    assert "point_cloud" not in c["data"]
    np.testing.assert_array_equal(c["data/img"][:], b["data/img"][:])  # native size kept
    np.testing.assert_allclose(c["data/state"][:], b["data/state"][:], atol=1e-6)
    np.testing.assert_array_equal(c["meta/episode_ends"][:], b["meta/episode_ends"][:])
    # a topic that is not in the bag
    assert main([str(tmp_path / "bag0"), "--out", str(tmp_path / "x.zarr"), "--image-topic", "/nope"]) == 2
