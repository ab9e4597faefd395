"""Stepped replay evaluation on a synthetic bag with a real (untrained) checkpoint of the core."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader

from dp_eval.core.config import EvalConfig
from dp_eval.core.synthetic import joint_trajectory, make_checkpoint
from dp_eval.episodes import load_bag
from dp_eval.evaluate import main
from dp_eval.stepped import run_stepped
from dp_eval.synthetic_bag import write_synthetic_bag


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    write_synthetic_bag(root / "bag", storage="mcap", episodes=2, episode_s=1.5, width=32, height=24)
    a = make_checkpoint(root / "ckpt_a" / "simple_dp3", seed=0)
    b = make_checkpoint(root / "ckpt_b" / "simple_dp3", seed=1)
    return root, a, b


def test_stepped_is_deterministic(data):
    root, a, _ = data
    bag = load_bag(root / "bag")
    cfg = EvalConfig()
    r1 = run_stepped(root / "bag", bag, a, cfg, seed=5, progress=False)
    r2 = run_stepped(root / "bag", bag, a, cfg, seed=5, progress=False)
    r3 = run_stepped(root / "bag", bag, a, cfg, seed=6, progress=False)
    # 16 clouds per episode; the first of each has no dt-old history yet.
    assert [len(e.stamps) for e in r1.episodes] == [15, 15]
    for e1, e2, e3 in zip(r1.episodes, r2.episodes, r3.episodes, strict=True):
        assert e1.stamps == e2.stamps
        np.testing.assert_array_equal(np.stack(e1.rows), np.stack(e2.rows))
        assert not np.array_equal(np.stack(e1.rows), np.stack(e3.rows))
    assert r1.episodes[0].rows[0].shape == (15, 7)  # rows from "now": horizon - n_obs_steps + 1
    assert r1.dropped.get("obs_incomplete_history") == 2


def test_cli_report_two_checkpoints(data, tmp_path, capsys):
    root, a, b = data
    out = tmp_path / "report"
    rc = main(["--bag", str(root / "bag"), "--checkpoint", str(a), "--checkpoint", str(b),
               "--out", str(out), "--seed", "3", "--no-progress"])  # fmt: skip
    assert rc == 0
    assert "L2 step 1" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "stepped" and len(summary["episodes"]) == 2
    names = [c["name"] for c in summary["checkpoints"]]
    assert names == ["simple_dp3", "simple_dp3_2"]
    for ck in summary["checkpoints"]:
        o = ck["overall"]
        assert o["n_chunks"] == 30
        for key in ("l2_step_1", "l2_step_4", "l2_step_8", "l2_step_end", "l2_mean", "final_position_error"):
            assert 0.0 < o[key] < 20.0, (key, o[key])
        assert o["chunk_rate_hz"] == pytest.approx(10.0, rel=1e-3)
        for stage in ("preprocess", "inference"):
            lat = ck["latency"][stage]
            assert lat["n"] > 0 and 0 < lat["p50_ms"] <= lat["p99_ms"]
        assert ck["replay"]["speed_factor"] > 0
        assert len(ck["episodes"]) == 2 and ck["policy_id"].count("@") == 1
        d = out / ck["name"]
        assert (d / "episode_000.png").stat().st_size > 1000
        chunks = np.load(d / "chunks.npz")
        assert chunks["rows"].shape == (30, 15, 7)
        with AnyReader([d / "outputs"]) as r:
            counts = {c.topic: c.msgcount for c in r.connections}
        assert counts["dp/action_chunk"] == 30 and counts["dp/points"] == 32
    assert (out / "error_vs_horizon.png").stat().st_size > 1000
    assert "simple_dp3_2" in (out / "summary.md").read_text()
    # Same seed, same chunks as a second run of the CLI.
    out2 = tmp_path / "again"
    main(["--bag", str(root / "bag"), "--checkpoint", str(a), "--out", str(out2), "--seed", "3",
          "--no-progress", "--no-output-bag"])  # fmt: skip
    np.testing.assert_array_equal(
        np.load(out / "simple_dp3" / "chunks.npz")["rows"],
        np.load(out2 / "simple_dp3" / "chunks.npz")["rows"],
    )


def test_cli_errors_are_reported(data, tmp_path, capsys):
    root, a, _ = data
    rc = main(["--bag", str(root / "bag"), "--checkpoint", str(a), "--out", str(tmp_path / "o"),
               "--set", "action_topic=nope", "--no-progress"])  # fmt: skip
    assert rc == 2
    assert "no action topic" in capsys.readouterr().err


def test_stepped_image_policy_replays_the_image_topic(tmp_path, capsys):
    """An image Diffusion Policy checkpoint replays camera/image (bgr8 here) as policy_node would:
    converted to RGB and fitted to the checkpoint's image shape, same history and seeding as clouds.
    Compared in one report with a DP3 checkpoint on the same bag."""
    from dp_eval.stepped import frame_topic_of, is_image_checkpoint
    from dp_policy.core import Policy
    from dp_policy.core.resize import fit_image

    torch.set_num_threads(1)
    bag_dir = tmp_path / "bag"
    write_synthetic_bag(bag_dir, storage="mcap", episodes=2, episode_s=1.0, width=32, height=24, images=True)
    img_ckpt = make_checkpoint(tmp_path / "image_dp", preset="image_dp", seed=0)
    dp3_ckpt = make_checkpoint(tmp_path / "simple_dp3", seed=0)
    cfg = EvalConfig()
    assert is_image_checkpoint(img_ckpt) and not is_image_checkpoint(dp3_ckpt)
    assert (
        frame_topic_of(img_ckpt, cfg) == "camera/image" and frame_topic_of(dp3_ckpt, cfg) == "camera/points"
    )

    bag = load_bag(bag_dir, cloud_topic="camera/image")
    assert bag.cloud_topic == "camera/image" and bag.cloud_stamps.size == 22
    policy = Policy.from_checkpoint(img_ckpt)
    run = run_stepped(bag_dir, bag, img_ckpt, cfg, seed=4, progress=False, policy=policy)
    assert [len(e.stamps) for e in run.episodes] == [10, 10]  # the first image has no dt-old history
    assert run.episodes[0].rows[0].shape == (15, 7) and not run.dropped.get("image_conversion")

    # The first chunk equals the core's output for the same two frames, joint states and noise.
    with AnyReader([bag_dir]) as reader:
        conns = [c for c in reader.connections if c.topic == "camera/image"]
        frames = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)][:2]
    rgb = [fr.data.reshape(fr.height, fr.width, 3)[:, :, ::-1] for fr in frames]  # bgr8 -> RGB
    stamps = [fr.header.stamp.sec + 1e-9 * fr.header.stamp.nanosec for fr in frames]
    assert run.episodes[0].stamps[0] == pytest.approx(stamps[1])
    q = joint_trajectory(np.asarray(stamps) - 1.0, 0).astype(np.float32)  # episode 0 starts at 1 s
    obs = {"img": np.stack([fit_image(np.ascontiguousarray(x), (36, 48)) for x in rgb]), "agent_pos": q}
    expected = policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(4))[1:]
    np.testing.assert_allclose(run.episodes[0].rows[0], expected, atol=1e-4)

    # One report for both policies: each replays its own stream of the same bag.
    out = tmp_path / "report"
    rc = main(["--bag", str(bag_dir), "--checkpoint", str(dp3_ckpt), "--checkpoint", str(img_ckpt),
               "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert [c["overall"]["n_chunks"] for c in summary["checkpoints"]] == [20, 20]
    with AnyReader([out / "image_dp" / "outputs"]) as r:
        counts = {c.topic: c.msgcount for c in r.connections}
    assert counts == {"dp/action_chunk": 20}  # no dp/points: images do not go through perception
    rc = main(["--bag", str(bag_dir), "--checkpoint", str(img_ckpt), "--out", str(tmp_path / "rt"),
               "--mode", "realtime", "--no-progress"])  # fmt: skip
    assert rc == 2 and "--mode stepped" in capsys.readouterr().err
