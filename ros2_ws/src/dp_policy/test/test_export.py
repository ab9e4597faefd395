"""python -m dp_policy.export: float16 weights, checked against the float32 original before writing."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from dp_policy import export  # noqa: E402
from dp_policy.core import DiffusionPolicyModel, Normalizer, PolicyConfig  # noqa: E402
from dp_policy.core.checkpoint import save_checkpoint  # noqa: E402
from dp_policy.core.policy import Policy  # noqa: E402


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    cfg = PolicyConfig.preset(
        "simple_dp3", state_dim=3, action_dim=3, joint_names=["a", "b", "c"], down_dims=[16, 32],
        diffusion_step_embed_dim=16, num_inference_steps=3,
        encoder={"num_points": 32, "out_dim": 16, "state_mlp_dims": [16]},
    )  # fmt: skip
    rng = np.random.default_rng(0)
    norm = Normalizer.fit({"action": rng.uniform(-2, 2, (64, 3)), "agent_pos": rng.uniform(-2, 2, (64, 3)),
                           "point_cloud": rng.uniform(-1, 1, (256, 3))})  # fmt: skip
    return save_checkpoint(tmp_path / "src", cfg, DiffusionPolicyModel(cfg), norm, {"step": 7})


def test_float16_copy_is_half_the_size_and_within_tolerance(ckpt, tmp_path, capsys):
    dst = tmp_path / "dst"
    assert export.main([str(ckpt), str(dst), "--samples", "8", "--tol", "1e-2"]) == 0
    state = load_file(str(dst / "model.safetensors"))
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    src_size = (ckpt / "model.safetensors").stat().st_size
    assert (dst / "model.safetensors").stat().st_size < 0.55 * src_size
    meta = json.loads((dst / "config.json").read_text())
    assert meta["extra"]["step"] == 7  # the training record is kept
    rec = meta["extra"]["export"]
    assert rec["weights_dtype"] == "float16" and 0 < rec["max_abs_action_diff"] <= 1e-2
    # the loader casts back: the copy runs as float32 and its chunks match the original's
    a = Policy.from_checkpoint(ckpt, warmup=False)
    b = Policy.from_checkpoint(dst, warmup=False)
    assert next(b.model.parameters()).dtype == torch.float32
    obs = export._observations(a, None, 2, seed=1)
    assert export.max_action_difference(a, b, obs) <= 1e-2
    assert "largest action difference" in capsys.readouterr().out


def test_a_copy_outside_the_tolerance_is_refused_and_not_written(ckpt, tmp_path, capsys):
    dst = tmp_path / "dst"
    assert export.main([str(ckpt), str(dst), "--samples", "2", "--tol", "1e-12"]) == 2
    assert not dst.exists()
    assert "not written" in capsys.readouterr().err


def test_not_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    assert export.main([str(tmp_path), str(tmp_path / "dst")]) == 2
    assert "not a checkpoint directory" in capsys.readouterr().err
