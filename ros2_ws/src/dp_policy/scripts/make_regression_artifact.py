#!/usr/bin/env python3
"""Regenerate the policy regression artifact under test/data/.

Writes ``regression_ckpt/`` (a tiny DP3 checkpoint with seeded random weights) and
``regression_expected.json`` (its action chunk for a fixed observation and fixed noise, for the
diffusion and the flow-matching objective). Run after an intended numeric change::

    python ros2_ws/src/dp_policy/scripts/make_regression_artifact.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

PKG = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PKG))

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig, save_checkpoint  # noqa: E402

DATA = PKG / "test" / "data"


def tiny_config(objective: str = "diffusion") -> PolicyConfig:
    """The regression model: DP3 encoder, tiny U-Net."""
    return PolicyConfig.preset(
        "simple_dp3",
        state_dim=3,
        action_dim=3,
        joint_names=["j1", "j2", "j3"],
        down_dims=[16, 32],
        diffusion_step_embed_dim=16,
        n_groups=4,
        horizon=16,
        encoder={"out_dim": 16, "state_mlp_dims": [16, 16], "num_points": 32},
        objective=objective,
    )


def fixed_inputs() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Deterministic observation and noise."""
    rng = np.random.default_rng(1234)
    obs = {
        "point_cloud": rng.uniform(-0.2, 0.2, (2, 32, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-1, 1, (2, 3)).astype(np.float32),
    }
    noise = rng.standard_normal((16, 3)).astype(np.float32)
    return obs, noise


def tiny_normalizer() -> Normalizer:
    """Fixed normalizer for the regression model."""
    rng = np.random.default_rng(7)
    return Normalizer.fit(
        {
            "action": rng.uniform(-1.5, 1.5, (64, 3)),
            "agent_pos": rng.uniform(-1.0, 1.0, (64, 3)),
            "point_cloud": rng.uniform(-0.3, 0.3, (64, 3)),
        }
    )


def main() -> None:
    """Write the artifact."""
    torch.manual_seed(0)
    expected = {}
    for objective in ("diffusion", "flow_matching"):
        cfg = tiny_config(objective)
        torch.manual_seed(0)
        model = DiffusionPolicyModel(cfg)
        ckpt = DATA / f"regression_ckpt_{objective}"
        save_checkpoint(ckpt, cfg, model, tiny_normalizer())
        policy = Policy.from_checkpoint(ckpt, warmup=False)
        obs, noise = fixed_inputs()
        expected[objective] = policy.predict_action_chunk(obs, noise=noise).tolist()
    (DATA / "regression_expected.json").write_text(json.dumps(expected, indent=1))
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()
