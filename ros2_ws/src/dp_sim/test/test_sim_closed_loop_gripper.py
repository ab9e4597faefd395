"""`closed_loop --task lift` with an 8-column checkpoint: chunks flow and gripper commands reach the hand.

A tiny, untrained simple_dp3 checkpoint is trained (2 steps, the real training command and
train_sim_lift.yaml) on a small zarr written from the real simulator and perception: the arm holds
(within 10 mrad) its reset pose of the evaluation seeds while the gripper column spans 0..0.04 m,
so the untrained policy's (clipped) outputs stay within control_node's max_start_distance of the
measured pose and inside the hand's range. closed_loop then starts the four node executables of
launch/sim.launch.py for `lift`; the test asserts on messages (8-column chunks, control accepting
them, gripper commands applied by sim_node), not on success.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("dp_perception.core.preprocess")

ROOT = pathlib.Path(__file__).resolve().parents[4]
SEED = 10000  # closed_loop's default first seed


def _run(args, timeout):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                         env=dict(os.environ))  # fmt: skip
    assert out.returncode == 0, f"{args[:2]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _hold_pose_dataset(path: pathlib.Path, steps: int = 20) -> None:
    """Two episodes (the evaluation seed and the next) of real clouds + states, the arm holding still."""
    from dp_common.cli import config_params
    from dp_perception.core import PerceptionConfig
    from dp_policy.core.dataset import Episode, ZarrEpisodeWriter
    from dp_sim.core import GRIPPER_JOINT, JOINT_NAMES, SimConfig, SimScene
    from dp_sim.core.dataset import perception_preprocessor, received_transform
    from dp_sim.make_dataset import default_perception_yaml

    preprocess, pcfg = perception_preprocessor(
        config_params(default_perception_yaml("lift"), PerceptionConfig, [])
    )
    scene = SimScene(SimConfig(task="lift"))
    attrs = {"joint_names": [*JOINT_NAMES, GRIPPER_JOINT], "dt": 0.1, "perception_config": pcfg}
    writer = ZarrEpisodeWriter(path, attrs)
    try:
        for seed in (SEED, SEED + 1):
            scene.reset(seed)
            obs = scene.render(rgb=False)
            cloud = preprocess(obs["xyz"], obs["rgb"], received_transform(scene.camera_transform), seed)
            state = np.append(scene.q, scene.gripper_opening)
            # +-10 mrad about the pose (a constant column would normalize to a +-1 rad range) and
            # a gripper column spanning the hand's range
            flip = (np.arange(steps) % 2)[:, None]
            action = np.column_stack([scene.q + 0.01 * (2 * flip - 1), 0.04 * flip])
            writer.add(Episode(seed, True, 0, np.repeat(cloud[None], steps, 0).astype(np.float32),
                               np.tile(state, (steps, 1)).astype(np.float32), action.astype(np.float32),
                               np.zeros((steps, 3), np.float32)))  # fmt: skip
    finally:
        writer.close()
        scene.close()


def test_closed_loop_lift_with_an_eight_column_checkpoint(tmp_path):
    data = tmp_path / "hold.zarr"
    _hold_pose_dataset(data)
    run = tmp_path / "run"
    _run(["-m", "dp_policy.train", "--config", str(ROOT / "ros2_ws/src/dp_sim/config/train_sim_lift.yaml"),
          f"dataset={data}", f"output_dir={run}", "max_train_steps=2", "batch_size=8", "val_ratio=0.5",
          "policy.down_dims=[16,32]", "policy.diffusion_step_embed_dim=16", "policy.n_groups=4",
          "progress=false", "checkpoint_every=1"], timeout=600)  # fmt: skip
    ckpt = json.loads((run / "latest" / "config.json").read_text())
    assert ckpt["policy"]["joint_names"][-1] == "panda_finger_joint1"
    out_dir = tmp_path / "out"
    res = _run(["-m", "dp_sim.closed_loop", "--task", "lift", "--checkpoint", str(run / "latest"),
                "--episodes", "1", "--episode-timeout", "3.0", "--real-time-factor", "1.0",
                "--out", str(out_dir)], timeout=600)  # fmt: skip
    assert res.stdout.strip().splitlines()[-1].startswith("success rate: "), res.stdout
    summary = json.loads((out_dir / "summary.json").read_text())
    episode = summary["episodes_detail"][0]
    assert episode["seed"] == SEED and episode["chunks"] >= 3, episode
    assert (
        len(episode["chunk_joint_names"]) == 8 and episode["chunk_joint_names"][-1] == "panda_finger_joint1"
    )
    diag = summary["diagnostics"]
    control = next(v for k, v in diag.items() if k.endswith("control_node"))
    sim = next(v for k, v in diag.items() if k.endswith("sim_node"))
    assert int(control["chunks accepted"]) >= 1, control
    # control_node stepped the gripper column to gripper_controller/commands; sim_node applied it
    assert int(sim.get("gripper commands applied", 0)) >= 10, sim
    assert "rejected_commands" not in sim, sim
