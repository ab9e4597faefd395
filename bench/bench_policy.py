#!/usr/bin/env python3
"""Benchmark of the dp_policy core (prints our figures and the published-pattern baseline).

- Parameter counts of the ``dp3`` and ``simple_dp3`` presets.
- ``predict_action_chunk`` latency p50 / p99 at batch 1 (1024 points, n_obs_steps 2, horizon 16,
  7-D state and action, 10 DDIM steps) for simple_dp3 and dp3: ours eager, ours compiled, and the
  baseline (published pattern: nn.Conv1d modules, per-step FiLM, ``DDIMScheduler.step`` loop) on
  the same weights, with the max abs difference of their outputs (same noise, action units).
- Flow matching latency at 1 / 2 / 4 Euler steps.
- dp3 reduced precision: one U-Net pass with bf16 weights (plain and oneDNN-prepacked GEMMs) next
  to the fp32 prepacked pass ``Policy`` runs, with the output difference.
- One training step (forward + backward + AdamW), simple_dp3, batch 128, 512 points, ours vs the
  baseline forward.
- Flow matching: chunk-end error on held-out episodes of the synthetic reach task vs steps
  (1, 2, 4, 10) after a short training run.

Usage: ``python bench/bench_policy.py [--quick] [--threads 2]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "dp_policy"))

from dp_policy.core import DiffusionPolicyModel, Normalizer, Policy, PolicyConfig  # noqa: E402
from dp_policy.core.fast_conv import (  # noqa: E402
    PackedWeight,
    conv_gemm_weight,
    prepack_linear_weight,
    prepare_fast_convs,
)
from dp_policy.core.reference import (  # noqa: E402
    reference_encode_obs,
    reference_sample,
    reference_unet_forward,
)
from dp_policy.core.synthetic import make_reach_dataset, true_chunk  # noqa: E402
from dp_policy.core.train_config import TrainConfig  # noqa: E402
from dp_policy.core.training import train  # noqa: E402


def _stats(fn, reps: int, warm: int = 1) -> tuple[float, float]:
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 99) * 1e3)


def _normalizer() -> Normalizer:
    rng = np.random.default_rng(0)
    return Normalizer.fit(
        {
            "action": rng.uniform(-2.5, 2.5, (100, 7)),
            "agent_pos": rng.uniform(-2.5, 2.5, (100, 7)),
            "point_cloud": rng.uniform(-0.5, 0.5, (100, 3)),
        }
    )


def _obs(n_points: int = 1024) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "point_cloud": rng.uniform(-0.4, 0.4, (2, n_points, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-1, 1, (2, 7)).astype(np.float32),
    }


def print_parameter_counts() -> None:
    """Parameter counts of the presets (7-D state/action, xyz points, n_obs_steps 2)."""
    for preset in ("dp3", "simple_dp3"):
        with torch.device("meta"):
            net = DiffusionPolicyModel(PolicyConfig.preset(preset))
        enc = sum(p.numel() for p in net.obs_encoder.parameters())
        unet = sum(p.numel() for p in net.model.parameters())
        print(
            f"{preset:<11} parameters {enc + unet:>13,} (point encoder + state MLP {enc:,}; U-Net {unet:,})"
        )


def bench_inference(preset: str, reps: int, ref_reps: int, compile_: bool) -> None:
    """Latency of ours (eager / compiled) vs the published pattern, same weights and noise."""
    torch.manual_seed(0)
    cfg = PolicyConfig.preset(preset)
    model = DiffusionPolicyModel(cfg)
    policy = Policy(cfg, model, _normalizer())
    obs = _obs()
    noise = np.random.default_rng(2).standard_normal((16, 7)).astype(np.float32)
    p50, p99 = _stats(lambda: policy.predict_action_chunk(obs, noise=noise), reps)
    ours = policy.predict_action_chunk(obs, noise=noise)

    def baseline():
        with torch.inference_mode():
            nobs, _ = policy._obs_tensors(obs)
            gcond = model.encode_obs(nobs)
            x = reference_sample(model, gcond, torch.from_numpy(noise)[None], cfg.num_inference_steps)
            return policy.normalizer.unnormalize("action", x)[0].numpy()

    b50, b99 = _stats(baseline, ref_reps, warm=1)
    diff = float(np.abs(baseline() - ours).max())
    print(f"{preset:<11} 10 DDIM  ours eager    p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    print(f"{preset:<11} 10 DDIM  baseline      p50 {b50:8.1f} ms  p99 {b99:8.1f} ms  "
          f"(speed-up {b50 / p50:.1f}x; max |ours - baseline| = {diff:.2e} action units)")  # fmt: skip
    if compile_:
        try:
            t0 = time.perf_counter()
            policy.compile()
            policy.predict_action_chunk(obs, noise=noise)
            ct = time.perf_counter() - t0
            c50, c99 = _stats(lambda: policy.predict_action_chunk(obs, noise=noise), reps)
            cdiff = float(np.abs(policy.predict_action_chunk(obs, noise=noise) - ours).max())
            print(f"{preset:<11} 10 DDIM  ours compiled p50 {c50:8.1f} ms  p99 {c99:8.1f} ms  "
                  f"(compile {ct:.0f} s; max diff vs eager {cdiff:.1e})")  # fmt: skip
        except Exception as exc:  # toolchain dependent
            print(f"{preset:<11} compiled: unavailable ({type(exc).__name__}: {str(exc)[:80]})")
    if preset == "simple_dp3":
        fcfg = PolicyConfig.preset(preset, objective="flow_matching")
        fpol = Policy(fcfg, DiffusionPolicyModel(fcfg), _normalizer())
        for k in (1, 2, 4):
            fpol.set_num_inference_steps(k)
            f50, f99 = _stats(lambda: fpol.predict_action_chunk(obs, noise=noise), reps)
            print(f"{preset:<11} flow {k:>2} step(s)       p50 {f50:8.1f} ms  p99 {f99:8.1f} ms")


def bench_flow_steps_dp3(reps: int) -> None:
    """Flow-matching latency at 1/2/4 steps for dp3."""
    torch.manual_seed(0)
    cfg = PolicyConfig.preset("dp3", objective="flow_matching")
    pol = Policy(cfg, DiffusionPolicyModel(cfg), _normalizer())
    obs = _obs()
    for k in (1, 2, 4):
        pol.set_num_inference_steps(k)
        f50, f99 = _stats(lambda: pol.predict_action_chunk(obs), reps)
        print(f"dp3         flow {k:>2} step(s)       p50 {f50:8.1f} ms  p99 {f99:8.1f} ms")


def bench_reduced_precision(reps: int) -> None:
    """dp3: one U-Net pass with fp32 prepacked weights (what Policy runs) vs bf16 weights, same input."""
    torch.manual_seed(0)
    cfg = PolicyConfig.preset("dp3")
    unet = DiffusionPolicyModel(cfg).model.eval().requires_grad_(False)
    x, t, g = torch.randn(1, 16, 7), torch.tensor([50]), torch.randn(1, cfg.global_cond_dim)
    with torch.inference_mode():
        prepare_fast_convs(unet)
        films = unet.film_from_cond(t, g)
        ref = unet.forward_film(x, films)
        f50, _ = _stats(lambda: unet.forward_film(x, films), reps)
        print(f"dp3         one U-Net pass fp32 (prepacked)  p50 {f50:8.1f} ms")
        unet.to(torch.bfloat16)
        bfilms = [(a.bfloat16(), b.bfloat16()) for a, b in films]
        xb = x.bfloat16()
        for packed in (False, True):
            for m in unet.modules():  # bf16 weights: plain bf16 GEMM, or oneDNN-prepacked bf16
                if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                    w_io = conv_gemm_weight(m).detach()
                    m._fast_w = None if packed else w_io.contiguous()
                    m._packed_w = PackedWeight(prepack_linear_weight(w_io.t())) if packed else None
            try:
                out = unet.forward_film(xb, bfilms)
                b50, _ = _stats(lambda: unet.forward_film(xb, bfilms), reps)
            except RuntimeError as exc:  # oneDNN without bf16 support on this CPU
                kind = "prepacked" if packed else "plain"
                print(f"dp3         one U-Net pass bf16 {kind}: unavailable ({exc})")
                continue
            diff = float((out.float() - ref).abs().max())
            print(f"dp3         one U-Net pass bf16 ({'prepacked' if packed else 'plain GEMM'})"
                  f"{'' if packed else ' '} p50 {b50:8.1f} ms  ({f50 / b50:.2f}x fp32; max |diff| {diff:.1e} "
                  "normalized units, fp32 tolerance 1e-4)")  # fmt: skip


def bench_train_step(reps: int) -> None:
    """simple_dp3 training step, batch 128, 512 points: ours vs the published encoder + U-Net pattern."""
    torch.manual_seed(0)
    cfg = PolicyConfig.preset("simple_dp3")
    model = DiffusionPolicyModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    obs = {"point_cloud": torch.rand(128, 2, 512, 3) * 2 - 1, "agent_pos": torch.rand(128, 2, 7) * 2 - 1}
    act = torch.rand(128, 16, 7) * 2 - 1

    def ours():
        loss = model.compute_loss(obs, act)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def baseline():
        gcond = reference_encode_obs(model, obs)
        noise = torch.randn_like(act)
        t = torch.randint(0, cfg.num_train_timesteps, (128,))
        noisy = model.train_scheduler.add_noise(act, noise, t)
        loss = torch.nn.functional.mse_loss(reference_unet_forward(model.model, noisy, t, gcond), act)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    o50, _ = _stats(ours, reps)
    b50, _ = _stats(baseline, reps)
    print(f"train step simple_dp3 b128 512pts: ours {o50 / 1e3:.2f} s  baseline {b50 / 1e3:.2f} s "
          f"(speed-up {b50 / o50:.1f}x)")  # fmt: skip


def bench_flow_accuracy(steps: int) -> None:
    """Chunk-end error on 20 held-out reach episodes vs Euler steps, and latency."""
    data = make_reach_dataset(n_episodes=100, n_steps=20, num_points=96, seed=0)
    val = np.arange(80, 100)
    cfg = TrainConfig(
        output_dir="",
        policy={"preset": "simple_dp3", "objective": "flow_matching", "down_dims": [32, 64, 128],
                               "diffusion_step_embed_dim": 32},  # fmt: skip
        batch_size=32, num_epochs=10_000, max_train_steps=steps, lr=1e-3, lr_warmup_steps=50,
        progress=False, seed=0,
    )  # fmt: skip
    res = train(cfg, data=data, val_episodes=val)
    pol = Policy(res.config, res.ema_model, res.normalizer)
    ends = data["episode_ends"]
    first = np.concatenate([[0], ends[:-1]])[val]
    obs = {
        "point_cloud": np.repeat(data["point_cloud"][first][:, None], 2, axis=1),
        "agent_pos": np.repeat(data["agent_pos"][first][:, None], 2, axis=1),
    }
    tgt = np.stack([true_chunk(data["action"][first[i] : ends[e]], 16, 2)[-1] for i, e in enumerate(val)])
    one = {k: v[:1] for k, v in obs.items()}
    print(f"flow matching, reach task ({steps} train steps), 20 held-out episodes:")
    for k in (1, 2, 4, 10):
        pol.set_num_inference_steps(k)
        pred = pol.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
        err = np.linalg.norm(pred[:, -1] - tgt, axis=-1) * 100
        lat, _ = _stats(lambda: pol.predict_action_chunk(one), 10)
        print(f"  {k:>2} steps: chunk-end error median {np.median(err):5.2f} cm  p90 "
              f"{np.quantile(err, 0.9):5.2f} cm  latency (small model) {lat:6.1f} ms")  # fmt: skip


def main() -> None:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no dp3 compile")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    q = args.quick
    print(f"dp_policy bench (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print_parameter_counts()
    bench_inference("simple_dp3", reps=10 if q else 30, ref_reps=3 if q else 10, compile_=True)
    bench_inference("dp3", reps=3 if q else 7, ref_reps=1 if q else 3, compile_=not q)
    bench_flow_steps_dp3(reps=2 if q else 5)
    bench_reduced_precision(reps=5 if q else 15)
    bench_train_step(reps=2 if q else 4)
    bench_flow_accuracy(steps=300 if q else 900)


if __name__ == "__main__":
    main()
