"""The whole pipeline in closed loop: sim -> perception -> policy -> control -> sim, as processes.

A tiny checkpoint is trained (2 steps) by the real training command on demonstrations the real
simulator + expert + perception wrote; the closed-loop runner then starts the four node executables
of launch/sim.launch.py and runs one short episode. The policy is untrained, so the test checks the
plumbing (chunks flow, every node reports, the report is written), not success.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[4]


def _run(args, timeout, cwd=ROOT):
    out = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=dict(os.environ),
    )
    assert out.returncode == 0, f"{args[:2]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def test_closed_loop_pipeline(tmp_path):
    data = tmp_path / "demo.zarr"
    _run(
        [
            "-m",
            "dp_sim.make_dataset",
            "--out",
            str(data),
            "--episodes",
            "4",
            "--seed-start",
            "0",
            "--no-progress",
        ],
        timeout=300,
    )
    run = tmp_path / "run"
    _run(
        [
            "-m",
            "dp_policy.train",
            "--config",
            str(ROOT / "ros2_ws/src/dp_sim/config/train_sim_reach.yaml"),
            f"dataset={data}",
            f"output_dir={run}",
            "max_train_steps=2",
            "batch_size=8",
            "val_ratio=0.25",
            "policy.down_dims=[16,32]",
            "policy.diffusion_step_embed_dim=16",
            "policy.n_groups=4",
            "progress=false",
            "checkpoint_every=1",
        ],
        timeout=600,
    )
    assert (run / "latest" / "config.json").is_file()
    out_dir = tmp_path / "out"
    res = _run(
        [
            "-m",
            "dp_sim.closed_loop",
            "--checkpoint",
            str(run / "latest"),
            "--episodes",
            "1",
            "--episode-timeout",
            "2.0",
            "--real-time-factor",
            "1.0",
            "--out",
            str(out_dir),
        ],
        timeout=600,
    )
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("success rate: "), res.stdout
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["episodes"] == 1
    episode = summary["episodes_detail"][0]
    assert episode["seed"] == 10000
    assert episode["episode_time_s"] >= 2.0 or episode["success"]
    assert episode["chunks"] >= 3, "the policy published (almost) no chunks from the simulated camera"
    for node in ("sim_node", "perception_node", "policy_node", "control_node"):
        assert any(name.endswith(node) for name in summary["diagnostics"]), f"no /diagnostics from {node}"
    assert (out_dir / "trajectories.png").stat().st_size > 10_000
    for node in ("sim_node", "perception_node", "policy_node", "control_node"):
        assert (out_dir / "logs" / f"{node}.log").is_file()
