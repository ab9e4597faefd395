"""CLI: ship a checkpoint compactly -- weights stored as float16, checked against the float32 original.

    python -m dp_policy.export runs/sim_lift_dp3/latest checkpoints/sim_lift_dp3 \\
        --dataset data/sim_lift_train.zarr --samples 64 --tol 1e-3

Copies ``config.json`` and ``normalizer.json``, writes ``model.safetensors`` with every floating-point
tensor in float16 (half the size; the loader casts back to float32, so inference code and speed are
unchanged) and checks the result: on ``--samples`` observations (windows of ``--dataset``, or
random ones of the checkpoint's shapes without it) both checkpoints sample a chunk from the same
noise, and the largest difference of any action value (radians / metres) must stay within ``--tol``.
The measured difference is printed and recorded in ``config.json`` ``extra.export``. Exit code 2 when
the check fails (nothing is written then) or a path is wrong.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

DTYPES = ("float16", "bfloat16")


def _observations(policy, dataset: str | None, n: int, seed: int) -> list[dict]:
    """`n` observations of the policy's shapes: dataset windows when given, else random ones."""
    cfg = policy.config
    k = cfg.n_obs_steps
    rng = np.random.default_rng(seed)
    if dataset:
        from dp_policy.core.dataset import load_zarr

        data = load_zarr(dataset)
        starts = rng.integers(0, len(data["agent_pos"]) - k, size=n)
        obs_keys = [key for key in cfg.obs_keys if key != "agent_pos"]
        return [{key: data[key][s : s + k] for key in ("agent_pos", *obs_keys)} for s in starts]
    out = []
    for _ in range(n):
        obs = {"agent_pos": rng.uniform(-1, 1, (k, cfg.state_dim)).astype(np.float32)}
        if "point_cloud" in cfg.obs_keys:
            pts = rng.uniform(-0.5, 0.5, (k, cfg.encoder.num_points, cfg.encoder.point_channels))
            obs["point_cloud"] = pts.astype(np.float32)
        out.append(obs)
    return out


def max_action_difference(a, b, observations: list[dict], seed: int = 0) -> float:
    """Largest |a - b| over every action value of chunks sampled from the same noise."""
    import torch

    worst = 0.0
    for i, obs in enumerate(observations):
        ga = torch.Generator().manual_seed(seed + i)
        gb = torch.Generator().manual_seed(seed + i)
        diff = np.abs(a.predict_action_chunk(obs, generator=ga) - b.predict_action_chunk(obs, generator=gb))
        worst = max(worst, float(diff.max()))
    return worst


def export(
    src: Path, dst: Path, dtype: str, observations_from: str | None, samples: int, tol: float
) -> float:
    """Write the compact copy of `src` to `dst` after checking it; returns the measured difference.

    Raises:
        ValueError: the difference exceeds `tol` (dst is left untouched) or a path is wrong.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from dp_policy.core.checkpoint import CONFIG_FILE, NORMALIZER_FILE, WEIGHTS_FILE
    from dp_policy.core.policy import Policy

    if not (src / WEIGHTS_FILE).is_file():
        raise ValueError(f"{src}: not a checkpoint directory (no {WEIGHTS_FILE})")
    state = load_file(str(src / WEIGHTS_FILE))
    torch_dtype = getattr(torch, dtype)
    small = {k: (v.to(torch_dtype) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name in (CONFIG_FILE, NORMALIZER_FILE):
            shutil.copy2(src / name, t / name)
        save_file(small, str(t / WEIGHTS_FILE), metadata={"format": "pt"})
        ref = Policy.from_checkpoint(src, device="cpu", warmup=False)
        new = Policy.from_checkpoint(t, device="cpu", warmup=False)
        obs = _observations(ref, observations_from, samples, seed=0)
        diff = max_action_difference(ref, new, obs)
        if not diff <= tol:
            raise ValueError(f"{dtype} weights change an action by {diff:.2e} > tol {tol:.0e}: not written")
        meta = json.loads((t / CONFIG_FILE).read_text())
        meta.setdefault("extra", {})["export"] = {
            "weights_dtype": dtype,
            "max_abs_action_diff": diff,
            "samples": samples,
            "observations": "dataset windows" if observations_from else "random",
            "source": str(src),
        }
        (t / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        dst.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG_FILE, NORMALIZER_FILE, WEIGHTS_FILE):
            shutil.copy2(t / name, dst / name)
    return diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dp_policy.export",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("src", help="checkpoint directory (float32, as dp_train writes it)")
    ap.add_argument("dst", help="output checkpoint directory (created; its three files are replaced)")
    ap.add_argument("--dtype", default="float16", choices=DTYPES)
    ap.add_argument("--dataset", default=None, help="zarr whose windows are the check's observations")
    ap.add_argument("--samples", type=int, default=64, help="observations in the check")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest allowed action difference")
    args = ap.parse_args(argv)
    try:
        diff = export(Path(args.src), Path(args.dst), args.dtype, args.dataset, args.samples, args.tol)
    except ValueError as exc:
        print(f"dp_policy.export: {exc}", file=sys.stderr)
        return 2
    size = (Path(args.dst) / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {args.dst} ({args.dtype} weights, {size:.1f} MB); largest action difference {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
