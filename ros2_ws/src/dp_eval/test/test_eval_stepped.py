"""Stepped replay evaluation on a synthetic bag with a real (untrained) checkpoint of the core."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader

from dp_eval.core.config import EvalConfig
from dp_eval.core.episodes import load_bag
from dp_eval.core.stepped import run_stepped
from dp_eval.core.synthetic import make_checkpoint, write_synthetic_bag
from dp_eval.evaluate import main


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
