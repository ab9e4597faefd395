"""In-process rollout (dp_sim.core.policy_rollout / python -m dp_sim.rollout): the nodes' cores on sim time.

- the oracle through control_node's core lifts the cube (the loop, chunk timing and gripper path work);
- a do-nothing source (no chunks) never succeeds and control holds its first state;
- a real PolicyRunner (tiny untrained simple_dp3, 8 columns) gets one chunk per cloud after its
  history fills, and every gripper command it causes stays within the hand's range.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig  # noqa: E402
from dp_policy.core.node_config import PolicyNodeConfig  # noqa: E402
from dp_policy.core.runner import NoChunk, PolicyRunner  # noqa: E402
from dp_sim import rollout  # noqa: E402
from dp_sim.core.policy_rollout import RolloutConfig, run_policy_episode  # noqa: E402
from dp_sim.core.robot import GRIPPER_JOINT, GRIPPER_MAX_M, HOME_Q, JOINT_NAMES  # noqa: E402

SMALL_CAMERA = ["camera_width=96", "camera_height=72"]


def _args(tmp_path, checkpoint="oracle", episodes=1, extra=()):
    return ["--checkpoint", checkpoint, "--task", "lift", "--episodes", str(episodes), "--out",
            str(tmp_path), "--sim", *SMALL_CAMERA, *extra]  # fmt: skip


def test_oracle_lifts_the_cube_through_the_control_core(tmp_path, capsys):
    assert rollout.main(_args(tmp_path, extra=["--traces"])) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["success_rate"] == 1.0, summary
    res = summary["results"][0]
    assert 2.0 < res["success_time"] < 10.0 and res["control_state"] == "running"
    tr = np.load(tmp_path / f"episode_{res['seed']}.npz")
    assert tr["cube"][-1, 2] - tr["cube"][0, 2] >= 0.10  # lifted >= 10 cm
    assert np.nanmin(tr["grip_cmd"]) == 0.0 and np.nanmax(tr["grip_cmd"]) == pytest.approx(GRIPPER_MAX_M)
    assert "success_rate 1.000 (1/1)" in capsys.readouterr().out

    # grasp_report on the oracle's trace: aligned with the cube, centred, one clean close
    from dp_sim import grasp_report

    (row,) = grasp_report.report(tmp_path)
    assert row["closed"] and row["changes"] == 1 and row["max_lift_cm"] >= 10.0
    assert np.hypot(*row["offset_cm"]) < 1.0 and abs(row["yaw_error_deg"]) < 2.0
    # the same trace with the wrist (joint 7, vertical when the hand points down) turned by 0.5 rad:
    # the report sees a hand turned by ~0.5 rad against the cube (28.6 deg, wrapped into +-45), the
    # other way round: joint 7's axis points down
    turned = dict(tr)
    turned["q"] = tr["q"].copy()
    turned["q"][:, 6] += 0.5
    err = grasp_report.GraspAnalyzer().episode(turned)["yaw_error_deg"]
    expected = np.degrees(grasp_report.face_yaw(np.radians(row["yaw_error_deg"]) - 0.5))
    assert abs(err - expected) < 3.0 and abs(err) > 20.0
    # a hand that never closes
    never = dict(tr, grip_cmd=np.full_like(tr["grip_cmd"], GRIPPER_MAX_M))
    assert grasp_report.GraspAnalyzer().episode(never) == {
        "closed": False,
        "changes": 0,
        "max_lift_cm": pytest.approx(row["max_lift_cm"]),
    }


class _Silent:
    """A source that never produces a chunk (a policy that does nothing)."""

    image_key = None
    needs_frames = False

    def reset(self):
        pass

    def check_clock(self, now_ns):
        return False

    def add_joint_state(self, *a):
        pass

    def tick(self, now_ns):
        return NoChunk("no_cloud", "silent", None)


def _parts(tmp_path):
    args = rollout.build_parser().parse_args(_args(tmp_path, extra=["--sim", "episode_timeout_s=2.0"]))
    return rollout.build(args)


def test_no_chunks_no_success_and_control_holds_still(tmp_path):
    scene, _, ctl_cfg, limits, pre = _parts(tmp_path)
    res = run_policy_episode(scene, _Silent(), ctl_cfg, limits, pre, 3, trace=True)
    assert (
        not res["success"] and res["chunks"] == 0 and res["no_chunk"] == {"no_cloud": 20}
    )  # one tick per cloud time, 10 Hz
    tr = res["trace"]
    assert np.ptp(tr["q_cmd"], axis=0).max() == 0.0  # armed: holds the first measured state
    assert np.isnan(tr["grip_cmd"]).all()  # no chunk, no gripper command


def _tiny_lift_policy(num_points: int) -> Policy:
    return Policy(*_tiny_lift_parts(num_points))


def _tiny_lift_parts(num_points: int):
    torch.manual_seed(0)
    names = [*JOINT_NAMES, GRIPPER_JOINT]
    cfg = PolicyConfig.preset(
        "simple_dp3", state_dim=8, action_dim=8, joint_names=names, down_dims=[16, 32],
        diffusion_step_embed_dim=16, num_inference_steps=2,
        encoder={"num_points": num_points, "out_dim": 16, "state_mlp_dims": [16]},
        perception={"target_frame": "world", "num_points": num_points},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    q = np.append(HOME_Q, 0.02) + rng.uniform(-0.02, 0.02, (64, 8))
    q[:, 7] = rng.uniform(0.0, GRIPPER_MAX_M, 64)
    norm = Normalizer.fit(
        {"action": q, "agent_pos": q, "point_cloud": rng.uniform([0.2, -0.4, 0.0], [0.8, 0.4, 0.4], (256, 3))}
    )
    return cfg, DiffusionPolicyModel(cfg), norm


def test_a_real_runner_gets_one_chunk_per_cloud_and_commands_the_hand_in_range(tmp_path):
    scene, _, ctl_cfg, limits, pre = _parts(tmp_path)
    num_points = 512  # perception_sim_manip.yaml's
    runner = PolicyRunner(_tiny_lift_policy(num_points), PolicyNodeConfig(checkpoint="x", seed=0), "tiny")
    res = run_policy_episode(
        scene, runner, ctl_cfg, limits, pre, 5, RolloutConfig(latency_s=0.05), trace=True
    )
    # 20 clouds in 2 s; the first has no 2-step history yet
    assert res["chunks"] == 19 and res["no_chunk"] == {"incomplete_history": 1}, res
    grip = res["trace"]["grip_cmd"]
    assert np.isfinite(grip[-50:]).all() and (grip[np.isfinite(grip)] >= 0).all()
    assert (grip[np.isfinite(grip)] <= GRIPPER_MAX_M + 1e-4).all()


def test_budget_curve_evaluates_final_and_mid_run_checkpoints_and_reuses_them(tmp_path):
    """A run folder as dp_train leaves it: history.jsonl, latest/, checkpoints/epoch_NNNN/."""
    from dp_policy.core.checkpoint import save_checkpoint
    from dp_sim import budget_curve

    run = tmp_path / "run"
    parts = _tiny_lift_parts(512)
    for folder in ("latest", "checkpoints/epoch_0001"):
        save_checkpoint(run / folder, *parts)
    rows = [{"epoch": 1, "step": 10, "wall_s": 60.0}, {"epoch": 2, "step": 20, "wall_s": 150.0}]
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "curve"
    args = ["--run", f"{run}:1", "--episodes", "1", "--mid-episodes", "1", "--out", str(out), "--reuse"]
    assert budget_curve.main(args) == 0
    curve = json.loads((out / "curve.json").read_text())
    assert [(r["epoch"], r["final"], r["train_min"]) for r in curve] == [(1, False, 1.0), (2, True, 2.5)]
    assert all(r["success_rate"] == 0.0 for r in curve)  # an untrained policy lifts nothing
    assert (out / "curve.png").stat().st_size > 0 and len((out / "curve.md").read_text().splitlines()) == 4
    stamp = (out / "run_epoch0002" / "summary.json").stat().st_mtime_ns
    assert budget_curve.main(args) == 0  # --reuse: the same seeds are not evaluated again
    assert (out / "run_epoch0002" / "summary.json").stat().st_mtime_ns == stamp
    assert budget_curve.main(["--run", str(tmp_path / "nothing"), "--out", str(out)]) == 2
